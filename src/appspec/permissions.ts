import { isMap, isScalar, isSeq, type Node } from 'yaml';
import { parseAce } from './acl.js';
import { parseMode } from './mode.js';
import type { Parsed } from './parsed.js';
import type { AppSpecReader, MapEntry } from './reader.js';
import { parseSelinuxRange } from './selinux-range.js';
import { closestName } from './suggest.js';
import type { Permission, PermissionObjectType, SelinuxContext } from './types.js';

const PERMISSION_KEYS = ['object', 'pattern', 'except', 'type', 'owner', 'group', 'mode', 'acls', 'context'];
const CONTEXT_KEYS = ['name', 'user', 'type', 'range'];
const OBJECT_TYPES: readonly PermissionObjectType[] = ['file', 'directory'];

const NO_OBJECT =
  'The deployment failed because a permission listed in the application specification file has no object value. Update the permissions section of the AppSpec file, and then try again.';
// AWS's agent writes "specifiles" here and "filespecifies" in the type message; the slips are fixed.
const NOT_ON_WINDOWS =
  'The deployment failed because the application specification file specifies file permissions, but the deployment is targeting one or more Windows Server instances. Permissions are supported only for Amazon Linux, Ubuntu Server, and Red Hat Enterprise Linux (RHEL) instances. Update the permissions section of the AppSpec file, and then try again.';

/** The `permissions` section, Linux only. */
export function parsePermissions(reader: AppSpecReader, section: MapEntry, os: string | undefined): Permission[] {
  const permissions: Permission[] = [];
  if (section.value === undefined) return permissions;
  if (!isSeq(section.value)) {
    reader.wrongType(section.at, 'permissions', 'a list of permission entries', section.value,
      'start each entry with a dash: "- object: /var/www/app" followed by its owner, mode, …');
    return permissions;
  }
  if (os === 'windows' && section.value.items.length > 0) {
    reader.error(section.keyNode, NOT_ON_WINDOWS, 'remove the permissions section, or deploy to Linux instances with os: linux');
    return permissions;
  }
  reader.items(section.value).forEach((item, index) => {
    const what = `permissions[${index}]`;
    if (item.value === undefined) {
      reader.error(item.at, NO_OBJECT, 'write "- object: <absolute path>" followed by what to set');
      return;
    }
    if (!isMap(item.value)) {
      reader.wrongType(item.at, what, 'a mapping with an object and what to set on it', item.value, 'write "- object: <absolute path>" followed by owner, group, mode, …');
      return;
    }
    const permission = parsePermission(reader, reader.entries(item.value), item.value, what);
    if (permission) permissions.push(permission);
  });
  return permissions;
}

function parsePermission(reader: AppSpecReader, entries: Map<string, MapEntry>, at: Node, what: string): Permission | undefined {
  warnUnknownKeys(reader, entries, PERMISSION_KEYS, what);
  const object = parseObject(reader, entries.get('object'), at, what);
  const pattern = parsePattern(reader, entries.get('pattern'), `${what}.pattern`);
  const except = parseTextList(reader, entries.get('except'), `${what}.except`, 'except');
  const type = parseTypes(reader, entries.get('type'), `${what}.type`);
  const owner = optionalText(reader, entries.get('owner'), `${what}.owner`, 'write one user name, e.g. owner: www-data');
  const group = optionalText(reader, entries.get('group'), `${what}.group`, 'write one group name, e.g. group: www-data');
  const mode = parseEach(reader, entries.get('mode'), `${what}.mode`, 'write the octal digits, e.g. mode: 644', parseMode);
  const acls = parseAcls(reader, entries.get('acls'), `${what}.acls`);
  const context = parseContext(reader, entries.get('context'), `${what}.context`);
  if (object === undefined || pattern === undefined || except === null || type === undefined || mode === null || acls === null || context === null) {
    return undefined;
  }

  const permission: Permission = { object, pattern, except: (except ?? []).map((item) => item.text), type };
  if (owner !== undefined) permission.owner = owner;
  if (group !== undefined) permission.group = group;
  if (mode !== undefined) permission.mode = mode;
  if (acls !== undefined) permission.acls = acls;
  if (context !== undefined) permission.context = context;
  return permission;
}

