import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { AgentConfig } from '../config/agent-config.js';
import { findDeployment, listDeployments, type DeploymentSummary, type HistoryOptions } from '../deployment/deployment-history.js';
import { deploymentsLogFile } from '../deployment/layout.js';
import { LogFollower, ScriptsLogParser, logGenerations, type ScriptsLogLine } from '../hooks/scripts-log-reader.js';
import { AgentError } from '../report/errors.js';
import { lookupAccountEntry } from '../util/host-accounts.js';
import { formatDuration } from '../util/duration.js';
import { localTimestamp } from '../util/local-time.js';
import { loadConfigForCli } from './status.js';

/**
 * `codedeploy-agent logs`: the recent deployments (from the deployment root), one deployment's hook
 * output (its scripts.log, rotated files included), or `-f`: the hook output of the deployment running
 * now, live, and of the ones that start after it, until interrupted. Reads only; works for any user who
 * can read the deployment root, and says which file could not be read and why otherwise.
 *
 * Exit codes: 0 done (and after Ctrl-C when following), 1 no such deployment or a wrong argument,
 * 4 a log could not be read (permissions).
 */
export const EXIT_NOT_FOUND = 1;
export const EXIT_NO_ACCESS = 4;

interface LogsOptions {
  follow?: boolean;
  group?: string;
  event?: string;
  json?: boolean;
  config?: string;
}

/** A folder or file of the logs the user may not read; the message says which and who can. */
export class LogAccessError extends AgentError {}

/** How often `-f` reads the logs it follows, and how many reads between looks for new deployments. */
const FOLLOW_POLL_MS = 250;
const LIST_EVERY_POLLS = 4;
/** Lines of the running deployment's output shown when `-f` starts, as `tail -f` does. */
const FOLLOW_BACKLOG_LINES = 10;

type Write = (text: string) => void;

export function register(program: Command): void {
  program
    .command('logs')
    .description('recent deployments; a deployment\'s hook output; or follow the running deployment\'s (-f) (exit 1 not found, 4 no access)')
    .argument('[deployment-id]', 'print this deployment\'s hook output (its scripts.log)')
    .option('-f, --follow', 'follow the hook output of the deployment running now, and of the next ones, until interrupted')
    .option('-g, --group <group>', 'only deployments of this deployment group (its name or id)')
    .option('-e, --event <event>', 'only this lifecycle event\'s output (with no deployment id: the deployments in which it ran scripts)')
    .option('--json', 'one JSON object a line')
    .option('-c, --config <file>', 'agent configuration file (default /etc/codedeploy-agent/conf/codedeployagent.yml)')
    .action(async (deploymentId: string | undefined, options: LogsOptions) => {
      process.exitCode = await logs(deploymentId, options);
    });
}

async function logs(deploymentId: string | undefined, options: LogsOptions): Promise<number> {
  const write: Write = (text) => {
    process.stdout.write(text);
  };
  // `logs -f | head`: the reader went away, which is no error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
  });
  let config: AgentConfig;
  try {
    const loaded = loadConfigForCli(options.config);
    config = loaded.config;
    if (loaded.note && !options.json) process.stderr.write(`note: ${loaded.note}\n`);
  } catch (error) {
    process.stderr.write(`ERROR: ${(error as Error).message}\n`);
    return EXIT_NOT_FOUND;
  }
  const history: HistoryOptions = { rootDir: config.root_dir, trackingName: config.ongoing_deployment_tracking };
  try {
    if (options.follow) {
      if (deploymentId !== undefined) throw new AgentError('-f follows the running deployment and the next ones: leave out the deployment id');
      return await follow(history, options, write);
    }
    if (deploymentId !== undefined) return printDeployment(history, config, deploymentId, options, write);
    return printList(history, options, write);
  } catch (error) {
    const explained = await explainAccess(error);
    process.stderr.write(`ERROR: ${(explained ?? error as Error).message}\n`);
    return explained ? EXIT_NO_ACCESS : EXIT_NOT_FOUND;
  }
}

/**
 * A permission error as one line a user can act on: which file, and who may read it (root, or the
 * group that owns it when that group can read it). Undefined for other errors.
 */
async function explainAccess(error: unknown): Promise<LogAccessError | undefined> {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'EACCES' && code !== 'EPERM') return undefined;
  const path = (error as NodeJS.ErrnoException).path ?? 'a log';
  // The folder that refused may be any one on the way; its owner and mode say who can read.
  let blocking = path;
  let stats: { gid: number; mode: number } | undefined;
  for (let candidate = path; ; candidate = dirname(candidate)) {
    try {
      stats = statSync(candidate);
      blocking = candidate;
      break;
    } catch {
      if (candidate === dirname(candidate)) break;
    }
  }
  const groupReads = stats !== undefined && (stats.mode & 0o040) !== 0 && stats.gid !== 0;
  const group = groupReads ? ((await lookupAccountEntry('group', String(stats?.gid)))?.split(':')[0] ?? String(stats?.gid)) : undefined;
  const who = group ? `run as root (sudo codedeploy-agent logs …) or as a member of the group ${group}, which can read ${blocking}` : 'run as root (sudo codedeploy-agent logs …): only root can read them';
  return new LogAccessError(`cannot read ${path}: permission denied. The deployment logs are not readable by ${userName()}; ${who}`);
}

