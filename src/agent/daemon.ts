import { join } from 'node:path';
import type { AgentConfig } from '../config/agent-config.js';
import type { Logger } from '../log/logger.js';
import { formatListenAddress } from '../config/listen-address.js';
import { trackingDir } from '../deployment/layout.js';
import type { DeploymentSpec } from '../deployment/spec-types.js';
import { interruptedWorkPresent } from '../deployment/interrupted-work-present.js';
import { failedAfterRestartDiagnostics } from '../report/diagnostics.js';
import { resolveIdentity, type HostIdentity } from '../service/identity.js';
import { createCommandsClient, type CommandsClient } from '../service/commands-client.js';
import { isAuthError, isRetryableError, isThrottlingError } from '../service/service-errors.js';
import { formatMs } from '../util/duration.js';
import { backoffDelay, isAbortError, sleep } from '../util/retry.js';
import { claimPidFile, removePidFile } from './pid-file.js';
import { CommandTracker } from './command-tracker.js';
import { CompletionOutbox } from './completion-outbox.js';
import { KeyedMutex } from './concurrency.js';
import { runCommand, type CommandEvents, type HostCommand } from './command-runner.js';
import { CommandWorker, type EventCallbacks } from './command-worker.js';
import { Poller, throttleWindowMs } from './poller.js';
import { ThrottleGate } from '../util/throttle-gate.js';
import { scopedSignal } from '../util/scoped-signal.js';
import { StatusReporter } from './status-reporter.js';
import { NO_METRICS, type AgentMetrics, type PollOutcome } from './agent-metrics.js';
import { judgeHealth, type HealthVerdict } from './health.js';

export interface DaemonOptions {
  config: AgentConfig;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

/** Credentials AWS's agent scrubs from its own environment so hooks and child tools never see them. */
const SCRUBBED_VARIABLES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_CREDENTIAL_FILE'];

/** Once the agent is stopping, the one last try of an undelivered completion takes at most this long. */
const LAST_DELIVERY_TRY_MS = 10_000;

/** Where decided-but-undelivered completions wait (a folder of ours beside AWS's agent's). */
export function outboxDir(rootDir: string): string {
  return join(rootDir, 'pending-completions');
}

/**
 * `codedeploy-agent run`: resolves the host's identity, recovers from a crash, polls the commands
 * service and runs each command's lifecycle event in its command worker (./command-worker.ts) until asked to stop
 * (docs/architecture.md, "The daemon").
 *
 * Shutdown: the first SIGTERM/SIGINT aborts the open long poll at once and lets running commands finish
 * for up to `kill_agent_max_wait_time_seconds`; then (or at a second signal) their hooks are killed
 * (TERM, grace, KILL), the commands are reported Failed, and the agent exits 0.
 */
export class Daemon {
  private readonly stopPolling = new AbortController();
  private readonly killHooks = new AbortController();
  private readonly finalGiveUp = new AbortController();
  private readonly status: StatusReporter;
  private readonly tracker: CommandTracker;
  private readonly outbox: CompletionOutbox;
  private readonly groupLock = new KeyedMutex();
  private client?: CommandsClient;
  private identity?: HostIdentity;
  private stopRequests = 0;
  private wakeShutdownWait?: () => void;
  /** Deliveries in progress, by HostCommandIdentifier: one at a time per command. */
  private readonly deliveries = new Map<string, Promise<void>>();
  /** Deliveries not owned by a running command (results decided before a restart): shutdown waits for them too. */
  private readonly backgroundDeliveries = new Set<Promise<void>>();
  /** Prometheus metrics when `:metrics_listen:` is set (see startMetrics); counting nothing otherwise. */
  private metrics: AgentMetrics = NO_METRICS;
  private closeMetrics?: () => Promise<void>;
  /** Where specifications are opened and events run, so this process never loads that code (see CommandWorker). */
  private readonly worker: CommandWorker;

