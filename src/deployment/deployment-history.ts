import { closeSync, openSync, readdirSync, readSync, statSync, type Stats } from 'node:fs';
import { basename, join } from 'node:path';
import { deploymentRecordFile, readDeploymentRecord, writerAlive, type DeploymentRecord, type RecordOrigin } from './deployment-record.js';
import { deploymentPaths, deploymentsLogFile, instructionsDir, trackingDir } from './layout.js';

/**
 * The deployments the deployment root holds, for `codedeploy-agent logs`: each `<root>/<group>/<id>`
 * folder (retention keeps `max_revisions` a group), described by its record (./deployment-record.ts)
 * where it has one. Folders of AWS's agent or of older versions have none: their result is unknown.
 * Reads only. A folder the user may not read throws (EACCES), for the caller to explain.
 */

export type DeploymentResult = 'Running' | 'Succeeded' | 'Failed' | 'Stopped' | 'Unknown';

export interface DeploymentSummary {
  deploymentId: string;
  deploymentGroupId: string;
  deploymentGroupName?: string;
  applicationName?: string;
  /** Who ran it: the daemon or `deploy`; undefined without a record. */
  origin?: RecordOrigin;
  /** Running: an event runs now. Stopped: an event was running when its process went away. */
  result: DeploymentResult;
  startedAt?: string;
  /** When the last event ended (or the last update, while one runs). */
  endedAt?: string;
  durationSeconds?: number;
  /** The event running now. */
  runningEvent?: string;
  /** The first event that failed, its error code and name, and the first line of its error. */
  failedEvent?: string;
  errorCode?: number;
  errorName?: string;
  error?: string;
  /** The events started (in order), and those of them that did something: ran scripts (or, DownloadBundle and Install, their work), or failed. */
  events: string[];
  eventsRun: string[];
  deploymentDir: string;
  scriptsLog: string;
  /** When the record last changed (to notice a deployment that moves on). */
  updatedAt?: string;
}

export interface HistoryOptions {
  rootDir: string;
  /** `:ongoing_deployment_tracking:`: a folder under the root that is not a group. */
  trackingName?: string;
}

/** Folders directly under the root that are not deployment groups. */
function reservedNames(options: HistoryOptions): Set<string> {
  const { rootDir } = options;
  return new Set([basename(instructionsDir(rootDir)), basename(join(deploymentsLogFile(rootDir), '..')), basename(trackingDir(rootDir, options.trackingName))]);
}

function directories(path: string): string[] {
  return readdirSync(path, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
}

/** Every deployment under the root, newest first; none when the root does not exist yet. */
export function listDeployments(options: HistoryOptions): DeploymentSummary[] {
  let groups: string[];
  try {
    groups = directories(options.rootDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const reserved = reservedNames(options);
  const found: DeploymentSummary[] = [];
  for (const group of groups) {
    if (reserved.has(group)) continue;
    for (const id of directories(join(options.rootDir, group))) found.push(describeDeployment(options.rootDir, group, id));
  }
  return found.sort((a, b) => (b.startedAt ?? '').localeCompare(a.startedAt ?? '') || a.deploymentId.localeCompare(b.deploymentId));
}

/** One deployment by id (any group), or undefined. */
export function findDeployment(options: HistoryOptions, deploymentId: string): DeploymentSummary | undefined {
  return listDeployments(options).find((deployment) => deployment.deploymentId === deploymentId);
}

export function describeDeployment(rootDir: string, groupId: string, deploymentId: string): DeploymentSummary {
  const paths = deploymentPaths(rootDir, groupId, deploymentId);
  const record = readDeploymentRecord(deploymentRecordFile(paths.deploymentDir));
  const base = { deploymentId, deploymentGroupId: groupId, deploymentDir: paths.deploymentDir, scriptsLog: paths.scriptsLog };
  if (!record) return { ...base, result: 'Unknown', startedAt: startOf(paths.deploymentDir, paths.scriptsLog), events: [], eventsRun: [] };
  return { ...base, ...summarize(record) };
}

/** What a record says about its deployment. */
export function summarize(record: DeploymentRecord): Omit<DeploymentSummary, 'deploymentId' | 'deploymentGroupId' | 'deploymentDir' | 'scriptsLog'> {
  const failed = record.events.find((event) => event.status === 'Failed');
  const last = record.events[record.events.length - 1];
  const running = last?.status === 'Running' ? last : undefined;
  // A local run is one process from its first event to its last: alive, it is running (maybe between
  // two events). The daemon outlives its deployments: only an event running now counts.
  const alive = (running !== undefined || record.origin === 'local') && writerAlive(record);
  const result: DeploymentResult = failed ? 'Failed' : alive ? 'Running' : running ? 'Stopped' : 'Succeeded';
  const endedAt = running ? record.updatedAt : (last?.finishedAt ?? record.updatedAt);
  const started = Date.parse(record.startedAt);
  const ended = alive ? Date.now() : Date.parse(endedAt);
  return {
    ...(record.deploymentGroupName ? { deploymentGroupName: record.deploymentGroupName } : {}),
    ...(record.applicationName ? { applicationName: record.applicationName } : {}),
    origin: record.origin,
    result,
    startedAt: record.startedAt,
    endedAt,
    ...(Number.isNaN(started) || Number.isNaN(ended) ? {} : { durationSeconds: Math.max(0, Math.round((ended - started) / 100) / 10) }),
    ...(alive && running && !failed ? { runningEvent: running.event } : {}),
    ...(failed
      ? { failedEvent: failed.event, ...(failed.errorCode === undefined ? {} : { errorCode: failed.errorCode }), ...(failed.errorName ? { errorName: failed.errorName } : {}), ...(failed.message ? { error: failed.message } : {}) }
      : {}),
    events: record.events.map((event) => event.event),
    eventsRun: record.events.filter((event) => !event.noop || event.status === 'Failed').map((event) => event.event),
    updatedAt: record.updatedAt,
  };
}

/** Without a record: the first stamp of scripts.log, else when the folder was made. */
function startOf(deploymentDir: string, scriptsLog: string): string | undefined {
  try {
    const fd = openSync(scriptsLog, 'r');
    const buffer = Buffer.alloc(19);
    try {
      readSync(fd, buffer, 0, buffer.length, 0);
    } finally {
      closeSync(fd);
    }
    const head = buffer.toString('latin1');
    if (/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(head)) return new Date(head.replace(' ', 'T')).toISOString();
  } catch {
    // no scripts.log: no hook ran
  }
  let stats: Stats;
  try {
    stats = statSync(deploymentDir);
  } catch {
    return undefined;
  }
  return new Date(stats.birthtimeMs > 0 ? stats.birthtimeMs : stats.mtimeMs).toISOString();
}
