import type { Command } from 'commander';
import { defaultConfig, loadAgentConfig, type AgentConfig } from '../config/agent-config.js';
import { checkPidFile, processStartTime, type PidFileState } from '../agent/pid-file.js';
import { readStatusSnapshot, statusFilePath } from '../agent/status-file.js';
import type { StatusSnapshot } from '../agent/status-snapshot.js';
import { judgeHealth } from '../agent/health.js';
import { formatBytes } from '../util/byte-size.js';
import { AGENT_VERSION } from '../version.js';
import { formatDuration } from '../util/duration.js';

/**
 * `codedeploy-agent status [--json] [-c FILE]`: is the agent running and what is it doing. Reads only the
 * pid file and the 0644 status file, so any user may ask (users-and-peers theme 17). LSB exit codes:
 * 0 running, 3 not running, 4 unknown.
 */
export const EXIT_RUNNING = 0;
export const EXIT_NOT_RUNNING = 3;
export const EXIT_UNKNOWN = 4;

export interface ConfigForCli {
  config: AgentConfig;
  /** Why the defaults were used instead of the file, if they were. */
  note?: string;
}

/**
 * Loads the config for `status`/`stop`. Without `-c`, an unreadable default file (a non-root user and a
 * config made private because of a proxy password) falls back to the default pid_dir instead of failing.
 */
export function loadConfigForCli(file: string | undefined): ConfigForCli {
  try {
    return { config: loadAgentConfig(file).config };
  } catch (error) {
    if (file !== undefined) throw error;
    return { config: defaultConfig(), note: `${(error as Error).message}; looking in the default pid_dir` };
  }
}

export interface StatusReport {
  status: 'running' | 'not-running' | 'unknown';
  exitCode: number;
  message: string;
  pid?: number;
  pidFile: string;
  statusFile: string;
  cliVersion: string;
  /** Fields of the daemon's snapshot (when it is running and has written one), plus computed ones. */
  [field: string]: unknown;
}

function secondsBetween(from: string | undefined, to: Date): number | undefined {
  if (!from) return undefined;
  const at = Date.parse(from);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.round((to.getTime() - at) / 1000));
}

