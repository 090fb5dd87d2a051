import { spawn, type ChildProcess } from 'node:child_process';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import type { AgentConfig } from '../config/agent-config.js';
import type { DeploymentSpec } from '../deployment/spec-types.js';
import type { EngineContext, EventResult } from '../deployment/engine.js';
import type { Logger } from '../log/logger.js';
import { knownSecrets } from '../log/redact.js';
import { AgentError, ReportedError } from '../report/errors.js';
import { selfCommand } from '../util/self-command.js';
import { WORKER_SUBCOMMAND, type FromWorker, type SpecEnvelope, type ToWorker, type WorkerCall } from './command-worker-wire.js';

/**
 * The worker exits after this long without a call. The events of one deployment reach a host a second or
 * two apart, so one worker start serves a whole deployment; an idle daemon keeps none.
 */
export const WORKER_IDLE_MS = 10_000;

/** What a call reports while it runs (the daemon's status file and metrics). */
export type EventCallbacks = Pick<EngineContext, 'onScriptStart' | 'onDownloaded' | 'onOperatorHook' | 'onProgress'>;

interface PendingCall {
  resolve(value: unknown): void;
  reject(error: Error): void;
  callbacks?: EventCallbacks;
}

interface Connection {
  child: ChildProcess;
  calls: Map<number, PendingCall>;
  /** The IPC channel is closed (idle, or the daemon is stopping): the worker finishes and exits. */
  closing: boolean;
  exited: Promise<void>;
}

export interface CommandWorkerOptions {
  logger: Logger;
  /** The host's credentials (the daemon resolves and refreshes them; the worker's S3 client asks for them). */
  credentials: () => AwsCredentialIdentityProvider | undefined;
  idleMs?: number;
}

/**
 * The daemon's side of its command worker (`codedeploy-agent command-worker`, ./command-worker-main.ts):
 * a child process of the same program, started when a command needs it and stopped after WORKER_IDLE_MS
 * without one. It opens deployment specifications, answers IsCommandNoop and runs lifecycle events; the
 * daemon keeps polling, acknowledging, locking, tracking and reporting. Code a process has loaded stays
 * loaded: in the worker, the S3 client, PKCS7, archive and install code leave with it (docs/decisions.md,
 * "Memory over time").
 *
 * A worker that dies fails the calls it had with an error saying so. Started in a session of its own, so
 * a terminal's Ctrl-C reaches only the daemon, which decides when hooks stop (`abort`).
 */
export class CommandWorker {
  #connection: Connection | undefined;
  #nextId = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  readonly #idleMs: number;

  constructor(private readonly options: CommandWorkerOptions) {
    this.#idleMs = options.idleMs ?? WORKER_IDLE_MS;
  }

  /** The worker's pid while one runs (tests, the bench). */
  get pid(): number | undefined {
    return this.#connection?.child.pid;
  }

  /**
   * Starts a worker now if none runs, so that its start (and its loading the deployment code) overlaps the
   * daemon's GetDeploymentSpecification; it stops when idle like any other.
   */
  prepare(): void {
    const connection = this.#connect();
    if (connection.calls.size === 0) this.#armIdleTimer(connection);
  }

  openSpec(config: AgentConfig, deploymentExecutionId: string, envelope: SpecEnvelope): Promise<DeploymentSpec> {
    return this.#call({ type: 'open-spec', config, deploymentExecutionId, envelope }) as Promise<DeploymentSpec>;
  }

  isNoop(config: AgentConfig, spec: DeploymentSpec, event: string): Promise<boolean> {
    return this.#call({ type: 'is-noop', config, spec, event }) as Promise<boolean>;
  }

  /** Runs one lifecycle event; `signal` aborting stops its hooks (TERM, grace, KILL) as in-process. */
  runEvent(config: AgentConfig, spec: DeploymentSpec, event: string, options: { region?: string; signal?: AbortSignal; callbacks?: EventCallbacks }): Promise<EventResult> {
    return this.#call({ type: 'run-event', config, spec, event, region: options.region }, options.signal, options.callbacks) as Promise<EventResult>;
  }

