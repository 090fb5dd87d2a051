import { spawn } from 'node:child_process';
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { redact } from '../log/redact.js';
import { AgentError } from '../report/errors.js';
import { findTool } from '../util/find-tool.js';
import { groupLockFile } from './layout.js';

/**
 * One deployment per group across processes: a local `deploy` and the daemon (or two `deploy`s) must
 * never write the group's pointer, cleanup and install files at once. Inside the daemon commands of one
 * group already queue (agent/concurrency.ts); this lock holds across processes.
 *
 * It is a flock(2) lock on `ROOT/deployment-instructions/<group>.lock`, so the kernel releases it the
 * moment its holder dies, `kill -9` included: no staleness to judge, no pid that could be reused. Node
 * has no flock binding; util-linux's `flock` takes the lock on a descriptor this process hands it, and
 * since a flock lock belongs to the open file (not to the process that asked), the lock stays with this
 * process's descriptor after `flock` exits (see docs/decisions.md, "Privilege safety"). Node opens every
 * file close-on-exec, so hooks never inherit the descriptor and a hook's background child cannot keep
 * the group locked. The file is never removed (removing a flock file lets two holders in); its content
 * names the holder, for the refusal message.
 */

export interface GroupLockHolder {
  pid: number;
  command: string;
  /** ISO time the holder took the lock. */
  since: string;
}

/** The group is being deployed by another process; says which. */
export class DeploymentGroupBusyError extends AgentError {
  readonly holder: GroupLockHolder | undefined;
  constructor(groupId: string, holder: GroupLockHolder | undefined) {
    super(
      holder
        ? `deployment group ${groupId} is busy: ${holder.command} (pid ${holder.pid}) has held it since ${holder.since}; wait for it to finish, or stop it`
        : `deployment group ${groupId} is busy: another process holds its lock; wait for it to finish, or stop it`,
    );
    this.holder = holder;
  }
}

export interface GroupLock {
  readonly path: string;
  /** Lets the next run in; safe to call more than once. */
  release(): void;
}

/** The flock exit status when the lock is held elsewhere (`--nonblock`). */
const FLOCK_CONFLICT = 1;
/** How long a refused run waits for a holder that has just taken the lock to write its name. */
const HOLDER_NAME_WAIT_MS = 200;

/** What this process calls itself in the lock file: `codedeploy-agent deploy -g web ...`, secrets redacted. */
export function describeThisProcess(argv: readonly string[] = process.argv): string {
  const [, script, ...args] = argv;
  const text = [basename(script ?? argv[0] ?? 'node').replace(/\.m?js$/, ''), ...args].join(' ');
  return redact(text).slice(0, 300);
}

/**
 * Takes the group's lock or throws {@link DeploymentGroupBusyError} at once (it never waits). The lock
 * file is opened without following a symlink and must be a plain file of this user with one link;
 * anything else planted there is refused, never written through.
 */
export async function lockDeploymentGroup(rootDir: string, groupId: string, options: { command?: string } = {}): Promise<GroupLock> {
  const path = groupLockFile(rootDir, groupId);
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new AgentError(`the lock file ${path} of deployment group ${groupId} is a symbolic link; the agent never follows one there. Remove it and try again`);
    throw new AgentError(`cannot open the lock file ${path} of deployment group ${groupId}: ${(error as Error).message}`, undefined, { cause: error });
  }
  let locked = false;
  try {
    checkOwnFile(fd, path, groupId);
    const outcome = await flockDescriptor(fd);
    if (outcome === 'busy') throw new DeploymentGroupBusyError(groupId, await readHolder(fd));
    locked = true;
    const holder: GroupLockHolder = { pid: process.pid, command: options.command ?? describeThisProcess(), since: new Date().toISOString() };
    ftruncateSync(fd, 0);
    writeSync(fd, `${JSON.stringify(holder)}\n`, 0);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  let released = !locked;
  return {
    path,
    release: () => {
      if (released) return;
      released = true;
      // Closing the only descriptor of the open file releases the flock lock; the content stays (stale
      // but harmless: it is only read while someone holds the lock).
      closeSync(fd);
    },
  };
}

function checkOwnFile(fd: number, path: string, groupId: string): void {
  const stats = fstatSync(fd);
  const uid = process.geteuid?.() ?? stats.uid;
  if (!stats.isFile() || stats.uid !== uid || stats.nlink !== 1) {
    const what = !stats.isFile() ? 'not a plain file' : stats.uid !== uid ? `owned by uid ${stats.uid}, not ${uid}` : `a file with ${stats.nlink} hard links`;
    throw new AgentError(`the lock file ${path} of deployment group ${groupId} is ${what}; the agent only uses a lock file it made. Remove it and try again`);
  }
}

/** Runs `flock --exclusive --nonblock 3` on our descriptor; 'busy' when another open file holds the lock. */
function flockDescriptor(fd: number): Promise<'locked' | 'busy'> {
  const tool = findTool('flock');
  if (!tool) {
    return Promise.reject(new AgentError('the flock command (util-linux) is missing; the agent needs it to lock deployment groups across processes: install util-linux'));
  }
  return new Promise((resolve, reject) => {
    const child = spawn(tool, ['--exclusive', '--nonblock', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('error', (error) => reject(new AgentError(`cannot run ${tool}: ${error.message}`, undefined, { cause: error })));
    child.once('close', (code) => {
      if (code === 0) resolve('locked');
      else if (code === FLOCK_CONFLICT) resolve('busy');
      else reject(new AgentError(`${tool} could not lock a deployment group (exit ${code}): ${stderr.trim()}`));
    });
  });
}

/** The holder's own description; it may not have written it yet, so a moment's patience. */
async function readHolder(fd: number): Promise<GroupLockHolder | undefined> {
  const deadline = Date.now() + HOLDER_NAME_WAIT_MS;
  for (;;) {
    const holder = parseHolder(readAll(fd));
    if (holder && holder.pid !== process.pid && processExists(holder.pid)) return holder;
    if (Date.now() >= deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function readAll(fd: number): string {
  const buffer = Buffer.alloc(4096);
  const length = readSync(fd, buffer, 0, buffer.length, 0);
  return buffer.subarray(0, length).toString('utf8');
}

export function parseHolder(text: string): GroupLockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<GroupLockHolder>;
    if (typeof value.pid === 'number' && typeof value.command === 'string' && typeof value.since === 'string') {
      return { pid: value.pid, command: value.command, since: value.since };
    }
  } catch {
    // empty (being written) or not ours
  }
  return undefined;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
