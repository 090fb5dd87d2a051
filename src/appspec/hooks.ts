import { isMap, isScalar, isSeq, type Node, type YAMLMap } from 'yaml';
import type { SourcePosition } from '../report/errors.js';
import { RESERVED_EVENTS, SCRIPTABLE_EVENTS, isScriptableEvent } from './events.js';
import type { AppSpecReader, ListItem, MapEntry } from './reader.js';
import { closestName } from './suggest.js';
import { DEFAULT_SCRIPT_TIMEOUT_SECONDS, MAX_EVENT_TIMEOUT_SECONDS, type HookScript } from './types.js';

const SCRIPT_KEYS = ['location', 'timeout', 'runas', 'sudo'];

const NO_LOCATION =
  'The deployment failed because the application specification file specifies a script with no location value. Specify the location in the hooks section of the AppSpec file, and then try again.';
const INVALID_TIMEOUT =
  'The deployment failed because an invalid timeout value was provided for a script in the application specification file. Make corrections in the hooks section of the AppSpec file, and then try again.';

/**
 * The `hooks` section: event name → scripts in file order. An event without scripts
 * (`ApplicationStop:` alone or `[]`) is left out. Fills `positions` with where each script's
 * location was written, for later checks against the bundle.
 */
export function parseHooks(
  reader: AppSpecReader,
  section: MapEntry,
  positions: Map<object, SourcePosition>,
  customEvents?: readonly string[],
): Record<string, HookScript[]> {
  const hooks: Record<string, HookScript[]> = {};
  if (section.value === undefined) return hooks;
  if (!isMap(section.value)) {
    reader.wrongType(section.at, 'hooks', 'a mapping of lifecycle event names to lists of scripts', section.value,
      'indent the events under hooks:, e.g. "  ApplicationStart:" followed by "    - location: scripts/start.sh"');
    return hooks;
  }
  for (const [event, entry] of reader.entries(section.value)) {
    checkEventName(reader, event, entry.keyNode, customEvents);
    if (entry.value === undefined) continue;
    if (!isSeq(entry.value)) {
      reader.wrongType(entry.at, `hooks.${event}`, 'a list of scripts', entry.value, listHint(reader, entry.value));
      continue;
    }
    const scripts: HookScript[] = [];
    let explicitTotal = 0;
    let withoutTimeout = 0;
    reader.items(entry.value).forEach((item, index) => {
      const script = parseScript(reader, item, `hooks.${event}[${index}]`, positions);
      if (script === undefined) return;
      scripts.push(script.script);
      explicitTotal += script.explicitTimeout ?? 0;
      if (script.explicitTimeout === undefined) withoutTimeout += 1;
    });
    // Scripts without a timeout are not counted in the error: AWS's agent gives each of them 3600 s, and
    // appspecs with several such scripts in one event are common and work. They are worth a warning.
    if (explicitTotal > MAX_EVENT_TIMEOUT_SECONDS) {
      reader.error(entry.keyNode,
        `the timeouts of the ${event} scripts add up to ${explicitTotal} seconds; CodeDeploy allows at most ${MAX_EVENT_TIMEOUT_SECONDS} seconds for one lifecycle event`,
        `lower the timeouts so they add up to ${MAX_EVENT_TIMEOUT_SECONDS} or less, or move a script to another event`);
    } else if (withoutTimeout > 0 && scripts.length > 1 && explicitTotal + withoutTimeout * DEFAULT_SCRIPT_TIMEOUT_SECONDS > MAX_EVENT_TIMEOUT_SECONDS) {
      const total = explicitTotal + withoutTimeout * DEFAULT_SCRIPT_TIMEOUT_SECONDS;
      reader.warn(entry.keyNode,
        `the ${event} scripts may run for ${total} seconds together (each script without a timeout gets ${DEFAULT_SCRIPT_TIMEOUT_SECONDS}); CodeDeploy allows at most ${MAX_EVENT_TIMEOUT_SECONDS} seconds for one lifecycle event`,
        `give every ${event} script a timeout, adding up to ${MAX_EVENT_TIMEOUT_SECONDS} or less`);
    }
    if (scripts.length > 0) hooks[event] = scripts;
  }
  return hooks;
}