  constructor(private readonly options: DaemonOptions) {
    const { config, logger } = options;
    this.status = new StatusReporter(config.pid_dir, logger);
    this.tracker = new CommandTracker(trackingDir(config.root_dir, config.ongoing_deployment_tracking));
    this.outbox = new CompletionOutbox(outboxDir(config.root_dir));
    this.worker = new CommandWorker({ logger, credentials: () => this.identity?.credentials });
  }

  private get config(): AgentConfig {
    return this.options.config;
  }

  private get logger(): Logger {
    return this.options.logger;
  }

  /** First call: graceful stop. Second call: stop waiting for running commands and kill their hooks. */
  requestStop(signalName = 'SIGTERM'): void {
    this.stopRequests++;
    if (this.stopRequests === 1) {
      this.logger.info(`${signalName} received: no new commands; waiting up to ${this.config.kill_agent_max_wait_time_seconds} s for running ones`);
      this.status.state('stopping');
      this.stopPolling.abort();
    } else {
      this.logger.warn(`${signalName} received again: stopping running hooks now`);
      this.wakeShutdownWait?.();
    }
  }

  /** Runs until stopped; resolves when everything is shut down. */
  async run(): Promise<void> {
    const { config, logger } = this;
    const env = this.options.env ?? process.env;
    if (config.codedeploy_test_profile !== 'beta' && config.codedeploy_test_profile !== 'gamma') {
      for (const name of SCRUBBED_VARIABLES) delete env[name];
    }
    claimPidFile(config.pid_dir);
    try {
      this.status.state('starting');
      // Before anything can run a hook again: what a killed agent left running is stopped first. The
      // recovery (install code the daemon otherwise leaves to its command worker) loads only when needed.
      if (interruptedWorkPresent(config.root_dir)) await (await import('../deployment/interrupted-work.js')).recoverInterruptedWork(config, logger);
      if (config.metrics_listen !== undefined) await this.startMetrics(config.metrics_listen);
      const identity = await this.resolveIdentityUntilStopped(env);
      if (identity) {
        this.identity = identity;
        // One throttle gate for the poll loop and every command's calls (see ThrottleGate).
        const throttleGate = new ThrottleGate(() => {
          const windowMs = throttleWindowMs(config);
          this.metrics.throttled(windowMs / 1000);
          return windowMs;
        });
        this.client = createCommandsClient(config, identity, { env, logger, overrides: { throttleGate } });
        this.status.identity({ hostIdentifier: identity.hostIdentifier, region: identity.region, endpoint: this.client.endpoint.toString() });
        logger.info(`Host identifier ${identity.hostIdentifier}, region ${identity.region}`);
        await this.recoverFromCrash();
        if (!this.stopPolling.signal.aborted) this.status.state('polling');
        const poller = new Poller({
          config,
          logger,
          api: this.client,
          hostIdentifier: identity.hostIdentifier,
          dispatch: (command) => this.dispatch(command),
          isThrottling: isThrottlingError,
          throttleGate,
          authHint: `the service refused this host's credentials: check ${identity.credentialsSource ?? 'them'}, that they belong to ${identity.hostIdentifier}, `
            + `the region ${identity.region} and the clock`,
          events: {
            pollStarted: () => this.status.pollStarted(),
            polled: (result) => {
              this.status.polled();
              this.metrics.poll(result);
            },
            error: (message, error) => {
              const outcome: PollOutcome = isThrottlingError(error) ? 'throttled' : isAuthError(error) ? 'credentials_refused' : 'error';
              this.status.error(message, { credentialsRefused: outcome === 'credentials_refused' });
              this.metrics.poll(outcome);
            },
          },
        });
        await poller.run(this.stopPolling.signal);
        await this.drain(() => [...poller.active(), ...this.backgroundDeliveries]);
      }
    } finally {
      await this.worker.close((config.hook_kill_grace_seconds + 10) * 1000);
      this.client?.close();
      await this.closeMetrics?.();
      removePidFile(config.pid_dir, process.pid);
      this.status.state('stopping');
      logger.info('Agent stopped');
    }
  }

