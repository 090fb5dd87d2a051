import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { AgentConfig } from '../config/agent-config.js';
import { checkPidFile, isAgentProcess } from '../agent/pid-file.js';
import { readStatusSnapshot } from '../agent/status-file.js';
import type { StatusSnapshot } from '../agent/status-snapshot.js';
import { findTool } from '../util/find-tool.js';
import { selfCommand } from '../util/self-command.js';
import { formatDuration } from '../util/duration.js';
import { loadConfigForCli } from './status.js';
import { stopAgent } from './stop.js';

/**
 * `codedeploy-agent start` and `restart`, as AWS's command takes them, so automation written for it
 * (`/opt/codedeploy-agent/bin/codedeploy-agent start`) keeps working. Where systemd runs the host they
 * go through `systemctl` (the unit owns the agent there); elsewhere `start` launches `run` in the
 * background, in a session of its own. Either way they wait until the agent has polled the commands
 * service once (or failed to) and say which:
 *
 *   0   running, and its first poll succeeded (or the service is holding it: credentials accepted)
 *   1   the agent did not start, or exited (its log's last lines are shown)
 *   75  running, but its first poll failed or has not finished within --timeout; it keeps retrying
 */
export const EXIT_STARTED = 0;
export const EXIT_NOT_STARTED = 1;
export const EXIT_NOT_POLLED_YET = 75;

/** The unit install.sh installs. */
export const UNIT = 'codedeploy-agent';

/** A poll the service has held this long without an error has passed authentication (it holds them up to a minute). */
const HELD_POLL_MS = 5_000;
const WAIT_STEP_MS = 200;
const LOG_LINES_SHOWN = 15;

export type SystemdChoice = 'auto' | 'yes' | 'no';

/** sd_booted(): systemd runs this host when /run/systemd/system exists. */
export function systemdRunsHost(choice: SystemdChoice, probe: () => boolean = () => existsSync('/run/systemd/system')): boolean {
  return choice === 'yes' || (choice === 'auto' && probe());
}

export type FirstPoll =
  | { state: 'waiting' }
  | { state: 'polled'; message: string }
  | { state: 'failed'; message: string };

/** How far the agent of `pid` has got, from its status file (pure). */
export function firstPollOf(snapshot: StatusSnapshot | undefined, pid: number, now: Date = new Date()): FirstPoll {
  if (!snapshot || snapshot.pid !== pid) return { state: 'waiting' };
  const endpoint = snapshot.endpoint ? ` (${snapshot.endpoint})` : '';
  if (snapshot.lastSuccessfulPollAt) return { state: 'polled', message: `its first poll of the commands service${endpoint} succeeded` };
  if (snapshot.lastError) return { state: 'failed', message: `its first poll failed: ${snapshot.lastError.message}` };
  const started = snapshot.firstPollStartedAt ? Date.parse(snapshot.firstPollStartedAt) : NaN;
  if (!Number.isNaN(started) && now.getTime() - started >= HELD_POLL_MS) {
    return { state: 'polled', message: `the commands service${endpoint} accepted its first poll and is holding it open (a long poll)` };
  }
  return { state: 'waiting' };
}

export interface StartDeps {
  config: AgentConfig;
  configFile?: string;
  timeoutSeconds: number;
  out: (line: string) => void;
  systemd: boolean;
  /** `systemctl` (found on PATH or in the system folders). */
  systemctl?: string;
}

function logFile(config: AgentConfig): string {
  return join(config.log_dir, `${config.program_name}.log`);
}

/** The last lines of the agent's log, to show why it did not start. */
function logTail(config: AgentConfig): string[] {
  try {
    return readFileSync(logFile(config), 'utf8').trimEnd().split('\n').slice(-LOG_LINES_SHOWN);
  } catch {
    return [];
  }
}

/** How to start `run` again: this same program (a single executable, or node and the entry script). */
function runCommandLine(configFile: string | undefined): { command: string; args: string[] } {
  return selfCommand(['run', ...(configFile ? ['-c', configFile] : [])]);
}

/**
 * Waits until the agent of `pid` has polled once, failed to, or exited; says which. `exited` tells
 * whether the process is gone (for an agent we started ourselves, its exit code).
 */
