import { relative } from 'node:path';
import type { Logger } from '../log/logger.js';
import { ErrorCode, type ErrorCodeValue } from '../report/error-codes.js';
import { formatMs } from '../util/duration.js';
import { LogTail } from './log-tail.js';
import type { OperatorHookPoint, PointHooks } from './operator-hook-files.js';
import { reportLeftOpenStreams } from './run-event-scripts.js';
import { runScriptProcess, type ScriptProcessResult } from './run-script-process.js';
import type { ScriptsLog } from './scripts-log.js';

/**
 * Runs the operator hooks of one point with the runner bundle hooks use (own process group, timeout →
 * SIGTERM → grace → SIGKILL, output read line by line into scripts.log), each line labelled with the
 * hook's name in the hooks folder: `[pre-event.d/10-lb][stdout]…`.
 *
 * A `pre-` point stops at its first failure (and runs nothing if a hook of it is refused): the caller
 * fails the lifecycle event. A `post-` point runs every hook whatever the others did (putting the host
 * back into a load balancer must not depend on a chat notification working): failures are returned to
 * be logged and shown.
 */
export interface OperatorHookFailure {
  path: string;
  code: ErrorCodeValue;
  message: string;
  /** The hook's output tail, for the diagnostics. */
  logTail: string;
}

export type OperatorHookOutcome = 'succeeded' | 'failed' | 'timed_out' | 'refused';

export interface RunOperatorHooksOptions {
  point: OperatorHookPoint;
  hooks: PointHooks;
  /** The hooks folder, for labels. */
  dir: string;
  /** The whole environment of each hook (buildHookEnvironment of the hook variables). */
  env: Record<string, string>;
  scriptsLog: ScriptsLog;
  deploymentId: string;
  timeoutMs: number;
  killGraceMs: number;
  outputGraceMs: number;
  /** Agent shutdown: the running hook's group is stopped. */
  signal?: AbortSignal;
  logger: Logger;
  onHook?: (outcome: OperatorHookOutcome) => void;
  /** Each hook's pid once it runs; returns what to call once it is over (see RunningHooks). */
  recordHook?: (pid: number, path: string) => (() => void) | undefined;
}

function failureOf(result: ScriptProcessResult, path: string, timeoutMs: number): { code: ErrorCodeValue; message: string; outcome: OperatorHookOutcome } | undefined {
  const name = `Operator hook ${path}`;
  switch (result.outcome) {
    case 'timed-out':
      return { code: ErrorCode.ScriptTimedOut, message: `${name} failed to complete in ${timeoutMs / 1000} seconds (operator_hook_timeout_seconds)`, outcome: 'timed_out' };
    case 'aborted':
      return { code: ErrorCode.ScriptFailed, message: `${name} was stopped because the agent is shutting down`, outcome: 'failed' };
    case 'spawn-failed': {
      const error = result.spawnError as NodeJS.ErrnoException;
      return { code: ErrorCode.ScriptFailed, message: `${name} could not be started: ${error.code ?? error.name} ${error.message}`, outcome: 'failed' };
    }
    case 'exited':
      if (result.exitSignal) return { code: ErrorCode.ScriptFailed, message: `${name} was killed by signal ${result.exitSignal}`, outcome: 'failed' };
      if (result.exitCode !== 0) return { code: ErrorCode.ScriptFailed, message: `${name} failed with exit code ${result.exitCode}`, outcome: 'failed' };
      return undefined;
  }
}

/** Returns the failures (at most one for a `pre-` point); never throws for a hook's own failure. */
export async function runOperatorHooks(options: RunOperatorHooksOptions): Promise<OperatorHookFailure[]> {
  const { point, hooks, logger } = options;
  const stopAtFirstFailure = point.startsWith('pre-');
  const failures: OperatorHookFailure[] = [];
  const log = (messages: string[]) => options.scriptsLog.append(messages, options.deploymentId);
  const label = (path: string) => relative(options.dir, path) || path;

  for (const skipped of hooks.skipped) {
    logger.info(`Operator hook skipped: ${skipped.reason}`);
    await log([`OperatorHook - ${label(skipped.path)} skipped: ${skipped.reason}`]);
  }
  for (const refused of hooks.refused) {
    const message = `Operator hook ${refused.path} refused: ${refused.reason}. Operator hooks run as root, so they and every folder above them must belong to root and be writable by nobody else`;
    logger.error(message);
    await log([`OperatorHook - ${label(refused.path)} refused: ${refused.reason}`]);
    options.onHook?.('refused');
    failures.push({ path: refused.path, code: ErrorCode.ScriptFailed, message, logTail: '' });
    // A pre- point with an untrusted hook runs none of its hooks: half a "take the host out" is worse.
    if (stopAtFirstFailure) return failures;
  }

  for (const path of hooks.run) {
    const name = label(path);
    const tail = new LogTail();
    const output = async (messages: string[]) => {
      tail.pushMessages(messages);
      await log(messages);
    };
    await log([`OperatorHook - ${name}`]);
    const started = Date.now();
    const result = await runScriptProcess({
      command: path,
      args: [],
      env: options.env,
      timeoutMs: options.timeoutMs,
      killGraceMs: options.killGraceMs,
      outputGraceMs: options.outputGraceMs,
      signal: options.signal,
      onSpawned: options.recordHook && ((pid) => options.recordHook?.(pid, path)),
      onLines: (stream, lines) => output(lines.map((line) => `[${name}][${stream}]${line}`)),
      onStopping: (reason) => {
        const message = reason === 'timeout' ? `Operator hook ${path} timed out` : `Operator hook ${path} is being stopped because the agent is shutting down`;
        logger.info(message);
        void log([`${message}; sending SIGTERM to its process group (SIGKILL after ${options.killGraceMs / 1000} seconds)`]);
      },
    });
    await reportLeftOpenStreams(result, path, options.outputGraceMs, output, logger);
    const failure = failureOf(result, path, options.timeoutMs);
    const took = formatMs(Date.now() - started);
    if (!failure) {
      logger.info(`Operator hook ${path} (${point}) succeeded in ${took}`);
      await log([`OperatorHook - ${name} succeeded in ${took}`]);
      options.onHook?.('succeeded');
      continue;
    }
    if (result.killed) await log([`Operator hook ${path} did not stop after SIGTERM; its process group was killed (SIGKILL)`]);
    (point.startsWith('pre-') ? logger.error : logger.warn).call(logger, `${failure.message} (${point})`);
    await log([`OperatorHook - ${name}: ${failure.message}`]);
    options.onHook?.(failure.outcome);
    failures.push({ path, code: failure.code, message: failure.message, logTail: tail.text() });
    if (stopAtFirstFailure) break;
  }
  return failures;
}