  /**
   * Closes the channel (the worker exits once its calls are answered) and waits for it to exit; one that has
   * not exited after `waitMs` (it stops its hooks first) is killed.
   */
  async close(waitMs: number): Promise<void> {
    clearTimeout(this.#idleTimer);
    const connection = this.#connection;
    if (!connection) return;
    this.#release(connection);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), waitMs);
    });
    if ((await Promise.race([connection.exited, late])) === 'late') {
      this.options.logger.warn(`The command worker (pid ${connection.child.pid}) did not exit; killing it`);
      connection.child.kill('SIGKILL');
      await connection.exited;
    }
    clearTimeout(timer);
  }

  #call(message: DistributiveOmit<WorkerCall, 'id'>, signal?: AbortSignal, callbacks?: EventCallbacks): Promise<unknown> {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    const connection = this.#connect();
    const id = this.#nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = () => this.#post(connection, { type: 'abort', id });
      const settle = () => {
        signal?.removeEventListener('abort', onAbort);
        connection.calls.delete(id);
        if (connection.calls.size === 0) this.#armIdleTimer(connection);
      };
      connection.calls.set(id, {
        resolve: (value) => { settle(); resolve(value); },
        reject: (error) => { settle(); reject(error); },
        callbacks,
      });
      this.#post(connection, { ...message, id } as WorkerCall);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #armIdleTimer(connection: Connection): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (connection.calls.size === 0) this.#release(connection);
    }, this.#idleMs);
    this.#idleTimer.unref();
  }

  /** This worker takes no more calls: its channel closes, and it exits. The next call starts another. */
  #release(connection: Connection): void {
    if (this.#connection === connection) this.#connection = undefined;
    if (connection.closing) return;
    connection.closing = true;
    if (connection.child.connected) connection.child.disconnect();
  }

  #post(connection: Connection, message: ToWorker): void {
    if (!connection.child.connected) return;
    try {
      connection.child.send(message);
    } catch {
      // the channel closed under us: the exit handler fails the call
    }
  }

  #connect(): Connection {
    if (this.#connection && !this.#connection.closing) return this.#connection;
    const { command, args } = selfCommand([WORKER_SUBCOMMAND]);
    const child = spawn(command, args, {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
      detached: true,
      env: process.env,
    });
    let markExited!: () => void;
    const exited = new Promise<void>((resolve) => {
      markExited = resolve;
    });
    const connection: Connection = { child, calls: new Map(), closing: false, exited };
    this.#connection = connection;
    const fail = (why: string) => {
      if (this.#connection === connection) this.#connection = undefined;
      for (const call of [...connection.calls.values()]) call.reject(new AgentError(why));
      markExited();
    };
    child.once('error', (error) => fail(`the command worker could not run: ${error.message}`));
    child.once('exit', (code, signal) => fail(`the command worker (pid ${child.pid}) stopped${signal ? ` on ${signal}` : ` with exit code ${code}`} before it answered`));
    child.on('message', (message: FromWorker) => this.#receive(connection, message));
    this.#post(connection, { type: 'secrets', values: knownSecrets() });
    this.options.logger.debug(`Started the command worker (pid ${child.pid})`);
    return connection;
  }

  #receive(connection: Connection, message: FromWorker): void {
    const { logger } = this.options;
    switch (message.type) {
      case 'log':
        logger[message.level](message.message);
        return;
      case 'credentials':
        void this.#answerCredentials(connection, message.request);
        return;
      case 'result': {
        const call = connection.calls.get(message.id);
        if (!call) return;
        if (message.failure) {
          const { name, message: text, code, diagnostics } = message.failure;
          call.reject(new ReportedError(name, text, code, diagnostics));
        } else {
          call.resolve(message.value);
        }
        return;
      }
      default: {
        const callbacks = connection.calls.get(message.id)?.callbacks;
        if (!callbacks) return;
        if (message.type === 'script-start') callbacks.onScriptStart?.(message.event, message.location);
        else if (message.type === 'progress') callbacks.onProgress?.({ bytes: message.bytes, total: message.total });
        else if (message.type === 'downloaded') callbacks.onDownloaded?.(message.record);
        else callbacks.onOperatorHook?.(message.point, message.outcome);
      }
    }
  }

  async #answerCredentials(connection: Connection, request: number): Promise<void> {
    try {
      const provider = this.options.credentials();
      if (!provider) throw new Error('the host has no credentials yet');
      const { accessKeyId, secretAccessKey, sessionToken, expiration } = await provider();
      this.#post(connection, { type: 'credentials', request, value: { accessKeyId, secretAccessKey, sessionToken, expiration } });
    } catch (error) {
      this.#post(connection, { type: 'credentials', request, error: (error as Error).message });
    }
  }
}

/** Omit over each member of a union (the calls differ in their fields). */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