async function waitForFirstPoll(deps: StartDeps, pid: () => number | undefined, exited: () => { gone: boolean; code?: number | null }): Promise<number> {
  const { config, out } = deps;
  const deadline = Date.now() + deps.timeoutSeconds * 1000;
  for (;;) {
    const current = pid();
    const gone = exited();
    if (gone.gone) {
      out(`The AWS CodeDeploy agent${current ? ` (PID ${current})` : ''} exited${gone.code !== undefined && gone.code !== null ? ` with code ${gone.code}` : ''} before its first poll.`);
      const tail = logTail(config);
      if (tail.length > 0) out(`The last lines of ${logFile(config)}:\n${tail.map((line) => `  ${line}`).join('\n')}`);
      else out(`${logFile(config)} says nothing; \`codedeploy-agent run${deps.configFile ? ` -c ${deps.configFile}` : ''}\` in the foreground shows why.`);
      return EXIT_NOT_STARTED;
    }
    if (current !== undefined) {
      let snapshot: StatusSnapshot | undefined;
      try {
        snapshot = readStatusSnapshot(config.pid_dir);
      } catch {
        snapshot = undefined; // being replaced; look again
      }
      const poll = firstPollOf(snapshot, current);
      if (poll.state === 'polled') {
        out(`The AWS CodeDeploy agent is running as PID ${current}: ${poll.message}.`);
        return EXIT_STARTED;
      }
      if (poll.state === 'failed') {
        out(`The AWS CodeDeploy agent is running as PID ${current}, but ${poll.message}`);
        out(`It keeps retrying; \`codedeploy-agent status\` and ${logFile(config)} show how it goes.`);
        return EXIT_NOT_POLLED_YET;
      }
    }
    if (Date.now() >= deadline) {
      out(current
        ? `The AWS CodeDeploy agent is running as PID ${current}, but has not finished a poll within ${formatDuration(deps.timeoutSeconds)}; \`codedeploy-agent status\` shows how it goes.`
        : `The AWS CodeDeploy agent has not written its pid file (${config.pid_dir}) within ${formatDuration(deps.timeoutSeconds)}; see ${logFile(config)}.`);
      return EXIT_NOT_POLLED_YET;
    }
    await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS));
  }
}

/** The pid the pid file names now, if it names a live agent. */
function runningPid(config: AgentConfig): number | undefined {
  const state = checkPidFile(config.pid_dir);
  return state.state === 'running' ? state.pid : undefined;
}

/** `systemctl <verb> codedeploy-agent`, then the same wait for the (new) agent's first poll. */
async function throughSystemd(deps: StartDeps, verb: 'start' | 'restart'): Promise<number> {
  const systemctl = deps.systemctl ?? findTool('systemctl');
  if (!systemctl) {
    deps.out('systemd runs this host, but systemctl was not found');
    return EXIT_NOT_STARTED;
  }
  const before = runningPid(deps.config);
  if (verb === 'start' && before !== undefined) {
    deps.out(`The AWS CodeDeploy agent is already running as PID ${before}`);
    return EXIT_STARTED;
  }
  deps.out(`${verb === 'start' ? 'Starting' : 'Restarting'} the AWS CodeDeploy agent: systemctl ${verb} ${UNIT}`);
  const result = spawnSync(systemctl, [verb, UNIT], { stdio: 'inherit' });
  if (result.status !== 0) {
    deps.out(`systemctl ${verb} ${UNIT} failed${result.status !== null ? ` (exit code ${result.status})` : ''}; \`systemctl status ${UNIT}\` and \`journalctl -u ${UNIT}\` say why.`);
    return EXIT_NOT_STARTED;
  }
  // A restart ends the old agent first: wait for the one systemd started, not the one it stopped.
  const fresh = () => {
    const pid = runningPid(deps.config);
    return pid !== undefined && pid !== before ? pid : undefined;
  };
  return waitForFirstPoll(deps, fresh, () => {
    const active = spawnSync(systemctl, ['is-active', '--quiet', UNIT]);
    return { gone: active.status !== 0 && active.status !== null && fresh() === undefined };
  });
}

