import type { HookScript } from '../appspec/types.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { ErrorCode } from '../report/error-codes.js';
import { ScriptError } from '../report/errors.js';
import { buildHookEnvironment } from './hook-environment.js';
import { LogTail } from './log-tail.js';
import { runScriptProcess, type OutputStreamName, type ScriptProcessResult } from './run-script-process.js';
import { buildScriptCommand, lookupUser, type HostUser, type ScriptCommand } from './script-command.js';
import { CRLF_HINT, ensureExecutable, hasCrlfShebang, resolveScriptPath } from './script-path.js';
import type { ScriptsLog } from './scripts-log.js';

/*
 * Hook execution, compared with AWS's agent (docs/compatibility.md, "Hooks" and "Deliberately better"):
 * - kept: locations joined to the revision folder, the chmod +x fallback, error codes and messages,
 *   scripts.log / deployments-log formats, stdin closed (here: /dev/null), one process group per
 *   script, working directory inherited from the agent (`/` under systemd, the caller's for
 *   codedeploy-local), the environment of the agent plus the hook variables;
 * - fixed: `..` out of the revision refused; agent credentials removed from the environment;
 *   SIGKILL after `killGraceMs` so a timeout always ends; a background process holding
 *   stdout/stderr costs `outputGraceMs` and a warning, not the whole timeout and code 6 (aws-codedeploy-agent #118); the
 *   exit status is always examined; runas without `su -c` (see script-command.ts); a tail that
 *   is never empty and never over 2048 characters, without ANSI escapes and known secrets;
 *   long lines split at 64 KiB; scripts.log rotated by size.
 */

export const DEFAULT_KILL_GRACE_MS = 5000;
export const DEFAULT_OUTPUT_GRACE_MS = 5000;

export interface RunEventScriptsOptions {
  event: string;
  scripts: HookScript[];
  /** The revision folder the scripts' locations are relative to. */
  archiveDir: string;
  deploymentId: string;
  /** The hook variables (LIFECYCLE_EVENT, DEPLOYMENT_ID, BUNDLE_*...); `undefined` removes a variable. */
  env: Record<string, string | undefined>;
  scriptsLog: ScriptsLog;
  /** Between SIGTERM and SIGKILL on timeout or shutdown. Default 5000. */
  killGraceMs?: number;
  /** How long a background process may hold stdout/stderr after the script exited. Default 5000. */
  outputGraceMs?: number;
  /** Agent shutdown: the running script's group is stopped (TERM, grace, KILL). */
  signal?: AbortSignal;
  onScriptStart?: (location: string) => void;
  /** Each script's pid once it runs; returns what to call once it is over (see RunningHooks). */
  recordHook?: (pid: number, location: string) => (() => void) | undefined;
  logger?: Logger;
  /** The environment hooks inherit (minus credentials). Default: the agent's process.env. */
  baseEnv?: NodeJS.ProcessEnv;
  /** Where scripts run. Default: the agent's working directory, as AWS's agent (`/` under systemd). */
  cwd?: string;
}

const STREAM_PREFIX: Record<OutputStreamName, string> = { stdout: '[stdout]', stderr: '[stderr]' };

function describeStreams(streams: OutputStreamName[]): string {
  return streams.map((stream) => stream.toUpperCase()).join(' and ');
}

/**
 * Runs the scripts of one lifecycle event in order, logging to scripts.log and the
 * deployments log. Returns the diagnostics tail; throws a ScriptError for the first script that fails
 * (later scripts do not run).
 */