function userName(): string {
  try {
    return process.env.USER ?? String(process.getuid?.());
  } catch {
    return 'this user';
  }
}

function matchesGroup(deployment: DeploymentSummary, group: string | undefined): boolean {
  return group === undefined || deployment.deploymentGroupId === group || deployment.deploymentGroupName === group;
}

/** The group's id, and its name when it has another one. */
function groupText(deployment: DeploymentSummary): string {
  const { deploymentGroupId: id, deploymentGroupName: name } = deployment;
  return name && name !== id ? `${id} (${name})` : id;
}

/** Fine below ten seconds: a local run often takes less than one. */
function durationText(seconds: number | undefined): string {
  return formatDuration(seconds, 'fine');
}

function sameEvent(a: string | undefined, b: string | undefined): boolean {
  return b === undefined || (a !== undefined && a.toLowerCase() === b.toLowerCase());
}

function localTime(iso: string | undefined): string {
  if (!iso) return '?';
  const at = new Date(iso);
  // As scripts.log stamps its lines, so the two read alike.
  return Number.isNaN(at.getTime()) ? '?' : localTimestamp(at, ' ');
}

/** How a deployment ended, for the list: the failed event with its error code, or what runs now. */
function outcomeText(deployment: DeploymentSummary): string {
  if (deployment.result === 'Failed') {
    return `${deployment.failedEvent}: ${deployment.errorName ?? 'error'}${deployment.errorCode === undefined ? '' : ` (code ${deployment.errorCode})`}`;
  }
  if (deployment.result === 'Running') return `running ${deployment.runningEvent}`;
  return '';
}

function printList(history: HistoryOptions, options: LogsOptions, write: Write): number {
  const deployments = listDeployments(history).filter(
    (deployment) => matchesGroup(deployment, options.group) && (options.event === undefined || deployment.eventsRun.some((event) => sameEvent(event, options.event))),
  );
  if (options.json) {
    for (const deployment of deployments) write(`${JSON.stringify(deployment)}\n`);
    return 0;
  }
  if (deployments.length === 0) {
    write(`No deployments${options.group ? ` of ${options.group}` : ''}${options.event ? ` that ran ${options.event}` : ''} under ${history.rootDir}\n`);
    return 0;
  }
  const rows = deployments.map((deployment) => [
    deployment.deploymentId,
    groupText(deployment),
    deployment.applicationName ?? '?',
    deployment.result,
    localTime(deployment.startedAt),
    durationText(deployment.durationSeconds),
    outcomeText(deployment),
    deployment.scriptsLog,
  ]);
  write(table(['DEPLOYMENT', 'GROUP', 'APPLICATION', 'RESULT', 'STARTED', 'DURATION', 'FAILED EVENT / NOW', 'SCRIPTS LOG'], rows));
  return 0;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]))).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

/** One line of output, text or JSON. */
function render(deploymentId: string, line: ScriptsLogLine, json: boolean | undefined): string {
  if (!json) return `${line.raw}\n`;
  return `${JSON.stringify({ deploymentId, time: line.time, event: line.event, kind: line.kind, ...(line.script ? { script: line.script } : {}), text: line.text })}\n`;
}

function printDeployment(history: HistoryOptions, config: AgentConfig, deploymentId: string, options: LogsOptions, write: Write): number {
  const deployment = findDeployment(history, deploymentId);
  if (!deployment || !matchesGroup(deployment, options.group)) {
    // Retention deletes old deployment folders; the deployments log keeps their hook output.
    if (!deployment && printFromDeploymentsLog(config, deploymentId, options, write)) return 0;
    process.stderr.write(`ERROR: no deployment ${deploymentId}${options.group ? ` in the group ${options.group}` : ''} under ${history.rootDir}` +
      ' (codedeploy-agent logs lists those there)\n');
    return EXIT_NOT_FOUND;
  }
  const files = logGenerations(deployment.scriptsLog);
  if (files.length === 0) {
    process.stderr.write(`${deploymentId} ran no hook scripts: it has no ${deployment.scriptsLog}\n`);
    return 0;
  }
  const parser = new ScriptsLogParser();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const raw of text.split('\n')) {
      if (raw === '') continue;
      const line = parser.parse(raw);
      if (sameEvent(line.event, options.event)) write(render(deploymentId, line, options.json));
    }
  }
  return 0;
}