  /** The one health judgement (see health.ts), from this process's own state. */
  health(): HealthVerdict {
    return judgeHealth(this.status.current, this.config.health_poll_failure_seconds);
  }

  /**
   * Starts the health and metrics listener, loading prom-client only now. A port that cannot be bound
   * is logged and the agent runs on without it: deployments matter more than their metrics.
   */
  private async startMetrics(listen: string): Promise<void> {
    try {
      const { startMetricsEndpoint } = await import('./metrics-server.js');
      const endpoint = await startMetricsEndpoint({
        listen,
        sources: { snapshot: () => this.status.current, health: () => this.health() },
        logger: this.logger,
      });
      this.metrics = endpoint.metrics;
      this.closeMetrics = () => endpoint.close();
      this.status.metricsAddress(formatListenAddress(endpoint.address));
    } catch (error) {
      this.logger.error(`metrics_listen ${listen}: cannot serve health and metrics (${(error as Error).message}); the agent runs without them`);
    }
  }

  /**
   * Waits for running commands, then kills their hooks, then gives their completions a last chance.
   * Undelivered results do not hold the shutdown up: once stopping, each gets one more bounded try and
   * otherwise stays in the outbox for the next start.
   */
  private async drain(activeWork: () => Promise<void>[]): Promise<void> {
    const running = activeWork();
    if (running.length === 0) return;
    this.logger.info(`Waiting for ${running.length} running command(s) to finish`);
    const all = Promise.allSettled(running);
    const waitMs = this.config.kill_agent_max_wait_time_seconds * 1000;
    const woken = new Promise<void>((resolve) => {
      this.wakeShutdownWait = resolve;
      if (this.stopRequests > 1) resolve();
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
    });
    await Promise.race([all, woken, timedOut]);
    clearTimeout(timer);
    if (activeWork().length > 0) {
      this.logger.warn('Running commands did not finish in time: stopping their hooks; they are reported Failed');
      this.killHooks.abort();
      // Completions get a bounded last try; what is not delivered stays in the outbox for the next start.
      const grace = setTimeout(() => this.finalGiveUp.abort(), this.config.hook_kill_grace_seconds * 1000 + LAST_DELIVERY_TRY_MS + 5_000);
      await Promise.allSettled(activeWork());
      clearTimeout(grace);
    }
  }

