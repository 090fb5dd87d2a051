import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { listProcesses } from '../util/process-identity.js';
import { LineSplitter, MAX_LINE_LENGTH } from './line-splitter.js';

/**
 * The one place that owns hook child processes: it starts them in their own process group, reads
 * their output, and stops them — on timeout or agent shutdown — with SIGTERM to the whole group, a
 * grace period, then SIGKILL to the group. Everything here is bounded in time:
 *
 * - a script that traps SIGTERM is killed `killGraceMs` after the timeout (AWS's agent waited for it
 *   forever);
 * - once the script has exited, its output is read for at most `outputGraceMs` more; a background
 *   process that inherited stdout/stderr (`my-daemon &`) then has our pipe ends closed under it
 *   and the script is judged by its exit status (AWS's agent waited out the whole timeout and
 *   failed with code 6, aws-codedeploy-agent #26, #118). The background process itself is left running.
 */

export type OutputStreamName = 'stdout' | 'stderr';

export interface ScriptProcessOptions {
  command: string;
  args: readonly string[];
  env: Record<string, string>;
  /** Default: the agent's own working directory (as AWS's agent). */
  cwd?: string;
  timeoutMs: number;
  /** Between SIGTERM and SIGKILL. */
  killGraceMs: number;
  /** How long output is still read after the script exited. */
  outputGraceMs: number;
  /** Aborting stops the script like a timeout does (agent shutdown). */
  signal?: AbortSignal;
  /** Complete lines, in order per stream; reading pauses until the returned promise settles. */
  onLines: (stream: OutputStreamName, lines: string[]) => Promise<void> | void;
  /** Called when the timeout fires or the signal aborts, before SIGTERM is sent. */
  onStopping?: (reason: 'timeout' | 'abort') => void;
  /**
   * Called as soon as the script runs, with its pid (= its process group); the function it returns is
   * called once the script is over: when it exited by itself, or once its group was stopped. The agent
   * records running hooks with it, so a restart after a crash finds the ones it left behind.
   */
  onSpawned?: (pid: number) => (() => void) | undefined;
  maxLineLength?: number;
}

export type ScriptProcessOutcome = 'exited' | 'timed-out' | 'aborted' | 'spawn-failed';

export interface ScriptProcessResult {
  outcome: ScriptProcessOutcome;
  /** Also the process group id; undefined when spawning failed. */
  pid?: number;
  exitCode: number | null;
  /** The signal that ended the script, when one did. */
  exitSignal: NodeJS.Signals | null;
  spawnError?: Error;
  /** Streams still held open (by a background process) when we stopped reading. */
  streamsLeftOpen: OutputStreamName[];
  /** True when SIGTERM was not enough and the group got SIGKILL. */
  killed: boolean;
}

/** After SIGKILL: how long to wait for the exit to be observed, and for the pipes to drain. */
const EXIT_AFTER_KILL_MS = 1000;
const DRAIN_AFTER_KILL_MS = 250;
const GROUP_POLL_MS = 50;

const sleep = (ms: number) => new Promise<void>((resolveSleep) => setTimeout(resolveSleep, ms));

/** Resolves with the promise's value, or `undefined` after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<undefined>((resolveLate) => {
      timer = setTimeout(() => resolveLate(undefined), Math.max(0, ms));
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Sends `signal` to every process of the group; false when the group no longer exists. */
export function signalProcessGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether any process of the group is still running. Zombies do not count: an orphan that died is
 * reaped by init whenever init gets to it, and waiting for that would only delay the answer.
 */
export function processGroupAlive(pgid: number): boolean {
  if (!signalProcessGroup(pgid, 0)) return false;
  return listProcesses().some((process) => process.pgrp === pgid);
}

/**
 * SIGTERM to the group, up to `graceMs` for all of it to go, then SIGKILL to whatever is left.
 * Returns whether SIGKILL was sent. `stillTheGroup`, asked before SIGKILL, lets a caller that does not
 * own the group (a hook left by a killed agent) make sure the id was not given to someone else meanwhile.
 */
export async function terminateProcessGroup(pgid: number, graceMs: number, stillTheGroup: () => boolean = () => true): Promise<boolean> {
  if (!signalProcessGroup(pgid, 'SIGTERM')) return false;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await sleep(Math.min(GROUP_POLL_MS, deadline - Date.now()));
    if (!processGroupAlive(pgid)) return false;
  }
  return stillTheGroup() && signalProcessGroup(pgid, 'SIGKILL');
}

interface LineReader {
  name: OutputStreamName;
  /** Resolves when the stream ended (or was abandoned) and every line was delivered. */
  finished: Promise<void>;
  isOpen(): boolean;
  /** Stop reading: close our end of the pipe. */
  abandon(): void;
}

