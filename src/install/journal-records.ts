import type { SelinuxContext } from '../appspec/types.js';
import { isProcessIdentity, type ProcessIdentity } from '../util/process-identity.js';

/**
 * The records of an Install journal, one JSON object a line (a path may hold any byte but `/` and NUL,
 * newlines included: JSON escapes them). Pure: writing and reading the file is journal.ts and
 * recovery.ts. docs/decisions.md ("Crash consistency") says why each record exists and when it is written.
 */
export type JournalRecord =
  /** First line: whose Install this is, and the directory times to put back. */
  | {
      t: 'begin';
      v: 1;
      group: string;
      deployment: string;
      /** The agent process that runs the Install: a journal of a live process is never recovered by another. */
      owner: ProcessIdentity;
      cleanupFile: string;
      installJsonFile: string;
      /** [directory, atime, mtime] in seconds. */
      times: [string, number, number][];
    }
  /** The cleanup file and install.json as they were are saved in the backup folder (absent ones: false). */
  | { t: 'saved'; cleanup: boolean; installJson: boolean }
  /** About to move `path` to backup entry `n` (written ahead). */
  | { t: 'move'; n: number; path: string }
  /** The move of entry `n` is complete (written after an OVERWRITE move, before anything is created at its path). */
  | { t: 'moved'; n: number }
  /** Every move of the previous deployment's files is complete. */
  | { t: 'removed' }
  /** About to create `path` (written ahead); `after`: only once the file there was moved aside as entry `after`. */
  | { t: 'create'; path: string; dir?: true; after?: number }
  /** A create that failed because something was already there: not ours to remove. */
  | { t: 'not-created'; path: string }
  | { t: 'context-added'; path: string }
  /** About to delete the previous deployment's SELinux rule for `path` (`context`: what to re-add). */
  | { t: 'context-removed'; path: string; context?: SelinuxContext }
  /** Install is complete: from here on, a crash is finished forward, never undone. */
  | { t: 'commit' }
  /** Recovery started copying backup entry `n` back across file systems; a partial copy at its path is ours. */
  | { t: 'restoring'; n: number }
  /** Everything was undone: what is left is deleting the backup and the journal. */
  | { t: 'undone' };

export function formatRecords(records: readonly JournalRecord[]): string {
  let text = '';
  for (const record of records) text += `${JSON.stringify(record)}\n`;
  return text;
}

/**
 * The records of a journal file. A line that does not parse (the last one, cut by a crash in the middle
 * of a write, or garbage a power cut left) is skipped: an intention that was never written completely
 * was never acted on, because every action waits for its record's write to return.
 */
export function parseJournal(text: string): { records: JournalRecord[]; skipped: number } {
  const records: JournalRecord[] = [];
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const record = parseRecord(line);
    if (record) records.push(record);
    else skipped++;
  }
  return { records, skipped };
}

function parseRecord(line: string): JournalRecord | undefined {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const isString = (key: string) => typeof value[key] === 'string' && value[key] !== '';
  const isIndex = (key: string) => Number.isInteger(value[key]) && (value[key] as number) >= 0;
  switch (value.t) {
    case 'begin':
      return value.v === 1 && isString('group') && isString('deployment') && isProcessIdentity(value.owner)
        && isString('cleanupFile') && isString('installJsonFile') && Array.isArray(value.times)
        ? (value as JournalRecord)
        : undefined;
    case 'saved':
      return typeof value.cleanup === 'boolean' && typeof value.installJson === 'boolean' ? (value as JournalRecord) : undefined;
    case 'move':
      return isIndex('n') && isString('path') ? (value as JournalRecord) : undefined;
    case 'moved':
    case 'restoring':
      return isIndex('n') ? (value as JournalRecord) : undefined;
    case 'create':
      return isString('path') && (value.after === undefined || isIndex('after')) ? (value as JournalRecord) : undefined;
    case 'not-created':
    case 'context-added':
    case 'context-removed':
      return isString('path') ? (value as JournalRecord) : undefined;
    case 'removed':
    case 'commit':
    case 'undone':
      return value as JournalRecord;
    default:
      return undefined;
  }
}