/** Builds what `status` prints; pure apart from reading the two files and /proc. */
export function buildStatusReport(config: AgentConfig, now: Date = new Date()): StatusReport {
  const pidState: PidFileState = checkPidFile(config.pid_dir);
  const base = { pidFile: pidState.path, statusFile: statusFilePath(config.pid_dir), cliVersion: AGENT_VERSION };

  if (pidState.state === 'absent' || pidState.state === 'stale') {
    const message = pidState.state === 'absent'
      ? `No AWS CodeDeploy agent running (no pid file at ${pidState.path})`
      : `No AWS CodeDeploy agent running (${pidState.reason}; the stale pid file is replaced when the agent starts)`;
    const report: StatusReport = { status: 'not-running', exitCode: EXIT_NOT_RUNNING, message, ...base, health: { healthy: false, reason: 'the agent is not running' } };
    if (pidState.state === 'stale' && pidState.pid !== undefined) report.stalePid = pidState.pid;
    // What the last run left behind says why it stopped and how its deployments ended.
    try {
      const previous = readStatusSnapshot(config.pid_dir);
      if (previous) report.previousRun = { pid: previous.pid, updatedAt: previous.updatedAt, lastError: previous.lastError, recent: previous.recent };
    } catch { /* nothing useful left */ }
    return report;
  }
  if (pidState.state === 'unknown') {
    return { status: 'unknown', exitCode: EXIT_UNKNOWN, message: `Cannot tell whether the AWS CodeDeploy agent is running: ${pidState.reason}`, pid: pidState.pid, ...base };
  }

  const pid = pidState.pid;
  let snapshot: StatusSnapshot | undefined;
  try {
    snapshot = readStatusSnapshot(config.pid_dir);
  } catch (error) {
    return {
      status: 'unknown',
      exitCode: EXIT_UNKNOWN,
      message: `The AWS CodeDeploy agent is running as PID ${pid}, but what it is doing is unknown: ${(error as Error).message}`,
      pid,
      ...base,
    };
  }
  if (snapshot && snapshot.pid !== pid) snapshot = undefined; // left by an earlier run; this one has not written yet

  const startedAt = snapshot?.startedAt ?? processStartTime(pid)?.toISOString();
  const report: StatusReport = {
    ...(snapshot ?? { inFlight: [], recent: [], downloads: [] }),
    status: 'running',
    exitCode: EXIT_RUNNING,
    message: `The AWS CodeDeploy agent is running as PID ${pid}`,
    pid,
    ...base,
    startedAt,
    uptimeSeconds: secondsBetween(startedAt, now),
  };
  if (!snapshot) report.state = 'starting';
  // The judgement /healthz makes, from the same snapshot and threshold.
  report.health = judgeHealth(snapshot ?? { state: 'starting' }, config.health_poll_failure_seconds, now);
  report.inFlight = (snapshot?.inFlight ?? []).map((command) => ({ ...command, elapsedSeconds: secondsBetween(command.startedAt, now) }));
  return report;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function when(at: unknown, now: Date): string {
  const text = str(at);
  if (!text) return 'never';
  const ago = secondsBetween(text, now);
  return ago === undefined ? text : `${text} (${formatDuration(ago)} ago)`;
}

/** The first (newest) entry of each deployment, in order. */
function latestPerDeployment(recent: Record<string, unknown>[]): Record<string, unknown>[] {
  const seen = new Set<string>();
  return recent.filter((entry) => {
    const id = str(entry.deploymentId);
    if (id === undefined) return true;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** One deployment's line: when, which, the last lifecycle event it reached and how that ended. */
function recentLine(deployment: Record<string, unknown>, running: Set<string | undefined>): string {
  const detail = str(deployment.message) ? `: ${deployment.message}` : '';
  const code = deployment.errorCode !== undefined && deployment.status !== 'Succeeded' ? ` (error code ${deployment.errorCode})` : '';
  const group = str(deployment.deploymentGroupName) ?? str(deployment.deploymentGroupId) ?? '?';
  const progress = running.has(str(deployment.deploymentId)) ? '  (in progress)' : '';
  return `  ${str(deployment.finishedAt) ?? '?'}  ${str(deployment.deploymentId) ?? '?'}  group ${group}  ${str(deployment.event) ?? '?'}  ${str(deployment.status) ?? '?'}${code}${detail}${progress}`;
}

/** The human-readable form of a report. */
export function renderStatusText(report: StatusReport, now: Date = new Date()): string {
  const out: string[] = [report.message];
  if (report.status !== 'running') {
    const previous = report.previousRun as { updatedAt?: string; lastError?: { at: string; message: string }; recent?: Record<string, unknown>[] } | undefined;
    if (previous?.lastError) out.push(`  last error before it stopped: ${previous.lastError.message} (at ${previous.lastError.at})`);
    const recent = latestPerDeployment(previous?.recent ?? []);
    if (recent.length > 0) out.push('Deployments of the last run (the last lifecycle event of each):', ...recent.map((entry) => recentLine(entry, new Set())));
    return out.join('\n');
  }
  const row = (label: string, value: string | undefined) => { if (value !== undefined) out.push(`  ${label.padEnd(22)}${value}`); };
  const version = str(report.version);
  row('version', version
    ? (version === report.cliVersion ? version : `${version} (installed: ${report.cliVersion}; restart the agent to use it)`)
    : `${report.cliVersion} (installed)`);
  row('uptime', report.uptimeSeconds === undefined ? undefined : `${formatDuration(report.uptimeSeconds as number)} (since ${report.startedAt})`);
  row('state', str(report.state));
  row('host identifier', str(report.hostIdentifier) ?? 'unknown yet');
  row('region', str(report.region) ?? 'unknown yet');
  row('endpoint', str(report.endpoint) ?? 'unknown yet');
  row('last poll', when(report.lastPollAt, now));
  row('last successful poll', when(report.lastSuccessfulPollAt, now));
  const lastError = report.lastError as { at?: string; message?: string } | undefined;
  row('last error', lastError?.message ? `${lastError.message} (at ${when(lastError.at, now)})` : 'none');
  const health = report.health as { healthy?: boolean; reason?: string } | undefined;
  if (health) row('health', `${health.healthy ? 'healthy' : 'UNHEALTHY'}: ${health.reason}`);
  if (str(report.metricsAddress)) row('health and metrics', `http://${report.metricsAddress}/healthz, /metrics`);

  const inFlight = (report.inFlight as Record<string, unknown>[]) ?? [];
  out.push(inFlight.length === 0 ? 'In-flight commands: none' : `In-flight commands (${inFlight.length}):`);
  for (const command of inFlight) {
    const group = str(command.deploymentGroupName) ?? str(command.deploymentGroupId) ?? '?';
    const script = str(command.script) ? `  script ${command.script}` : '';
    out.push(`  ${str(command.deploymentId) ?? '?'}  group ${group}  event ${str(command.event) ?? '?'}${script}  running for ${formatDuration(command.elapsedSeconds as number | undefined)}`);
  }

  const downloads = (report.downloads as Record<string, unknown>[]) ?? [];
  if (downloads.length > 0) {
    out.push(`Downloads (${downloads.length}):`);
    for (const download of downloads) {
      const bytes = Number(download.bytes) || 0;
      const total = typeof download.total === 'number' ? download.total : undefined;
      const share = total ? ` of ${formatBytes(total)} (${Math.floor((bytes / total) * 100)}%)` : '';
      const rate = typeof download.bytesPerSecond === 'number' ? `, ${formatBytes(download.bytesPerSecond)}/s` : '';
      const eta = typeof download.etaSeconds === 'number' ? `, ${formatDuration(download.etaSeconds)} left` : '';
      out.push(`  ${str(download.deploymentId) ?? '?'}  ${formatBytes(bytes)}${share}${rate}${eta}`);
    }
  }

  // The snapshot lists every finished lifecycle event, newest first; an operator asks how each deployment
  // ended, which its newest event says (the service runs no further events after a failed one).
  const recent = latestPerDeployment((report.recent as Record<string, unknown>[]) ?? []);
  const running = new Set(inFlight.map((command) => str(command.deploymentId)));
  out.push(recent.length === 0 ? 'Recent deployments: none since the agent started' : 'Recent deployments (the last lifecycle event of each):');
  for (const deployment of recent) out.push(recentLine(deployment, running));
  return out.join('\n');
}

export function register(program: Command): void {
  program
    .command('status')
    .description('is the agent running, what is it doing, how did recent deployments end (exit 0 running, 3 not running, 4 unknown)')
    .option('-c, --config <file>', 'agent configuration file (default /etc/codedeploy-agent/conf/codedeployagent.yml)')
    .option('--json', 'print one JSON object instead of text')
    .action((options: { config?: string; json?: boolean }) => {
      let loaded: ConfigForCli;
      try {
        loaded = loadConfigForCli(options.config);
      } catch (error) {
        const message = `Cannot tell whether the AWS CodeDeploy agent is running: ${(error as Error).message}`;
        if (options.json) process.stdout.write(`${JSON.stringify({ status: 'unknown', exitCode: EXIT_UNKNOWN, message, cliVersion: AGENT_VERSION })}\n`);
        else process.stderr.write(`${message}\n`);
        process.exitCode = EXIT_UNKNOWN;
        return;
      }
      if (loaded.note && !options.json) process.stderr.write(`note: ${loaded.note}\n`);
      const now = new Date();
      const report = buildStatusReport(loaded.config, now);
      if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else (report.status === 'unknown' ? process.stderr : process.stdout).write(`${renderStatusText(report, now)}\n`);
      process.exitCode = report.exitCode;
    });
}