function readLines(
  stream: Readable,
  name: OutputStreamName,
  onLines: ScriptProcessOptions['onLines'],
  maxLineLength: number,
): LineReader {
  const splitter = new LineSplitter(maxLineLength);
  let open = true;
  let delivered: Promise<void> = Promise.resolve();
  let markFinished: () => void = () => {};
  const finished = new Promise<void>((resolveFinished) => {
    markFinished = resolveFinished;
  });
  const deliver = (lines: string[]) => {
    if (lines.length === 0) return;
    stream.pause();
    delivered = delivered
      .then(() => onLines(name, lines))
      .catch(() => undefined)
      .then(() => {
        if (open) stream.resume();
      });
  };
  const finish = () => {
    if (!open) return;
    open = false;
    deliver(splitter.end());
    void delivered.then(markFinished);
  };
  stream.on('data', (chunk: Buffer) => deliver(splitter.push(chunk)));
  stream.once('end', finish);
  stream.once('close', finish);
  stream.once('error', finish);
  return {
    name,
    finished,
    isOpen: () => open,
    abandon: () => {
      stream.destroy();
      finish();
    },
  };
}

function failedToSpawn(error: Error): ScriptProcessResult {
  return { outcome: 'spawn-failed', exitCode: null, exitSignal: null, spawnError: error, streamsLeftOpen: [], killed: false };
}

/** Runs one script to completion, timeout or abort; never throws for the script's own failures. */
export async function runScriptProcess(options: ScriptProcessOptions): Promise<ScriptProcessResult> {
  if (options.signal?.aborted) {
    return { outcome: 'aborted', exitCode: null, exitSignal: null, streamsLeftOpen: [], killed: false };
  }
  let child: ChildProcess;
  try {
    child = spawn(options.command, [...options.args], {
      cwd: options.cwd,
      env: options.env,
      // setsid(): the script leads a new session and process group, which we signal as a whole.
      detached: true,
      // stdin is /dev/null: the script can never wait for input (AWS's agent closed the pipe).
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    return failedToSpawn(error as Error);
  }

  // A spawn that fails outright still returns a child, without a pid.
  const spawnedOver = child.pid === undefined ? undefined : options.onSpawned?.(child.pid);
  let over = false;
  let stopping = false;
  const markOver = () => {
    if (over) return;
    over = true;
    spawnedOver?.();
  };
  // A script that exited by itself is over, even if a background child it left in its group runs on
  // (that one is the application's, not the hook's); a script being stopped is over once its group is.
  child.once('exit', () => {
    if (!stopping) markOver();
  });

  const maxLineLength = options.maxLineLength ?? MAX_LINE_LENGTH;
  const readers = [
    readLines(child.stdout as Readable, 'stdout', options.onLines, maxLineLength),
    readLines(child.stderr as Readable, 'stderr', options.onLines, maxLineLength),
  ];
  const allRead = Promise.all(readers.map((reader) => reader.finished));
  const abandonOpenReaders = (): OutputStreamName[] => {
    const open = readers.filter((reader) => reader.isOpen()).map((reader) => reader.name);
    for (const reader of readers) reader.abandon();
    return open;
  };

  type Ending =
    | { kind: 'exit'; code: number | null; signal: NodeJS.Signals | null }
    | { kind: 'error'; error: Error }
    | { kind: 'timeout' }
    | { kind: 'abort' };

  const exited = new Promise<Ending & { kind: 'exit' }>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit({ kind: 'exit', code, signal }));
  });
  const spawnFailed = new Promise<Ending>((resolveError) => {
    child.once('error', (error) => resolveError({ kind: 'error', error }));
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<Ending>((resolveTimeout) => {
    // setTimeout's ceiling is ~24.8 days; no hook timeout is anywhere near it.
    timer = setTimeout(() => resolveTimeout({ kind: 'timeout' }), Math.min(Math.max(0, options.timeoutMs), 2 ** 31 - 1));
  });
  let onAbort: () => void = () => {};
  const aborted = new Promise<Ending>((resolveAbort) => {
    onAbort = () => resolveAbort({ kind: 'abort' });
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
  const cleanUp = () => {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  };

  const ending = await Promise.race([exited, spawnFailed, timedOut, aborted]);

  if (ending.kind === 'error' && child.pid === undefined) {
    cleanUp();
    markOver();
    abandonOpenReaders();
    await within(allRead, DRAIN_AFTER_KILL_MS);
    return failedToSpawn(ending.error);
  }

  const pid = child.pid as number;
  if (ending.kind === 'exit') {
    // Normal end: give the pipes `outputGraceMs` to reach end-of-file. Shutdown cuts this short too.
    clearTimeout(timer);
    await Promise.race([within(allRead, options.outputGraceMs), aborted]);
    cleanUp();
    const streamsLeftOpen = abandonOpenReaders();
    await allRead;
    return { outcome: 'exited', pid, exitCode: ending.code, exitSignal: ending.signal, streamsLeftOpen, killed: false };
  }

  // Timeout, shutdown, or an 'error' after the process started (e.g. a failed kill): stop the group.
  cleanUp();
  stopping = true;
  const reason = ending.kind === 'abort' ? 'abort' : 'timeout';
  options.onStopping?.(reason);
  const killed = await terminateProcessGroup(pid, options.killGraceMs).finally(markOver);
  const exit = await within(exited, EXIT_AFTER_KILL_MS);
  await within(allRead, DRAIN_AFTER_KILL_MS);
  const streamsLeftOpen = abandonOpenReaders();
  await within(allRead, DRAIN_AFTER_KILL_MS);
  return {
    outcome: reason === 'abort' ? 'aborted' : 'timed-out',
    pid,
    exitCode: exit?.code ?? null,
    exitSignal: exit?.signal ?? null,
    streamsLeftOpen,
    killed,
  };
}