/** `[YYYY-MM-DD HH:MM:SS.mmm] [d-ID]message` lines of one deployment, as scripts.log lines. */
function printFromDeploymentsLog(config: AgentConfig, deploymentId: string, options: LogsOptions, write: Write): boolean {
  const marker = `] [${deploymentId}]`;
  const parser = new ScriptsLogParser();
  let found = false;
  for (const file of logGenerations(deploymentsLogFile(config.root_dir, config.program_name))) {
    for (const raw of readFileSync(file, 'utf8').split('\n')) {
      const at = raw.indexOf(marker);
      if (!raw.startsWith('[') || at === -1) continue;
      if (!found && !options.json) process.stderr.write(`The folder of ${deploymentId} is gone (retention keeps max_revisions a group); its hook output from ${deploymentsLogFile(config.root_dir, config.program_name)}:\n`);
      found = true;
      const line = parser.parse(`${raw.slice(1, 20)} ${raw.slice(at + marker.length)}`);
      if (sameEvent(line.event, options.event)) write(render(deploymentId, line, options.json));
    }
  }
  return found;
}

interface Followed {
  deployment: DeploymentSummary;
  follower: LogFollower;
  parser: ScriptsLogParser;
}

/**
 * `logs -f`: every deployment under the root is watched; the one running when it starts is shown from
 * its last lines, the ones that start later from their first. New deployments are looked for every
 * second, the logs read every 250 ms (polling, as `tail -F`: no inotify limits, works on any file system).
 */
async function follow(history: HistoryOptions, options: LogsOptions, write: Write): Promise<number> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const followed = new Map<string, Followed>();
  let shownHeader: string | undefined;
  let first = true;

  const print = (entry: Followed, lines: string[]) => {
    for (const raw of lines) {
      if (raw === '') continue;
      const line = entry.parser.parse(raw);
      if (!sameEvent(line.event, options.event)) continue;
      if (!options.json && shownHeader !== entry.deployment.deploymentDir) {
        const { deploymentId, applicationName } = entry.deployment;
        write(`==> ${deploymentId} (group ${groupText(entry.deployment)}${applicationName ? `, application ${applicationName}` : ''}) <==\n`);
        shownHeader = entry.deployment.deploymentDir;
      }
      write(render(entry.deployment.deploymentId, line, options.json));
    }
  };

  const look = () => {
    const present = new Set<string>();
    for (const deployment of listDeployments(history)) {
      if (!matchesGroup(deployment, options.group)) continue;
      present.add(deployment.deploymentDir);
      const known = followed.get(deployment.deploymentDir);
      if (known) {
        // A local run's end is its process's; the daemon's deployments end when the service sends no more.
        const ended = deployment.result !== 'Running' && (deployment.result !== 'Succeeded' || deployment.origin === 'local');
        if (known.deployment.result === 'Running' && ended) {
          print(known, known.follower.poll());
          if (options.json) {
            const { deploymentId, result, failedEvent, errorCode, errorName, durationSeconds } = deployment;
            write(`${JSON.stringify({ deploymentId, kind: 'result', result, failedEvent, errorCode, errorName, durationSeconds })}\n`);
          } else {
            write(`--- ${deployment.deploymentId}: ${deployment.result}${deployment.failedEvent ? ` at ${outcomeText(deployment)}` : ''} after ${durationText(deployment.durationSeconds)}\n`);
          }
        }
        known.deployment = deployment;
        continue;
      }
      // Running when -f starts: its last lines; idle then: from now on; new since: all of it.
      const from = !first ? 'start' : deployment.result === 'Running' ? FOLLOW_BACKLOG_LINES : 'end';
      const event = deployment.runningEvent ?? deployment.events[deployment.events.length - 1];
      followed.set(deployment.deploymentDir, { deployment, follower: new LogFollower(deployment.scriptsLog, from), parser: new ScriptsLogParser(event) });
    }
    for (const [dir, entry] of followed) {
      if (present.has(dir)) continue;
      entry.follower.close();
      followed.delete(dir);
    }
  };

  try {
    look();
    if (!options.json && ![...followed.values()].some((entry) => entry.deployment.result === 'Running')) {
      process.stderr.write(`No deployment is running; waiting for the next one under ${history.rootDir} (Ctrl-C to stop)\n`);
    }
    first = false;
    for (let polls = 0; !stop.signal.aborted; polls++) {
      if (polls > 0 && polls % LIST_EVERY_POLLS === 0) look();
      for (const entry of followed.values()) print(entry, entry.follower.poll());
      await sleep(FOLLOW_POLL_MS, undefined, { signal: stop.signal }).catch(() => {});
    }
    return 0;
  } finally {
    for (const entry of followed.values()) entry.follower.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