function warnUnknownKeys(reader: AppSpecReader, entries: Map<string, MapEntry>, known: string[], what: string): void {
  for (const [key, entry] of entries) {
    if (known.includes(key)) continue;
    const suggestion = closestName(key, known);
    reader.warn(entry.keyNode, `${what} has an unknown key ${key}, which is ignored`, suggestion ? `did you mean ${suggestion}?` : `it takes ${known.join(', ')}`);
  }
}

function parseObject(reader: AppSpecReader, entry: MapEntry | undefined, permission: Node, what: string): string | undefined {
  if (entry?.value === undefined) {
    reader.error(entry?.at ?? permission, NO_OBJECT, 'add "object: <absolute path of an installed file or folder>"');
    return undefined;
  }
  const text = reader.expectText(entry, `${what}.object`, 'write one absolute path');
  if (text === undefined) return undefined;
  const object = text.trim();
  if (object === '') {
    reader.error(entry.at, NO_OBJECT, 'add the absolute path of an installed file or folder, e.g. object: /var/www/app');
    return undefined;
  }
  if (!object.startsWith('/')) {
    reader.warn(entry.at, `${what}.object ${object} is not an absolute path; the agent resolves it against its own working directory`, 'write the full path of an installed file or folder');
  }
  return object;
}

function parsePattern(reader: AppSpecReader, entry: MapEntry | undefined, what: string): string | undefined {
  if (entry?.value === undefined) return '**';
  const pattern = reader.expectText(entry, what, 'write one glob such as "*.sh", or leave pattern out to match everything');
  if (pattern !== undefined && pattern !== '**' && pattern.includes('/')) {
    reader.warn(entry.at, `${what} ${pattern} contains /, so it never matches: a pattern is matched against the names of the object's direct children`,
      'point object at the sub-folder and match names there, or use "**" for everything below object');
  }
  return pattern;
}

/**
 * A list of texts, each with where it was written: undefined when absent, null after a problem. A
 * single value is a problem (AWS's agent would crash on it), with the list form as hint.
 */
function parseTextList(reader: AppSpecReader, entry: MapEntry | undefined, what: string, key: string): { text: string; at: Node }[] | undefined | null {
  if (entry?.value === undefined) return undefined;
  if (!isSeq(entry.value)) {
    const hint = isScalar(entry.value) ? `write it as a list: ${key}: [${reader.text(entry.value)}]` : `write ${key}: [first, second]`;
    reader.wrongType(entry.at, what, 'a list', entry.value, hint);
    return null;
  }
  let valid = true;
  const texts: { text: string; at: Node }[] = [];
  reader.items(entry.value).forEach((item, index) => {
    if (item.value === undefined) {
      reader.error(item.at, `${what}[${index}] is empty`, 'remove the empty entry');
      valid = false;
      return;
    }
    const text = reader.expectText({ value: item.value, at: item.at }, `${what}[${index}]`, 'write one value per list item');
    if (text === undefined) valid = false;
    else texts.push({ text, at: item.at });
  });
  return valid ? texts : null;
}

function parseTypes(reader: AppSpecReader, entry: MapEntry | undefined, what: string): PermissionObjectType[] | undefined {
  if (entry?.value === undefined) return [...OBJECT_TYPES];
  if (!isSeq(entry.value)) {
    const hint = isScalar(entry.value) ? `write it as a list: type: [${reader.text(entry.value)}]` : 'write type: [file], type: [directory] or type: [file, directory]';
    reader.wrongType(entry.at, what, 'a list of file and/or directory', entry.value, hint);
    return undefined;
  }
  const types: PermissionObjectType[] = [];
  let valid = true;
  for (const item of reader.items(entry.value)) {
    const text = item.value !== undefined && isScalar(item.value) ? reader.text(item.value) : '';
    const type = OBJECT_TYPES.find((known) => known === text);
    if (type === undefined) {
      valid = false;
      const suggestion = closestName(text, OBJECT_TYPES);
      reader.error(item.at,
        `The deployment failed because the application specification file specifies a permission for an object type not supported for permissions (${text}). Update the permissions section of the AppSpec file, and then try again.`,
        suggestion ? `write ${suggestion}` : 'the types are file and directory');
    } else {
      types.push(type);
    }
  }
  return valid ? types : undefined;
}

