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
  lastSuccessfulPollAt?: string;
  lastError?: { at: string; message: string };
  inFlight: InFlightCommand[];
  recent: RecentDeployment[];
  downloads: DownloadProgress[];
  state: 'starting' | 'polling' | 'stopping';
}

export const STATUS_FILE_NAME = 'codedeploy-agent.status.json';
