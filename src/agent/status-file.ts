import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { redact } from '../log/redact.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import { AgentError } from '../report/errors.js';
import { STATUS_FILE_NAME, type StatusSnapshot } from './status-snapshot.js';

/**
 * The status file `<pid_dir>/codedeploy-agent.status.json`: the daemon rewrites it on every state change,
 * `codedeploy-agent status` reads it. Mode 0644 so any user can ask what the agent is doing, which is why
 * the snapshot never holds secrets.
 */
export function statusFilePath(pidDir: string): string {
  return join(pidDir, STATUS_FILE_NAME);
}

/** The status file exists but cannot be read or is not a status snapshot. */
export class StatusFileError extends AgentError {}

/**
 * Replaces the status file atomically: readers see the old snapshot or the new one, never half of one.
 * No fsync: the file describes the running process only and is rewritten often; after a power loss it is
 * stale anyway.
 */
export function writeStatusSnapshot(pidDir: string, snapshot: StatusSnapshot): void {
  mkdirSync(pidDir, { recursive: true, mode: 0o755 });
  // 0644 whatever the umask: non-root `status` reads it. Everything in it is written without secrets;
  // redact() is the backstop for a message that quotes one.
  writeFileAtomicSync(statusFilePath(pidDir), `${redact(JSON.stringify(snapshot, null, 2))}\n`, 0o644, { durable: false });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads the status file. Undefined when there is none; {@link StatusFileError} when it cannot be read or
 * is not a snapshot. Fields this version does not know are kept (a newer daemon may write more), and
 * missing lists read as empty.
 */
export function readStatusSnapshot(pidDir: string): StatusSnapshot | undefined {
  const path = statusFilePath(pidDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new StatusFileError(`cannot read the status file ${path}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new StatusFileError(`the status file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isRecord(raw) || typeof raw.pid !== 'number') {
    throw new StatusFileError(`the status file ${path} does not hold an agent status (no pid)`);
  }
  const list = (value: unknown) => (Array.isArray(value) ? value.filter(isRecord) : []);
  return {
    ...raw,
    inFlight: list(raw.inFlight),
    recent: list(raw.recent),
    downloads: list(raw.downloads),
  } as unknown as StatusSnapshot;
}