function optionalText(reader: AppSpecReader, entry: MapEntry | undefined, what: string, hint: string): string | undefined {
  if (entry === undefined) return undefined;
  const text = reader.expectText(entry, what, hint)?.trim();
  return text === '' ? undefined : text;
}

/** One scalar through a value parser: undefined when absent, null when there is a problem (already reported). */
function parseEach<T>(reader: AppSpecReader, entry: MapEntry | undefined, what: string, hint: string, parse: (text: string) => Parsed<T>): T | undefined | null {
  if (entry?.value === undefined) return undefined;
  const text = reader.expectText(entry, what, hint);
  if (text === undefined) return null;
  const parsed = parse(text);
  if (parsed.ok) return parsed.value;
  reader.error(entry.at, parsed.message, parsed.hint);
  return null;
}

function parseAcls(reader: AppSpecReader, entry: MapEntry | undefined, what: string): string[] | undefined | null {
  const written = parseTextList(reader, entry, what, 'acls');
  if (written === undefined || written === null) return written;
  let valid = true;
  const acls: string[] = [];
  for (const { text, at } of written) {
    const parsed = parseAce(text);
    if (parsed.ok) acls.push(parsed.value);
    else {
      valid = false;
      reader.error(at, parsed.message, parsed.hint);
    }
  }
  return valid ? acls : null;
}

function parseContext(reader: AppSpecReader, entry: MapEntry | undefined, what: string): SelinuxContext | undefined | null {
  if (entry?.value === undefined) return undefined;
  if (!isMap(entry.value)) {
    reader.wrongType(entry.at, what, 'a mapping with type (and optionally name and range)', entry.value, 'write context: { type: httpd_sys_content_t }');
    return null;
  }
  const entries = reader.entries(entry.value);
  warnUnknownKeys(reader, entries, CONTEXT_KEYS, what);
  const typeEntry = entries.get('type');
  const type = typeEntry?.value === undefined ? undefined : reader.expectText(typeEntry, `${what}.type`, 'write one SELinux type, e.g. type: httpd_sys_content_t');
  if (typeEntry?.value === undefined) {
    reader.error(typeEntry?.at ?? entry.at,
      `The deployment failed because the application specification file specifies an invalid context type (${reader.inspect(entry.value)}). Update the permissions section of the AppSpec file, and then try again.`,
      'add the SELinux type, e.g. type: httpd_sys_content_t');
  }
  const user = parseContextUser(reader, entries, what);
  const range = parseEach(reader, entries.get('range'), `${what}.range`, 'write one range, e.g. range: s0-s3:c0.c5', parseSelinuxRange);
  if (type === undefined || user === null || range === null) return null;
  const context: SelinuxContext = { type };
  if (user !== undefined) context.user = user;
  if (range !== undefined) context.range = range;
  return context;
}

/**
 * The SELinux user. AWS's agent reads it from `name`; AWS's documentation calls it `user`, which the
 * agent silently ignores. Both are accepted here.
 */
function parseContextUser(reader: AppSpecReader, entries: Map<string, MapEntry>, what: string): string | undefined | null {
  const name = entries.get('name');
  const user = entries.get('user');
  const hint = 'write one SELinux user, e.g. system_u';
  const nameText = name && reader.expectText(name, `${what}.name`, hint);
  const userText = user && reader.expectText(user, `${what}.user`, hint);
  if (nameText !== undefined && userText !== undefined && nameText !== userText) {
    reader.error(user!.keyNode, `${what} names two different SELinux users: name ${nameText} and user ${userText}`, 'keep only one of name and user');
    return null;
  }
  return nameText ?? userText;
}
