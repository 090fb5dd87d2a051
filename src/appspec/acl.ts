import { parseFailure, parsedValue, type Parsed } from './parsed.js';

/**
 * One ACL entry as `ace_info.rb` reads it, returned in the canonical `[default:]<type>:<name>:rwx`
 * form (`d:u:bob:7` → `default:user:bob:rwx`, `m:0` → `mask::---`).
 *
 * The entry is split on `:` keeping empty parts and read from the right: permissions, then name or
 * type, then type, then the `default` flag.
 */
export function parseAce(ace: string): Parsed<string> {
  const invalid = () =>
    parseFailure<string>(
      `The deployment failed because of a problem with the acls permission settings in the application specification file. Invalid acl entry (${ace}).`,
      ACE_HINT,
    );
  const parts = ace.split(':').reverse();
  if (parts.length < 2 || parts.length > 4) return invalid();

  let isDefault = false;
  let type: AceType | undefined;
  let name = '';
  if (parts.length === 4) {
    if (!isDefaultWord(parts[3])) return invalid();
    isDefault = true;
  }
  if (parts.length >= 3) {
    if (isDefaultWord(parts[2])) {
      if (isDefault) return invalid();
      isDefault = true;
    } else {
      type = typeWord(parts[2]);
      if (type === undefined) return invalid();
    }
  }
  // The second part from the right is a type only when no type came before it (`m:rwx`, `d:o:r`).
  const second = typeWord(parts[1]);
  if (second === 'mask' || second === 'other') {
    if (type === undefined) type = second;
    else name = second;
  } else {
    type ??= 'user';
    name = parts[1];
  }

  if ((type === 'mask' || type === 'other') && name !== '') return invalid();
  if (!isDefault && type !== 'mask' && name === '') {
    return parseFailure(
      `The deployment failed because of a problem with the acls permission settings in the application specification file. Use mode to set the base acl entry (${ace}). Update the permissions section of the AppSpec file, and then try again.`,
      'the owner, group and other entries (u::, g::, o:) come from mode; acls are for named users and groups, e.g. u:bob:rw-',
    );
  }

  const permissions = parsePermissions(parts[0]);
  if (typeof permissions !== 'string') {
    // AWS's agent says "hooks section" here; it is the permissions section.
    return parseFailure(
      `The deployment failed because the access control list (ACL) named ${ace} in the application specification file contains an invalid character (${permissions.invalid}). Correct the ACL in the permissions section of the AppSpec file, and then try again.`,
      'write the permissions as one octal digit (0-7) or letters from r, w, x and -, e.g. rw- or 6',
    );
  }
  return parsedValue(`${isDefault ? 'default:' : ''}${type}:${name}:${permissions}`);
}

/** True for a canonical entry that only directories can take (`setfacl -d`). */
export function isDefaultAce(canonical: string): boolean {
  return canonical.startsWith('default:');
}

type AceType = 'user' | 'group' | 'mask' | 'other';

const ACE_HINT = 'write [d:]u|g|m|o:name:permissions, e.g. u:bob:rw-, g:www:r-x, d:g:www:5 or m::rx';

function isDefaultWord(word: string): boolean {
  return word === 'd' || word === 'default';
}

function typeWord(word: string): AceType | undefined {
  switch (word) {
    case 'u':
    case 'user':
      return 'user';
    case 'g':
    case 'group':
      return 'group';
    case 'm':
    case 'mask':
      return 'mask';
    case 'o':
    case 'other':
      return 'other';
    default:
      return undefined;
  }
}

/** A single octal digit, or any mix of r, w, x and - (order and repeats do not matter, as in AWS's agent). */
function parsePermissions(text: string): string | { invalid: string } {
  if (/^[0-7]$/.test(text)) {
    const bits = Number(text);
    return `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${bits & 1 ? 'x' : '-'}`;
  }
  const granted = new Set<string>();
  for (const char of text) {
    if (!'rwx-'.includes(char)) return { invalid: char };
    granted.add(char);
  }
  return `${granted.has('r') ? 'r' : '-'}${granted.has('w') ? 'w' : '-'}${granted.has('x') ? 'x' : '-'}`;
}
