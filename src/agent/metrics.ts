import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HOOK_EVENTS, BUILTIN_EVENTS } from '../deployment/lifecycle.js';
import { AGENT_VERSION } from '../version.js';
import type { AgentMetrics, CommandOutcome, DownloadRecord, PollOutcome } from './agent-metrics.js';
import type { HealthVerdict } from './health.js';
import type { StatusSnapshot } from './status-snapshot.js';

/**
 * The daemon's Prometheus metrics (prom-client): counters and histograms the daemon feeds through
 * {@link AgentMetrics}, gauges read from its status snapshot at scrape time, Node.js process metrics and
 * build information. Names follow Prometheus' conventions (`_total`, `_seconds`, `_bytes`); every counter
 * series of a bounded label set exists from the start at 0, so `rate()` and alerts work before the first event.
 */
const PREFIX = 'codedeploy_agent_';

/** Lifecycle events last from a fraction of a second to the service's hour. */
const EVENT_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const DOWNLOAD_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

const KNOWN_EVENTS: ReadonlySet<string> = new Set([...BUILTIN_EVENTS, ...HOOK_EVENTS]);
const POLL_OUTCOMES: readonly PollOutcome[] = ['command', 'empty', 'error', 'throttled', 'credentials_refused'];
const COMMAND_OUTCOMES: readonly CommandOutcome[] = ['succeeded', 'failed', 'not_run'];

export interface MetricsSources {
  snapshot: () => Readonly<StatusSnapshot>;
  health: () => HealthVerdict;
}

export class PrometheusMetrics implements AgentMetrics {
  readonly registry = new Registry();
  private readonly polls: Counter<'outcome'>;
  private readonly commands: Counter<'outcome'>;
  private readonly events: Counter<'event' | 'outcome' | 'error_code'>;
  private readonly eventSeconds: Histogram<'event' | 'outcome'>;
  private readonly downloadBytes: Counter<'source'>;
  private readonly downloadSeconds: Histogram<'source' | 'outcome'>;
  private readonly throttles: Counter;
  private readonly throttleSeconds: Counter;
  private readonly operatorHooks: Counter<'hook' | 'outcome'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.polls = new Counter({ name: `${PREFIX}polls_total`, help: 'PollHostCommand calls by outcome', labelNames: ['outcome'], registers });
    for (const outcome of POLL_OUTCOMES) this.polls.inc({ outcome }, 0);
    this.commands = new Counter({ name: `${PREFIX}commands_total`, help: 'Polled commands by how they ended', labelNames: ['outcome'], registers });
    for (const outcome of COMMAND_OUTCOMES) this.commands.inc({ outcome }, 0);
    this.events = new Counter({
      name: `${PREFIX}lifecycle_events_total`,
      help: 'Lifecycle events run, by event, outcome and CodeDeploy error code (0 on success)',
      labelNames: ['event', 'outcome', 'error_code'],
      registers,
    });
    this.eventSeconds = new Histogram({
      name: `${PREFIX}lifecycle_event_duration_seconds`,
      help: 'How long lifecycle events took, from the command being polled to its result being decided',
      labelNames: ['event', 'outcome'],
      buckets: EVENT_BUCKETS,
      registers,
    });
    // Counters only: a histogram per event at zero would be 15 lines each for nothing.
    for (const event of KNOWN_EVENTS) this.events.inc({ event, outcome: 'succeeded', error_code: '0' }, 0);
    this.downloadBytes = new Counter({ name: `${PREFIX}download_bytes_total`, help: 'Revision bytes downloaded, by revision type', labelNames: ['source'], registers });
    this.downloadSeconds = new Histogram({
      name: `${PREFIX}download_duration_seconds`,
      help: 'How long revision downloads took, by revision type and outcome',
      labelNames: ['source', 'outcome'],
      buckets: DOWNLOAD_BUCKETS,
      registers,
    });
    this.throttles = new Counter({ name: `${PREFIX}throttled_total`, help: 'Times the commands service throttled the agent (each closes the throttle gate once)', registers });
    this.throttleSeconds = new Counter({ name: `${PREFIX}throttled_seconds_total`, help: 'Seconds the agent sent nothing to the commands service because it was throttled', registers });
    this.operatorHooks = new Counter({ name: `${PREFIX}operator_hooks_total`, help: 'Operator hooks run, by hook point and outcome', labelNames: ['hook', 'outcome'], registers });

    new Gauge({
      name: `${PREFIX}commands_in_flight`,
      help: 'Commands running now',
      registers,
      collect() {
        this.set(sources.snapshot().inFlight.length);
      },
    });
    new Gauge({
      name: `${PREFIX}last_successful_poll_timestamp_seconds`,
      help: 'When a poll last succeeded (Unix time; 0 before the first)',
      registers,
      collect() {
        const at = sources.snapshot().lastSuccessfulPollAt;
        this.set(at ? Date.parse(at) / 1000 : 0);
      },
    });
    new Gauge({
      name: `${PREFIX}healthy`,
      help: '1 while /healthz answers 200, 0 while it answers 503',
      registers,
      collect() {
        this.set(sources.health().healthy ? 1 : 0);
      },
    });
    const buildInfo = new Gauge({ name: `${PREFIX}build_info`, help: 'The agent version and the Node.js it runs on', labelNames: ['version', 'nodejs_version'], registers });
    buildInfo.set({ version: AGENT_VERSION, nodejs_version: process.versions.node }, 1);
    collectDefaultMetrics({ register: this.registry });
  }

  poll(outcome: PollOutcome): void {
    this.polls.inc({ outcome });
  }

  command(outcome: CommandOutcome): void {
    this.commands.inc({ outcome });
  }

  lifecycleEvent(name: string, outcome: 'succeeded' | 'failed', errorCode: number, seconds: number): void {
    // The service names the event; a name we do not know must not mint a series of its own.
    const event = KNOWN_EVENTS.has(name) ? name : 'other';
    this.events.inc({ event, outcome, error_code: String(errorCode) });
    this.eventSeconds.observe({ event, outcome }, seconds);
  }

  download(record: DownloadRecord): void {
    this.downloadBytes.inc({ source: record.source }, record.bytes);
    this.downloadSeconds.observe({ source: record.source, outcome: record.outcome }, record.seconds);
  }

  throttled(seconds: number): void {
    this.throttles.inc();
    this.throttleSeconds.inc(seconds);
  }

  operatorHook(point: string, outcome: 'succeeded' | 'failed' | 'timed_out' | 'refused'): void {
    this.operatorHooks.inc({ hook: point, outcome });
  }

  /** The text a scrape gets, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