/**
 * An event under hooks must be one the agent runs. Where the run's custom events are known (validate,
 * deploy), any other name is an error, found before anything runs; the daemon only warns, since the
 * service decides which events an instance gets and an event that never comes harms nothing.
 */
function checkEventName(reader: AppSpecReader, event: string, at: Node, customEvents: readonly string[] | undefined): void {
  const instead = RESERVED_EVENTS[event];
  if (instead !== undefined) {
    reader.error(at, `${event} is a step the agent performs itself; it cannot run scripts`, `put these scripts under ${instead}`);
    return;
  }
  if (isScriptableEvent(event) || customEvents?.includes(event)) return;
  const suggestion = closestName(event, SCRIPTABLE_EVENTS);
  const custom = 'a custom event runs only in a local deployment whose --events names it';
  const hint = suggestion ? `did you mean ${suggestion}? Event names are case-sensitive; ${custom}` : `the lifecycle events are ${SCRIPTABLE_EVENTS.join(', ')}; ${custom}`;
  if (customEvents === undefined) {
    reader.warn(at, `${event} is not a CodeDeploy lifecycle event; its scripts run only in a local deployment that lists it in --events`, hint);
  } else {
    reader.error(at, `${event} is not a CodeDeploy lifecycle event, so its scripts would never run`, hint);
  }
}

function listHint(reader: AppSpecReader, value: Node): string {
  if (isMap(value)) return 'start each script with a dash: "- location: scripts/start.sh"';
  if (isScalar(value)) return `write it as a list: "- location: ${reader.text(value)}"`;
  return 'write each script as "- location: <path in the bundle>"';
}

function parseScript(
  reader: AppSpecReader,
  item: ListItem,
  what: string,
  positions: Map<object, SourcePosition>,
): { script: HookScript; explicitTimeout?: number } | undefined {
  if (item.value === undefined) {
    reader.error(item.at, NO_LOCATION, 'write "- location: <path of the script in the bundle>"');
    return undefined;
  }
  if (!isMap(item.value)) {
    const hint = isScalar(item.value) ? `write "- location: ${reader.text(item.value)}"` : 'write "- location: <path of the script in the bundle>"';
    reader.wrongType(item.at, what, 'a mapping with a location (and optionally timeout, runas, sudo)', item.value, hint);
    return undefined;
  }
  const entries = reader.entries(item.value);
  warnUnknownKeys(reader, entries, what);

  const location = parseLocation(reader, entries.get('location'), item.value, what);
  const timeout = parseTimeout(reader, entries.get('timeout'), `${what}.timeout`);
  const runas = parseRunas(reader, entries.get('runas'), `${what}.runas`);
  const sudo = parseSudo(reader, entries.get('sudo'), `${what}.sudo`);
  if (location === undefined) return undefined;

  // A script with a bad timeout or sudo is still returned (the problem already keeps the appspec from
  // being used), so validate can check that its file exists too.
  const script: HookScript = { location: location.text, timeout: timeout?.seconds ?? DEFAULT_SCRIPT_TIMEOUT_SECONDS, sudo: sudo ?? false };
  if (runas !== undefined) script.runas = runas;
  positions.set(script, reader.position(location.at));
  return { script, explicitTimeout: timeout?.explicit ? timeout.seconds : undefined };
}

function warnUnknownKeys(reader: AppSpecReader, entries: Map<string, MapEntry>, what: string): void {
  for (const [key, entry] of entries) {
    if (SCRIPT_KEYS.includes(key)) continue;
    const suggestion = closestName(key, SCRIPT_KEYS);
    reader.warn(entry.keyNode, `${what} has an unknown key ${key}, which is ignored`,
      suggestion ? `did you mean ${suggestion}?` : `a script takes ${SCRIPT_KEYS.join(', ')}`);
  }
}