/** `run` in the background: its own session, no terminal, output to its log file only. */
async function inBackground(deps: StartDeps): Promise<number> {
  const state = checkPidFile(deps.config.pid_dir);
  if (state.state === 'running') {
    deps.out(`The AWS CodeDeploy agent is already running as PID ${state.pid}`);
    return EXIT_STARTED;
  }
  if (state.state === 'unknown') {
    deps.out(`Cannot tell whether the AWS CodeDeploy agent is running: ${state.reason}`);
    return EXIT_NOT_STARTED;
  }
  const { command, args } = runCommandLine(deps.configFile);
  // The working directory of hooks is the agent's own: `/`, as under systemd.
  const child = spawn(command, args, { detached: true, stdio: 'ignore', cwd: '/', env: process.env });
  let exit: { gone: boolean; code?: number | null } = { gone: false };
  child.once('exit', (code, signal) => { exit = { gone: true, code: code ?? (signal ? null : undefined) }; });
  child.once('error', (error) => {
    deps.out(`Could not start ${command}: ${error.message}`);
    exit = { gone: true };
  });
  child.unref();
  if (child.pid === undefined) {
    await new Promise((resolve) => setImmediate(resolve));
    return EXIT_NOT_STARTED;
  }
  deps.out(`Starting the AWS CodeDeploy agent in the background (PID ${child.pid}); waiting for its first poll`);
  const pid = child.pid;
  const code = await waitForFirstPoll(deps, () => pid, () => exit);
  return code;
}

export async function startAgent(deps: StartDeps): Promise<number> {
  return deps.systemd ? throughSystemd(deps, 'start') : inBackground(deps);
}

export async function restartAgent(deps: StartDeps, stopTimeoutSeconds: number): Promise<number> {
  if (deps.systemd) return throughSystemd(deps, 'restart');
  const stopped = await stopAgent({ pidDir: deps.config.pid_dir, timeoutSeconds: stopTimeoutSeconds, out: deps.out });
  if (stopped !== 0) return stopped;
  const left = runningPid(deps.config);
  if (left !== undefined && isAgentProcess(left) === true) {
    deps.out(`The AWS CodeDeploy agent (PID ${left}) is still running; not starting a second one`);
    return EXIT_NOT_STARTED;
  }
  return inBackground(deps);
}

interface StartFlags {
  config?: string;
  timeout?: string;
  systemd?: string;
}

function parseFlags(flags: StartFlags): { deps: StartDeps; note?: string } | { error: string } {
  const choice = (flags.systemd ?? 'auto') as SystemdChoice;
  if (!['auto', 'yes', 'no'].includes(choice)) return { error: `--systemd takes auto, yes or no, not ${JSON.stringify(flags.systemd)}` };
  const timeoutSeconds = flags.timeout === undefined ? 60 : Number(flags.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 0) return { error: `--timeout takes a number of seconds, not ${JSON.stringify(flags.timeout)}` };
  const { config, note } = loadConfigForCli(flags.config);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  return { deps: { config, configFile: flags.config, timeoutSeconds, out, systemd: systemdRunsHost(choice) }, note };
}

function addOptions(command: Command): Command {
  return command
    .option('-c, --config <file>', 'agent configuration file (default /etc/codedeploy-agent/conf/codedeployagent.yml)')
    .option('--timeout <seconds>', 'how long to wait for the first poll (default 60)')
    .option('--systemd <auto|yes|no>', 'go through systemctl: auto (default) when systemd runs the host');
}

/** One subcommand: its flags parsed once, then `act`. */
function subcommand(program: Command, name: string, description: string, act: (deps: StartDeps) => Promise<number>): void {
  addOptions(program.command(name).description(description)).action(async (flags: StartFlags) => {
    const parsed = parseFlags(flags);
    if ('error' in parsed) {
      process.stderr.write(`${parsed.error}\n`);
      process.exitCode = 2;
      return;
    }
    if (parsed.note) process.stderr.write(`note: ${parsed.note}\n`);
    process.exitCode = await act(parsed.deps);
  });
}

export function register(program: Command): void {
  subcommand(program, 'start',
    'start the agent (systemctl where systemd runs the host, else in the background) and wait for its first poll (exit 0 polled, 1 not started, 75 first poll failed or not yet)',
    startAgent);
  subcommand(program, 'restart',
    'stop the agent gracefully (in-flight lifecycle events finish first), start it again and wait for its first poll',
    (deps) => restartAgent(deps, deps.config.kill_agent_max_wait_time_seconds + 60));
}
