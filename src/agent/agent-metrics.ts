/**
 * What the daemon counts as it works. The daemon talks to this interface only; the Prometheus registry
 * behind it (metrics.ts, with prom-client and the HTTP listener) is loaded when `:metrics_listen:` is
 * set, so an agent without metrics parses none of it. This file imports nothing on purpose.
 */
export type PollOutcome = 'command' | 'empty' | 'error' | 'throttled' | 'credentials_refused';

/** How a polled command ended: ran to success or failure, or the service said not to run it. */
export type CommandOutcome = 'succeeded' | 'failed' | 'not_run';

export interface DownloadRecord {
  /** The revision type: S3, GitHub, Local File, Local Directory. */
  source: string;
  outcome: 'succeeded' | 'failed';
  bytes: number;
  seconds: number;
}

export interface AgentMetrics {
  poll(outcome: PollOutcome): void;
  command(outcome: CommandOutcome): void;
  /** A lifecycle event that ran (or failed before it could), with its CodeDeploy error code (0 on success). */
  lifecycleEvent(event: string, outcome: 'succeeded' | 'failed', errorCode: number, seconds: number): void;
  download(record: DownloadRecord): void;
  /** The service throttled us: nothing is sent to it for `seconds`. */
  throttled(seconds: number): void;
  /** One operator hook ran (`pre-event`, `post-deployment`…), or was refused. */
  operatorHook(point: string, outcome: 'succeeded' | 'failed' | 'timed_out' | 'refused'): void;
}

/** The default: nothing is counted. */
export const NO_METRICS: AgentMetrics = {
  poll: () => {},
  command: () => {},
  lifecycleEvent: () => {},
  download: () => {},
  throttled: () => {},
  operatorHook: () => {},
};
