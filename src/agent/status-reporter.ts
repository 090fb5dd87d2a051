import type { Logger } from '../log/logger.js';
import { AGENT_VERSION } from '../version.js';
import { writeStatusSnapshot } from './status-file.js';
import type { DownloadProgress, InFlightCommand, RecentDeployment, StatusSnapshot } from './status-snapshot.js';

/** Lifecycle events kept: about ten deployments of eleven events each. */
const RECENT_LIMIT = 120;

/**
 * Keeps the daemon's state for `codedeploy-agent status` and writes it atomically on every change.
 * Holds nothing secret: the file is world-readable.
 */
export class StatusReporter {
  private readonly snapshot: StatusSnapshot;

  constructor(private readonly pidDir: string, private readonly logger: Logger) {
    const now = new Date().toISOString();
    this.snapshot = { pid: process.pid, version: AGENT_VERSION, startedAt: now, updatedAt: now, inFlight: [], recent: [], downloads: [], state: 'starting' };
  }

  get current(): Readonly<StatusSnapshot> {
    return this.snapshot;
  }

  private write(): void {
    this.snapshot.updatedAt = new Date().toISOString();
    try {
      writeStatusSnapshot(this.pidDir, this.snapshot);
    } catch (error) {
      this.logger.debug(`Could not write the status file: ${(error as Error).message}`);
    }
  }

  identity(fields: { hostIdentifier: string; region: string; endpoint: string }): void {
    Object.assign(this.snapshot, fields);
    this.write();
  }

  metricsAddress(address: string): void {
    this.snapshot.metricsAddress = address;
    this.write();
  }

  state(state: StatusSnapshot['state']): void {
    this.snapshot.state = state;
    this.write();
  }

  /** Written once: later polls change nothing here, so they cost no write. */
  pollStarted(): void {
    if (this.snapshot.firstPollStartedAt) return;
    this.snapshot.firstPollStartedAt = new Date().toISOString();
    this.write();
  }

  polled(): void {
    const now = new Date().toISOString();
    this.snapshot.lastPollAt = now;
    this.snapshot.lastSuccessfulPollAt = now;
    delete this.snapshot.pollFailingSince;
    delete this.snapshot.credentialsRefused;
    this.write();
  }

  /** A poll (or, before polling, the identity look-up) failed; `credentialsRefused` when the service refused who we are. */
  error(message: string, options: { credentialsRefused?: boolean } = {}): void {
    const now = new Date().toISOString();
    this.snapshot.lastPollAt = now;
    this.snapshot.lastError = { at: now, message };
    this.snapshot.pollFailingSince ??= now;
    if (options.credentialsRefused) this.snapshot.credentialsRefused = { at: now, message };
    else delete this.snapshot.credentialsRefused;
    this.write();
  }

  commandStarted(command: InFlightCommand): void {
    this.snapshot.inFlight = [...this.snapshot.inFlight.filter((c) => c.hostCommandIdentifier !== command.hostCommandIdentifier), command];
    this.write();
  }

  commandUpdated(hostCommandIdentifier: string, update: Partial<InFlightCommand>): void {
    const command = this.snapshot.inFlight.find((c) => c.hostCommandIdentifier === hostCommandIdentifier);
    if (!command) return;
    Object.assign(command, update);
    this.write();
  }

  commandFinished(hostCommandIdentifier: string, result?: Omit<RecentDeployment, 'finishedAt'>): void {
    this.snapshot.inFlight = this.snapshot.inFlight.filter((c) => c.hostCommandIdentifier !== hostCommandIdentifier);
    if (result) {
      this.snapshot.recent = [{ ...result, finishedAt: new Date().toISOString() }, ...this.snapshot.recent].slice(0, RECENT_LIMIT);
    }
    this.write();
  }

  download(progress: DownloadProgress | undefined, deploymentId: string): void {
    this.snapshot.downloads = this.snapshot.downloads.filter((d) => d.deploymentId !== deploymentId);
    if (progress) this.snapshot.downloads.push(progress);
    this.write();
  }
}