  /** IMDS or the on-premises file may not be ready at boot (#227): keep trying until it works or we stop. */
  private async resolveIdentityUntilStopped(env: NodeJS.ProcessEnv): Promise<HostIdentity | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await resolveIdentity(this.config, { env, logger: this.logger });
      } catch (error) {
        const message = (error as Error).message;
        this.status.error(message);
        const delay = backoffDelay(attempt, { baseMs: this.config.wait_after_connection_problem * 1000, capMs: 300_000, jitter: 'equal' });
        this.logger.error(`Cannot determine this host's identity: ${message}; retrying in ${formatMs(delay)}`);
        try {
          await sleep(delay, this.stopPolling.signal);
        } catch {
          return undefined;
        }
      }
    }
  }

  /**
   * Crash recovery: results decided before a restart are delivered (in the background: polling starts at once); a
   * command that was running when the agent died (tracked, no decided result) is completed Failed with
   * code 7. A tracked command whose result was already decided keeps that result: it is never reported
   * twice with different statuses.
   */
  private async recoverFromCrash(): Promise<void> {
    const decided = new Set(this.outbox.list().map((c) => c.hostCommandIdentifier));
    for (const command of this.tracker.inProgress()) {
      if (decided.has(command.hostCommandIdentifier)) {
        this.logger.info(`Command ${command.hostCommandIdentifier} of ${command.deploymentId} had finished before the agent stopped; delivering its result`);
      } else {
        this.logger.warn(`Command ${command.hostCommandIdentifier} of ${command.deploymentId} was in progress when the agent stopped; reporting it Failed`);
        this.outbox.put({
          hostCommandIdentifier: command.hostCommandIdentifier,
          status: 'Failed',
          diagnostics: failedAfterRestartDiagnostics(),
          decidedAt: new Date().toISOString(),
        });
      }
      this.tracker.finish(command.deploymentId);
    }
    for (const pending of this.outbox.list()) {
      this.logger.info(`Delivering the result of ${pending.hostCommandIdentifier} (${pending.status}) decided at ${pending.decidedAt}`);
      this.deliverInBackground(pending.hostCommandIdentifier);
    }
  }

  private deliverInBackground(hostCommandIdentifier: string): void {
    const task: Promise<void> = this.deliver(hostCommandIdentifier).finally(() => this.backgroundDeliveries.delete(task));
    this.backgroundDeliveries.add(task);
  }

  /** Sends a decided completion until the service takes it (one delivery per command at a time). */
  private deliver(hostCommandIdentifier: string): Promise<void> {
    let delivery = this.deliveries.get(hostCommandIdentifier);
    if (!delivery) {
      delivery = this.deliverUntilAccepted(hostCommandIdentifier).finally(() => this.deliveries.delete(hostCommandIdentifier));
      this.deliveries.set(hostCommandIdentifier, delivery);
    }
    return delivery;
  }

  /**
   * Retries with jittered backoff while the agent runs. Once it is stopping, one more try (bounded in
   * time), then the result stays on disk for the next start. A non-retryable refusal is logged and dropped.
   */
  private async deliverUntilAccepted(hostCommandIdentifier: string): Promise<void> {
    const pending = this.outbox.list().find((c) => c.hostCommandIdentifier === hostCommandIdentifier);
    if (!pending || !this.client) return;
    const keep = () => this.logger.warn(`The result of ${hostCommandIdentifier} is kept on disk and will be delivered at the next start`);
    for (let attempt = 0; ; attempt++) {
      const lastTry = this.stopPolling.signal.aborted;
      const signal = lastTry ? AbortSignal.any([this.finalGiveUp.signal, AbortSignal.timeout(LAST_DELIVERY_TRY_MS)]) : this.finalGiveUp.signal;
      try {
        await this.client.putHostCommandComplete(pending.hostCommandIdentifier, pending.status, pending.diagnostics, signal);
        this.outbox.remove(hostCommandIdentifier);
        this.logger.info(`PutHostCommandComplete ${pending.status} for ${hostCommandIdentifier}`);
        return;
      } catch (error) {
        if (signal.aborted || isAbortError(error)) {
          keep();
          return;
        }
        if (!isRetryableError(error) && !isThrottlingError(error)) {
          this.logger.error(`The service refused the result of ${hostCommandIdentifier}: ${(error as Error).message}; dropping it`);
          this.outbox.remove(hostCommandIdentifier);
          return;
        }
        if (lastTry) {
          this.logger.warn(`PutHostCommandComplete for ${hostCommandIdentifier} failed (${(error as Error).message})`);
          keep();
          return;
        }
        const delay = backoffDelay(attempt, { baseMs: 1000, capMs: 60_000, jitter: 'equal' });
        this.logger.warn(`PutHostCommandComplete for ${hostCommandIdentifier} failed (${(error as Error).message}); retrying in ${formatMs(delay)}`);
        try {
          await sleep(delay, this.stopPolling.signal);
        } catch {
          // stopping: one last try now
        }
      }
    }
  }

  /**
   * The command's work in the command worker. `signal`: the command's own, which follows the shutdown's
   * kill signal while the command runs.
   */
  private commandEvents(command: HostCommand, signal: AbortSignal): CommandEvents {
    return {
      openSpec: (c, envelope) => this.worker.openSpec(this.config, c.DeploymentExecutionId ?? '', envelope),
      isNoop: (c, spec) => this.worker.isNoop(this.config, spec, c.CommandName ?? ''),
      run: (c, spec) => this.worker.runEvent(this.config, spec, c.CommandName ?? '', {
        region: this.identity!.region,
        signal,
        callbacks: this.eventCallbacks(command, spec),
      }),
    };
  }

  /** What a running event reports back: the status file and the metrics. */
  private eventCallbacks(command: HostCommand, spec: DeploymentSpec): EventCallbacks {
    let lastProgressWrite = 0;
    const started = Date.now();
    return {
      onScriptStart: (_event, location) => this.status.commandUpdated(command.HostCommandIdentifier, { script: location }),
      onDownloaded: (record) => this.metrics.download(record),
      onOperatorHook: (point, outcome) => this.metrics.operatorHook(point, outcome),
      onProgress: ({ bytes, total }) => {
        const now = Date.now();
        if (now - lastProgressWrite < 1000 && bytes !== total) return;
        lastProgressWrite = now;
        const bytesPerSecond = bytes / Math.max((now - started) / 1000, 0.001);
        this.status.download({
          deploymentId: spec.deploymentId,
          bytes,
          ...(total !== undefined ? { total, etaSeconds: bytesPerSecond > 0 ? Math.ceil((total - bytes) / bytesPerSecond) : undefined } : {}),
          bytesPerSecond,
        }, spec.deploymentId);
      },
    };
  }

  private countCommand(command: HostCommand, status: 'Succeeded' | 'Failed' | 'NotRun', errorCode: number | undefined, seconds: number): void {
    if (status === 'NotRun') {
      this.metrics.command('not_run');
      return;
    }
    const outcome = status === 'Succeeded' ? 'succeeded' : 'failed';
    this.metrics.command(outcome);
    this.metrics.lifecycleEvent(command.CommandName ?? '', outcome, errorCode ?? 0, seconds);
  }

  private async dispatch(command: HostCommand): Promise<void> {
    const id = command.HostCommandIdentifier;
    if (this.outbox.has(id)) {
      // Its result was decided already (before a restart): deliver that, never run it a second time.
      this.logger.info(`Command ${id} (${command.CommandName}) has a decided result that is not delivered yet; delivering it instead of running it again`);
      await this.deliver(id);
      return;
    }
    const started = Date.now();
    this.status.commandStarted({
      hostCommandIdentifier: id,
      deploymentId: command.DeploymentExecutionId ?? '',
      deploymentGroupId: '',
      event: command.CommandName ?? '',
      startedAt: new Date().toISOString(),
    });
    this.worker.prepare();
    const kill = scopedSignal(this.killHooks.signal);
    const outcome = await runCommand({
      config: this.config,
      logger: this.logger,
      api: this.client!,
      hostIdentifier: this.identity!.hostIdentifier,
      tracker: this.tracker,
      outbox: this.outbox,
      groupLock: this.groupLock,
      deliver: (hostCommandIdentifier) => this.deliver(hostCommandIdentifier),
      events: this.commandEvents(command, kill.signal),
      onProgress: (_c, { spec }) => {
        if (spec) {
          this.status.commandUpdated(id, {
            deploymentId: spec.deploymentId,
            deploymentGroupId: spec.deploymentGroupId,
            deploymentGroupName: spec.deploymentGroupName,
            applicationName: spec.applicationName,
          });
        }
      },
    }, command).finally(() => kill.release());
    if (outcome.spec) this.status.download(undefined, outcome.spec.deploymentId);
    const payload = outcome.diagnostics ? (JSON.parse(outcome.diagnostics.Payload) as { error_code?: number; message?: string }) : undefined;
    this.countCommand(command, outcome.status, payload?.error_code, (Date.now() - started) / 1000);
    this.status.commandFinished(id, outcome.status === 'NotRun' ? undefined : {
      deploymentId: outcome.spec?.deploymentId ?? command.DeploymentExecutionId ?? '',
      deploymentGroupId: outcome.spec?.deploymentGroupId ?? '',
      ...(outcome.spec ? { deploymentGroupName: outcome.spec.deploymentGroupName, applicationName: outcome.spec.applicationName } : {}),
      event: command.CommandName ?? '',
      status: outcome.status,
      ...(payload?.error_code ? { errorCode: payload.error_code } : {}),
      ...(outcome.status === 'Failed' && payload?.message ? { message: payload.message } : {}),
    });
  }
}
