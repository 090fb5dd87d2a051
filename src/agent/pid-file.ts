import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync, fchmodSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError } from '../report/errors.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';

/**
 * The pid file `<pid_dir>/codedeploy-agent.pid` (agent-spec §7.1, §7.2): one decimal pid and a newline.
 * A pid file is only believed when the process it names is alive AND its command line mentions
 * `codedeploy-agent` — pids are reused, and after a reboot or a container restart the old number
 * may well belong to something else.
 */
export const PID_FILE_NAME = 'codedeploy-agent.pid';

/** The word a live agent's command line always holds (`node …/codedeploy-agent.mjs run`). */
const AGENT_MARK = 'codedeploy-agent';

export function pidFilePath(pidDir: string): string {
  return join(pidDir, PID_FILE_NAME);
}

export type PidFileState =
  /** No pid file: the agent is not running (or never ran with this pid_dir). */
  | { state: 'absent'; path: string }
  /** The pid file names a live agent process. */
  | { state: 'running'; path: string; pid: number }
  /** The pid file exists but names no live agent: empty, garbage, a dead pid or someone else's process. */
  | { state: 'stale'; path: string; pid?: number; reason: string }
  /** We could not tell (pid file or /proc unreadable). */
  | { state: 'unknown'; path: string; pid?: number; reason: string };

/** Thrown by {@link claimPidFile} when another agent already runs with the same pid_dir. */
export class AgentAlreadyRunningError extends AgentError {
  readonly pid: number;
  constructor(path: string, pid: number) {
    super(`Pid file ${path} exists and process ${pid} is running - aborting start! (stop it first: codedeploy-agent stop, or systemctl stop codedeploy-agent)`);
    this.pid = pid;
  }
}

/** Parses pid-file text; undefined when it does not hold exactly one positive pid. */
export function parsePid(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,10}$/.test(trimmed)) return undefined;
  const pid = Number(trimmed);
  return pid > 0 && pid <= 0x7fffffff ? pid : undefined;
}

/**
 * Is `pid` a live codedeploy-agent process? `'unknown'` when /proc cannot be read for it.
 * Our own pid never counts: the pid file may hold a number left over from an earlier boot that this
 * very process (`status`, or a daemon claiming the file) now happens to have.
 */
export function isAgentProcess(pid: number): boolean | 'unknown' {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return false;
    // EPERM: alive but owned by another user (status run as non-root); /proc decides.
    if (code !== 'EPERM') return 'unknown';
  }
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return false;
    return 'unknown';
  }
  // A zombie (exited, not yet reaped) has an empty command line: it is no longer the agent.
  return cmdline.includes(AGENT_MARK);
}

/** Reads and judges the pid file against the live process table. Never throws. */
export function checkPidFile(pidDir: string): PidFileState {
  const path = pidFilePath(pidDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { state: 'absent', path };
    return { state: 'unknown', path, reason: `cannot read ${path}: ${(error as Error).message}` };
  }
  const pid = parsePid(text);
  if (pid === undefined) {
    return { state: 'stale', path, reason: text.trim() === '' ? `${path} is empty` : `${path} does not hold a pid` };
  }
  const alive = isAgentProcess(pid);
  if (alive === true) return { state: 'running', path, pid };
  if (alive === 'unknown') return { state: 'unknown', path, pid, reason: `cannot read /proc/${pid} to check whether it is the agent` };
  return { state: 'stale', path, pid, reason: `${path} names pid ${pid}, but no codedeploy-agent process with that pid is running` };
}

/** Writes the pid file atomically (util/atomic-write), mode 0644. */
export function writePidFile(pidDir: string, pid: number = process.pid): void {
  mkdirSync(pidDir, { recursive: true, mode: 0o755 });
  // 0644 whatever the umask, like the status file: `status` reads it as any user, and it holds no secret.
  writeFileAtomicSync(pidFilePath(pidDir), `${pid}\n`, 0o644);
}

/**
 * Removes the pid file, but only while it still names `expectedPid` (when given), so a process never
 * deletes the file a newer agent has just written. Returns whether a file was removed.
 */
export function removePidFile(pidDir: string, expectedPid?: number): boolean {
  const path = pidFilePath(pidDir);
  if (expectedPid !== undefined) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return false;
    }
    if (parsePid(text) !== expectedPid) return false;
  }
  try {
    unlinkSync(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Removes a stale pid file (§7.1: "present but no matching process running - cleaning up").
 * Re-checks first, so a file an agent wrote meanwhile stays. Returns whether it was removed.
 */
export function removeStalePidFile(pidDir: string): boolean {
  const current = checkPidFile(pidDir);
  if (current.state !== 'stale') return false;
  const path = pidFilePath(pidDir);
  if (current.pid !== undefined) return removePidFile(pidDir, current.pid);
  try {
    // Empty or garbage: compare the text once more right before unlinking.
    if (parsePid(readFileSync(path, 'utf8')) !== undefined) return false;
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Takes the pid file for this process at daemon start (replaces the anchor's flock + pid check, §7.2):
 * creates it exclusively; if one exists, a live agent aborts the start ({@link AgentAlreadyRunningError}),
 * a stale one is replaced. Returns the stale state it replaced, if any, so the caller can log it.
 */
export function claimPidFile(pidDir: string, pid: number = process.pid): { replaced?: PidFileState } {
  mkdirSync(pidDir, { recursive: true, mode: 0o755 });
  const path = pidFilePath(pidDir);
  let replaced: PidFileState | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const existing = checkPidFile(pidDir);
      if (existing.state === 'running') throw new AgentAlreadyRunningError(path, existing.pid);
      if (existing.state === 'unknown') throw new AgentError(`Cannot tell whether another agent is running: ${existing.reason}`);
      if (existing.state === 'stale') {
        replaced = existing;
        removeStalePidFile(pidDir);
      }
      continue;
    }
    try {
      fchmodSync(fd, 0o644);
      writeSync(fd, `${pid}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return replaced ? { replaced } : {};
  }
  throw new AgentError(`Could not create ${path}: another process keeps recreating it`);
}

export { processStartTime } from '../util/process-start-time.js';