function parseLocation(reader: AppSpecReader, entry: MapEntry | undefined, script: YAMLMap, what: string): { text: string; at: Node } | undefined {
  if (entry?.value === undefined) {
    reader.error(entry?.at ?? script, NO_LOCATION, 'add "location: <path of the script in the bundle>"');
    return undefined;
  }
  const text = reader.expectText(entry, `${what}.location`, 'write the path of one script, relative to the bundle root');
  if (text === undefined) return undefined;
  // AWS's agent strips the location (`to_s.strip`) before checking it.
  if (text.trim() === '') {
    reader.error(entry.at, NO_LOCATION, 'add the path of the script in the bundle, e.g. location: scripts/start.sh');
    return undefined;
  }
  return { text: text.trim(), at: entry.at };
}

/**
 * Seconds, default 3600. AWS's agent takes Ruby's `to_i`, so `"30abc"` is 30 and `"foo"` is 0 (then
 * refused); here text must be a number, and a fraction is dropped with a warning.
 */
function parseTimeout(reader: AppSpecReader, entry: MapEntry | undefined, what: string): { seconds: number; explicit: boolean } | undefined {
  if (entry?.value === undefined) return { seconds: DEFAULT_SCRIPT_TIMEOUT_SECONDS, explicit: false };
  const hint = 'write a whole number of seconds greater than 0, e.g. timeout: 300';
  if (!isScalar(entry.value)) {
    reader.wrongType(entry.at, what, 'a number of seconds', entry.value, hint);
    return undefined;
  }
  const written = reader.text(entry.value);
  let seconds: number;
  if (typeof entry.value.value === 'number') seconds = entry.value.value;
  else if (typeof entry.value.value === 'string' && /^[+-]?\d+(\.\d+)?$/.test(written.trim())) seconds = Number(written.trim());
  else {
    reader.error(entry.at, INVALID_TIMEOUT, `${hint}; "${written}" is not a number`);
    return undefined;
  }
  if (!Number.isFinite(seconds) || Math.trunc(seconds) <= 0) {
    reader.error(entry.at, INVALID_TIMEOUT, `${hint}; it is ${written}`);
    return undefined;
  }
  if (!Number.isInteger(seconds)) {
    reader.warn(entry.at, `${what} ${written} is not a whole number; the agent uses ${Math.trunc(seconds)} seconds`, `write timeout: ${Math.trunc(seconds)}`);
  }
  return { seconds: Math.trunc(seconds), explicit: true };
}

function parseRunas(reader: AppSpecReader, entry: MapEntry | undefined, what: string): string | undefined {
  if (entry === undefined) return undefined;
  const text = reader.expectText(entry, what, 'write the name of one user, e.g. runas: www-data');
  if (text === undefined) return undefined;
  if (text.trim() === '') {
    reader.warn(entry.at, `${what} is empty, so the script runs as the agent's own user`, 'name a user, or remove runas');
    return undefined;
  }
  return text.trim();
}

const FALSE_WORDS = ['false', 'no', 'off', 'n'];
const TRUE_WORDS = ['true', 'yes', 'on', 'y'];

/**
 * Whether to run the script through sudo. AWS's agent treats any non-null value as true, even the
 * text "false"; here the words false/no/off mean false, whether quoted or not.
 */
function parseSudo(reader: AppSpecReader, entry: MapEntry | undefined, what: string): boolean | undefined {
  if (entry?.value === undefined) return false;
  if (!isScalar(entry.value)) {
    reader.wrongType(entry.at, what, 'true or false', entry.value, 'write sudo: true or sudo: false');
    return undefined;
  }
  const value = entry.value.value;
  if (typeof value === 'boolean') return value;
  const written = reader.text(entry.value).trim().toLowerCase();
  if (FALSE_WORDS.includes(written)) return false;
  if (TRUE_WORDS.includes(written)) return true;
  const meaning = typeof value === 'number' ? value !== 0 : true;
  reader.warn(entry.at, `${what} ${reader.text(entry.value)} is read as ${meaning}`, 'write sudo: true or sudo: false');
  return meaning;
}
