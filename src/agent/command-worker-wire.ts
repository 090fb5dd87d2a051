import type { AgentConfig } from '../config/agent-config.js';
import type { DeploymentSpec } from '../deployment/spec-types.js';
import type { EventResult } from '../deployment/engine.js';
import type { Envelope } from '../report/diagnostics.js';
import type { ErrorCodeValue } from '../report/error-codes.js';
import type { DownloadRecord } from './agent-metrics.js';

/**
 * The messages between the daemon and its command worker (./command-worker.ts starts it,
 * ./command-worker-main.ts is its side), over the child's IPC channel with structured-clone
 * serialisation. Types only: neither side loads the other's code through this file.
 */

/** The GenericEnvelope of a GetDeploymentSpecification answer. */
export type SpecEnvelope = { Format?: string; Payload?: string } | null | undefined;

/** What the daemon asks the worker to do; each call has an id the answer carries. */
export type WorkerCall =
  | { type: 'open-spec'; id: number; config: AgentConfig; deploymentExecutionId: string; envelope: SpecEnvelope }
  | { type: 'is-noop'; id: number; config: AgentConfig; spec: DeploymentSpec; event: string }
  | { type: 'run-event'; id: number; config: AgentConfig; spec: DeploymentSpec; event: string; region?: string };

export interface WorkerCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export type ToWorker =
  | WorkerCall
  /** The secrets the daemon knows, sent first: the worker redacts them too. */
  | { type: 'secrets'; values: string[] }
  /** The daemon is stopping this call's hooks (shutdown). */
  | { type: 'abort'; id: number }
  | { type: 'credentials'; request: number; value?: WorkerCredentials; error?: string };

/** A failure as it crosses: enough to rebuild the error and to report it exactly as the worker would have. */
export interface WorkerFailure {
  name: string;
  message: string;
  code: ErrorCodeValue;
  diagnostics: Envelope;
}

export type FromWorker =
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; message: string }
  | { type: 'result'; id: number; value?: DeploymentSpec | boolean | EventResult; failure?: WorkerFailure }
  | { type: 'script-start'; id: number; event: string; location: string }
  | { type: 'progress'; id: number; bytes: number; total?: number }
  | { type: 'downloaded'; id: number; record: DownloadRecord }
  | { type: 'operator-hook'; id: number; point: string; outcome: 'succeeded' | 'failed' | 'timed_out' | 'refused' }
  /** The worker's S3 client needs the host's credentials (resolved and refreshed by the daemon). */
  | { type: 'credentials'; request: number };

/** The hidden subcommand the daemon starts its worker with. */
export const WORKER_SUBCOMMAND = 'command-worker';