export async function runEventScripts(options: RunEventScriptsOptions): Promise<{ logTail: string }> {
  const logger = options.logger ?? silentLogger;
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const outputGraceMs = options.outputGraceMs ?? DEFAULT_OUTPUT_GRACE_MS;
  const tail = new LogTail();
  const log = async (messages: string[]) => {
    tail.pushMessages(messages);
    await options.scriptsLog.append(messages, options.deploymentId);
  };
  const hookEnv = buildHookEnvironment(options.baseEnv ?? process.env, options.env);

  if (options.scripts.length === 0) return { logTail: '' };
  // Every runas user of the event is looked up before its first script runs: a typo in the third
  // script's user must not leave the first two scripts' work half done.
  const accounts = new Map<string, HostUser>();
  for (const script of options.scripts) {
    if (!script.runas || accounts.has(script.runas)) continue;
    const account = await lookupUser(script.runas);
    if (!account) {
      const error = new ScriptError(
        ErrorCode.ScriptFailed,
        script.location,
        `Script at specified location: ${script.location} run as user ${script.runas} failed: user ${script.runas} does not exist on this host; no script of ${options.event} was run`,
      );
      logger.error(error.message);
      throw error;
    }
    accounts.set(script.runas, account);
  }
  await log([`LifecycleEvent - ${options.event}`]);

  for (const script of options.scripts) {
    const { location } = script;
    const prefix = `Script at specified location: ${location}${script.runas ? ` run as user ${script.runas}` : ''}`;
    const fail = (code: (typeof ErrorCode)[keyof typeof ErrorCode], message: string) =>
      new ScriptError(code, location, message, tail.text());
    if (options.signal?.aborted) {
      throw fail(ErrorCode.ScriptFailed, `${prefix} was not started because the agent is shutting down`);
    }

    let command: ScriptCommand;
    let scriptPath: string;
    try {
      scriptPath = resolveScriptPath(options.archiveDir, location);
      const warning = ensureExecutable(scriptPath, location, logger);
      if (warning) await log([warning]);
      const runas = script.runas ? accounts.get(script.runas) : undefined;
      try {
        command = buildScriptCommand({
          scriptPath,
          hookEnv,
          vars: options.env,
          runas,
          sudo: script.sudo,
          agentUid: process.getuid?.() ?? 0,
        });
      } catch (error) {
        throw fail(ErrorCode.ScriptFailed, `${prefix} failed: ${(error as Error).message}`);
      }
    } catch (error) {
      if (error instanceof ScriptError) {
        logger.error(error.message);
        throw error.logTail ? error : fail(error.code, error.message);
      }
      throw error;
    }

    await log([`Script - ${location}`]);
    options.onScriptStart?.(location);
    const timeoutSeconds = script.timeout;
    const result = await runScriptProcess({
      ...command,
      cwd: options.cwd,
      timeoutMs: timeoutSeconds * 1000,
      killGraceMs,
      outputGraceMs,
      signal: options.signal,
      onSpawned: options.recordHook && ((pid) => options.recordHook?.(pid, location)),
      onLines: (stream, lines) => log(lines.map((line) => `${STREAM_PREFIX[stream]}${line}`)),
      onStopping: (reason) => {
        const message = reason === 'timeout'
          ? `Script at specified location: ${location} timed out`
          : `Script at specified location: ${location} is being stopped because the agent is shutting down`;
        logger.info(message);
        void log([`${message}; sending SIGTERM to its process group (SIGKILL after ${killGraceMs / 1000} seconds)`]);
      },
    });
    await reportLeftOpenStreams(result, location, outputGraceMs, log, logger);

    const error = scriptFailure(result, prefix, location, timeoutSeconds);
    if (error && interpreterNotFound(result) && hasCrlfShebang(scriptPath)) {
      // The kernel's ENOENT (or env's 127) names no cause; the usual one is a script saved on Windows.
      error.message += `: ${CRLF_HINT}`;
      await log([`Script at specified location: ${location}: ${CRLF_HINT}`]);
    }
    if (error) {
      if (result.killed) await log([`Script at specified location: ${location} did not stop after SIGTERM; its process group was killed (SIGKILL)`]);
      logger.error(error.message);
      throw fail(error.code, error.message);
    }
  }
  return { logTail: tail.text() };
}

/** The warning for a script (or operator hook) whose background child kept its output open. */
export async function reportLeftOpenStreams(
  result: ScriptProcessResult,
  location: string,
  outputGraceMs: number,
  log: (messages: string[]) => Promise<void>,
  logger: Logger,
): Promise<void> {
  if (result.outcome !== 'exited' || result.streamsLeftOpen.length === 0) return;
  const streams = describeStreams(result.streamsLeftOpen);
  const status = result.exitSignal ? `signal ${result.exitSignal}` : `exit code ${result.exitCode}`;
  const warning =
    `Warning: script at specified location: ${location} exited (${status}), but a background process it started still holds its ${streams} open; ` +
    `stopped reading ${streams} after ${outputGraceMs / 1000} seconds and judged the script by its exit code. ` +
    `Redirect the background process's output and input, e.g. "my-daemon > /var/log/my-daemon.log 2>&1 < /dev/null &"; ` +
    `as it is, it gets SIGPIPE if it writes to ${streams} again.`;
  logger.warn(warning);
  await log([warning]);
}

/** The failures a `#!` line naming a missing interpreter produces: ENOENT from exec, or 126/127 from env or a shell. */
function interpreterNotFound(result: ScriptProcessResult): boolean {
  if (result.outcome === 'spawn-failed') return (result.spawnError as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  return result.outcome === 'exited' && (result.exitCode === 126 || result.exitCode === 127);
}

function scriptFailure(
  result: ScriptProcessResult,
  prefix: string,
  location: string,
  timeoutSeconds: number,
): { code: (typeof ErrorCode)[keyof typeof ErrorCode]; message: string } | undefined {
  switch (result.outcome) {
    case 'timed-out':
      return { code: ErrorCode.ScriptTimedOut, message: `Script at specified location: ${location} failed to complete in ${timeoutSeconds} seconds` };
    case 'aborted':
      return { code: ErrorCode.ScriptFailed, message: `${prefix} was stopped because the agent is shutting down` };
    case 'spawn-failed': {
      const error = result.spawnError as NodeJS.ErrnoException;
      return { code: ErrorCode.ScriptFailed, message: `${prefix} failed with error ${error.code ?? error.name} with message ${error.message}` };
    }
    case 'exited':
      if (result.exitSignal) return { code: ErrorCode.ScriptFailed, message: `${prefix} failed: killed by signal ${result.exitSignal}` };
      if (result.exitCode !== 0) return { code: ErrorCode.ScriptFailed, message: `${prefix} failed with exit code ${result.exitCode}` };
      return undefined;
  }
}
