/**
 * What the daemon writes (atomically, on every state change) for `codedeploy-agent status` to read.
 * No secrets: the file is readable by non-root users.
 */
export interface InFlightCommand {
  hostCommandIdentifier: string;
  deploymentId: string;
  deploymentGroupId: string;
  deploymentGroupName?: string;
  applicationName?: string;
  event: string;
  /** The script running now, if a hook is running. */
  script?: string;
  startedAt: string;
}

export interface RecentDeployment {
  deploymentId: string;
  deploymentGroupId: string;
  deploymentGroupName?: string;
  applicationName?: string;
  event: string;
  status: 'Succeeded' | 'Failed';
  errorCode?: number;
  message?: string;
  finishedAt: string;
}

export interface DownloadProgress {
  deploymentId: string;
  bytes: number;
  total?: number;
  bytesPerSecond: number;
  etaSeconds?: number;
}

export interface StatusSnapshot {
  pid: number;
  version: string;
  startedAt: string;
  updatedAt: string;
  hostIdentifier?: string;
  region?: string;
  endpoint?: string;
  lastPollAt?: string;
  /** When the first poll was sent: a long poll the service holds without an error has passed authentication (`start` waits for this). */
  firstPollStartedAt?: string;
  lastSuccessfulPollAt?: string;
  lastError?: { at: string; message: string };
  /** The first failed poll since the last successful one (cleared by a successful poll): health counts from it. */
  pollFailingSince?: string;
  /** Set while the newest poll was refused for the host's credentials (cleared by a successful poll). */
  credentialsRefused?: { at: string; message: string };
  /** Where /healthz and /metrics answer (`127.0.0.1:9126`), when `:metrics_listen:` is set. */
  metricsAddress?: string;
  inFlight: InFlightCommand[];
  recent: RecentDeployment[];
  downloads: DownloadProgress[];
  state: 'starting' | 'polling' | 'stopping';
}

export const STATUS_FILE_NAME = 'codedeploy-agent.status.json';
