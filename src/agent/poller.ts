import type { AgentConfig } from '../config/agent-config.js';
import type { Logger } from '../log/logger.js';
import { ServiceError } from '../report/errors.js';
import { isAuthError } from '../service/service-errors.js';
import { formatMs } from '../util/duration.js';
import { backoffDelay, isAbortError, sleep } from '../util/retry.js';
import { ThrottleGate } from '../util/throttle-gate.js';
import type { HostCommand } from './command-runner.js';
import { SlotPool } from './concurrency.js';

export interface PollApi {
  pollHostCommand(hostIdentifier: string, signal?: AbortSignal): Promise<{ HostCommand?: HostCommand | null }>;
}

export interface PollerEvents {
  /** A PollHostCommand is about to be sent. */
  pollStarted?(): void;
  polled?(result: 'command' | 'empty'): void;
  error?(message: string, error: unknown): void;
}

export interface PollerDeps {
  config: AgentConfig;
  logger: Logger;
  api: PollApi;
  hostIdentifier: string;
  /** Runs one command to its end; never rejects (failures are reported to the service inside). */
  dispatch: (command: HostCommand) => Promise<void>;
  events?: PollerEvents;
  isThrottling?: (error: unknown) => boolean;
  /** Added to the error line when the service refuses our credentials: where they come from, what to check. */
  authHint?: string;
  /** Shared with the commands client, so a throttled acknowledgement or completion holds the polls too. */
  throttleGate?: ThrottleGate;
  random?: () => number;
}

/** Consecutive errors are counted up to this cap, as the anchor (§1.7). */
const MAX_ERROR_COUNT = 10;

/**
 * The poll loop (agent-spec §1.4, §1.5, §1.7): a random start-up splay, then long polls; a command is
 * dispatched and the loop polls again at once while a slot is free; `wait_between_runs` when idle;
 * jittered exponential backoff on errors; a shared throttle gate when the service throttles.
 */
export class Poller {
  private readonly slots: SlotPool;
  private readonly inFlight = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private consecutiveErrors = 0;
  private readonly throttleGate: ThrottleGate;
  private readonly random: () => number;

  constructor(private readonly deps: PollerDeps) {
    this.slots = new SlotPool(deps.config.max_concurrent_commands);
    this.random = deps.random ?? Math.random;
    this.throttleGate = deps.throttleGate ?? new ThrottleGate(() => throttleWindowMs(deps.config, this.random));
  }

  /** Commands still running (for shutdown). */
  active(): Promise<void>[] {
    return [...this.running];
  }

  /** Polls until `stop` aborts; returns promptly then (the open long poll is aborted). */
  async run(stop: AbortSignal): Promise<void> {
    const { config, logger } = this.deps;
    try {
      const splayMs = this.random() * config.startup_splay_seconds * 1000;
      if (splayMs > 0) logger.info(`Waiting ${formatMs(splayMs)} before the first poll (start-up splay)`);
      await sleep(splayMs, stop);
      while (!stop.aborted) {
        await this.slots.waitForFree(stop);
        if (stop.aborted) break;
        await this.throttleGate.wait(stop);
        await this.pollOnce(stop);
      }
    } catch (error) {
      if (!isAbortError(error) && !stop.aborted) throw error;
    }
  }

  private async pollOnce(stop: AbortSignal): Promise<void> {
    const { config, logger, api, hostIdentifier, events } = this.deps;
    const started = Date.now();
    try {
      logger.debug('Calling PollHostCommand');
      events?.pollStarted?.();
      const response = await api.pollHostCommand(hostIdentifier, stop);
      const command = response.HostCommand ?? undefined;
      if (!command) {
        this.consecutiveErrors = 0;
        events?.polled?.('empty');
        logger.debug('PollHostCommand: Host Command = nil');
        await sleep(config.wait_between_runs * 1000, stop);
        return;
      }
      const accepted = this.accept(command);
      this.consecutiveErrors = 0;
      events?.polled?.('command');
      // A re-delivery of a running command is nothing new: do not turn a repeating service into a busy loop.
      if (!accepted) await sleep(config.wait_between_runs * 1000, stop);
    } catch (error) {
      if (stop.aborted || isAbortError(error)) return;
      this.consecutiveErrors = Math.min(this.consecutiveErrors + 1, MAX_ERROR_COUNT);
      const message = error instanceof Error ? error.message : String(error);
      events?.error?.(message, error);
      if (this.deps.isThrottling?.(error)) {
        // One gate for every caller: nobody polls again until the throttle wait (with jitter) is over.
        const waitMs = this.throttleGate.close();
        logger.warn(`Cannot reach InstanceService: throttled (${message}); waiting ${formatMs(waitMs)}`);
        return;
      }
      // The anchor's table runs 10 → 90 s over ten errors (scaled by max_poll_backoff_seconds); equal jitter
      // keeps a fleet from retrying in step.
      const seconds = (1.2675 ** this.consecutiveErrors * config.max_poll_backoff_seconds) / 1.2675 ** MAX_ERROR_COUNT;
      // Whole seconds as the anchor's table (10, 13, 17, …); below a second (tests) in milliseconds.
      const ceiling = seconds >= 1 ? Math.floor(seconds) * 1000 : Math.floor(seconds * 1000);
      const delay = backoffDelay(0, { baseMs: ceiling, capMs: ceiling, jitter: 'equal', random: this.random }) - (Date.now() - started);
      // As the anchor words it: service and network failures vs a command we refused (host mismatch, no name).
      const what = error instanceof ServiceError ? 'Cannot reach InstanceService' : 'Error during perform';
      const hint = isAuthError(error) && this.deps.authHint ? ` (${this.deps.authHint})` : '';
      logger.error(`${what}: ${message}${hint}; retrying in ${formatMs(Math.max(0, delay))}`);
      await sleep(Math.max(0, delay), stop);
    }
  }

  /** Checks a polled command (§1.4, exact host match §10.24) and dispatches it; false for a re-delivery. */
  private accept(command: HostCommand): boolean {
    const { logger, hostIdentifier } = this.deps;
    if (command.HostIdentifier !== hostIdentifier) {
      throw new Error(`Host Identifier mismatch: ${hostIdentifier} != ${command.HostIdentifier}`);
    }
    if (!command.CommandName) throw new Error('Command Name missing');
    const id = command.HostCommandIdentifier;
    if (this.inFlight.has(id)) {
      logger.info(`Command ${id} (${command.CommandName}) is already running; ignoring the re-delivery`);
      return false;
    }
    logger.info(`Received command ${command.CommandName} (${id})`);
    this.inFlight.add(id);
    const release = this.slots.take();
    const task = this.deps
      .dispatch(command)
      .catch((error: unknown) => logger.error(`Command ${id} ended with an unexpected error: ${(error as Error).message}`))
      .finally(() => {
        this.inFlight.delete(id);
        release();
        this.running.delete(task);
      });
    this.running.add(task);
    return true;
  }
}

/** How long the service's throttling closes the gate: wait_after_throttle_error, jittered between half and all of it. */
export function throttleWindowMs(config: AgentConfig, random: () => number = Math.random): number {
  return config.wait_after_throttle_error * 1000 * (0.5 + 0.5 * random());
}
