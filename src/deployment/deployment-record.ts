import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError } from '../report/errors.js';
import { ErrorCode, errorCodeName } from '../report/error-codes.js';
import { processStartTime } from '../util/process-start-time.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import { makeLogFolder } from '../log/log-file-mode.js';
import { deploymentPaths } from './layout.js';
import type { DeploymentSpec } from './spec-types.js';

/**
 * `<deployment>/logs/deployment.json`: what a deployment was and how each of its lifecycle events went,
 * beside its scripts.log, for `codedeploy-agent logs` (the list of recent deployments, and which one is
 * running now for `logs -f`). Written by the daemon and by `deploy` as each event starts and ends,
 * atomically but without fsync: it describes, it decides nothing, and losing its last update in a
 * power cut costs nothing. The pid and its start time tell a running deployment from one whose process
 * died (a pid is reused; a pid started at the same moment is the same process).
 */

export type RecordOrigin = 'daemon' | 'local';

export interface RecordedEvent {
  event: string;
  startedAt: string;
  finishedAt?: string;
  status: 'Running' | 'Succeeded' | 'Failed' | 'Ignored';
  /** Nothing ran: no scripts for the event (or no previous revision for its scripts). */
  noop?: boolean;
  errorCode?: number;
  errorName?: string;
  /** The first line of the error. */
  message?: string;
}

export interface DeploymentRecord {
  deploymentId: string;
  deploymentGroupId: string;
  deploymentGroupName?: string;
  applicationName?: string;
  origin: RecordOrigin;
  pid: number;
  pidStartedAt?: string;
  startedAt: string;
  updatedAt: string;
  events: RecordedEvent[];
}

export const DEPLOYMENT_RECORD_NAME = 'deployment.json';

export function deploymentRecordFile(deploymentDir: string): string {
  return join(deploymentDir, 'logs', DEPLOYMENT_RECORD_NAME);
}

/** The record, or undefined when there is none (a deployment of AWS's agent, or of an older version). Other read errors are thrown. */
export function readDeploymentRecord(file: string): DeploymentRecord | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
  try {
    const record = JSON.parse(text) as DeploymentRecord;
    return typeof record?.deploymentId === 'string' && Array.isArray(record.events) ? record : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote the record is still the one running under its pid. */
export function writerAlive(record: Pick<DeploymentRecord, 'pid' | 'pidStartedAt'>): boolean {
  const started = processStartTime(record.pid);
  if (started === undefined) return false;
  if (record.pidStartedAt === undefined) return true;
  return Math.abs(started.getTime() - Date.parse(record.pidStartedAt)) < 2000;
}

/** An event's error as the record keeps it. */
export function recordedFailure(error: unknown): Pick<RecordedEvent, 'errorCode' | 'errorName' | 'message'> {
  const code = error instanceof AgentError ? error.code : ErrorCode.UnknownError;
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0].slice(0, 500);
  return { errorCode: code, errorName: errorCodeName(code), message };
}

/**
 * Updates one deployment's record as its events start and end. Never throws: a record that cannot be
 * written (a full disk) must not fail the deployment; `onError` hears why, once.
 */
export class DeploymentRecorder {
  readonly #file: string;
  readonly #pidStartedAt = processStartTime(process.pid)?.toISOString();
  #reported = false;

  constructor(
    rootDir: string,
    private readonly spec: Pick<DeploymentSpec, 'deploymentId' | 'deploymentGroupId' | 'deploymentGroupName' | 'applicationName'>,
    private readonly origin: RecordOrigin,
    private readonly onError: (message: string) => void = () => {},
    /** When the deployment began, if before its first event (a local run stages its revision first). */
    private readonly startedAt?: Date,
  ) {
    this.#file = deploymentRecordFile(deploymentPaths(rootDir, spec.deploymentGroupId, spec.deploymentId).deploymentDir);
  }

  get file(): string {
    return this.#file;
  }

  /** `at`: when the event's work began, if before now (a staged DownloadBundle). */
  eventStarted(event: string, at = new Date()): void {
    this.#update((record) => {
      record.events.push({ event, startedAt: at.toISOString(), status: 'Running' });
    });
  }

  eventFinished(event: string, status: RecordedEvent['status'], options: { error?: unknown; noop?: boolean } = {}): void {
    const { error, noop } = options;
    this.#update((record) => {
      const entry = [...record.events].reverse().find((candidate) => candidate.event === event && candidate.status === 'Running');
      if (!entry) return;
      entry.finishedAt = new Date().toISOString();
      entry.status = status;
      if (noop) entry.noop = true;
      if (error !== undefined) Object.assign(entry, recordedFailure(error));
    });
  }

  #update(change: (record: DeploymentRecord) => void): void {
    try {
      const now = new Date().toISOString();
      const record: DeploymentRecord = readDeploymentRecord(this.#file) ?? {
        deploymentId: this.spec.deploymentId,
        deploymentGroupId: this.spec.deploymentGroupId,
        ...(this.spec.deploymentGroupName ? { deploymentGroupName: this.spec.deploymentGroupName } : {}),
        ...(this.spec.applicationName ? { applicationName: this.spec.applicationName } : {}),
        origin: this.origin,
        pid: process.pid,
        startedAt: this.startedAt?.toISOString() ?? now,
        updatedAt: now,
        events: [],
      };
      // The daemon that runs the next event may not be the one that ran the first.
      record.pid = process.pid;
      if (this.#pidStartedAt) record.pidStartedAt = this.#pidStartedAt;
      record.updatedAt = now;
      change(record);
      // The deployment's logs folder, 0750 like scripts.log's (the record is written before any hook output).
      makeLogFolder(join(this.#file, '..'));
      writeFileAtomicSync(this.#file, `${JSON.stringify(record, null, 2)}\n`, 0o644, { durable: false });
    } catch (error) {
      if (this.#reported) return;
      this.#reported = true;
      this.onError(`Could not write ${this.#file}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
