/**
 * Download progress for the three audiences: a one-line bar on a terminal (`deploy`), a line in the agent
 * log every few seconds (so a slow DownloadBundle is visible while it happens, users-and-peers theme 15),
 * and current figures for the status file.
 */
import type { Logger } from '../log/logger.js';

export interface ProgressSnapshot {
  bytes: number;
  total?: number;
  bytesPerSecond: number;
  etaSeconds?: number;
}

export interface ProgressTrackerOptions {
  /** What is moving, e.g. `s3://bucket/key`; starts every log line and the bar. */
  label: string;
  total?: number;
  /** Receives a progress line every `logIntervalMs` while bytes move (and when they stop moving). */
  logger?: Logger;
  logIntervalMs?: number;
  /** A terminal to draw the bar on; ignored unless it is a TTY. */
  tty?: NodeJS.WriteStream;
  /** Bar redraws are throttled to this (default 100 ms). */
  renderIntervalMs?: number;
  /** Rate is measured over this trailing window (default 5 s). */
  rateWindowMs?: number;
  /** Tests. */
  now?: () => number;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole} s`;
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

export class ProgressTracker {
  private bytes = 0;
  private total: number | undefined;
  private readonly startedAt: number;
  private readonly samples: { at: number; bytes: number }[] = [];
  private lastLogAt: number;
  private lastLoggedBytes = -1;
  private lastRenderAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private finished = false;
  private readonly now: () => number;
  private readonly tty: NodeJS.WriteStream | undefined;

  constructor(private readonly options: ProgressTrackerOptions) {
    this.now = options.now ?? Date.now;
    this.total = options.total;
    this.startedAt = this.now();
    this.lastLogAt = this.startedAt;
    this.samples.push({ at: this.startedAt, bytes: 0 });
    this.tty = options.tty?.isTTY ? options.tty : undefined;
    if (options.logger) {
      // Also fires while nothing arrives, so a stalled download still shows up in the log.
      this.timer = setInterval(() => this.logLine(false), this.logInterval());
      this.timer.unref();
    }
  }

  /** Suits the downloaders' `onProgress` option. */
  readonly onProgress = (progress: { bytes: number; total?: number }): void => {
    this.update(progress.bytes, progress.total);
  };

  /** Records the bytes received so far (absolute, not a delta). */
  update(bytes: number, total?: number): void {
    if (this.finished) return;
    if (total !== undefined) this.total = total;
    this.bytes = bytes;
    const at = this.now();
    // Rate baselines need only a coarse history: at most one sample per 100 ms.
    if (at - this.samples[this.samples.length - 1].at >= 100) this.samples.push({ at, bytes });
    const window = this.options.rateWindowMs ?? 5000;
    while (this.samples.length > 1 && at - this.samples[1].at >= window) this.samples.shift();
    if (this.options.logger && at - this.lastLogAt >= this.logInterval()) this.logLine(true);
    if (this.tty && at - this.lastRenderAt >= (this.options.renderIntervalMs ?? 100)) {
      this.lastRenderAt = at;
      this.tty.write(`\r${this.renderLine(this.tty.columns ?? 80)}`);
    }
  }

  snapshot(): ProgressSnapshot {
    const at = this.now();
    // The rate over the trailing window: measured from the newest sample at least a window old (or the
    // start), so it follows changes and drops to zero when bytes stop arriving.
    const cutoff = at - (this.options.rateWindowMs ?? 5000);
    let base = this.samples[0];
    for (const sample of this.samples) {
      if (sample.at > cutoff) break;
      base = sample;
    }
    const elapsedMs = at - base.at;
    const bytesPerSecond = elapsedMs > 0 ? ((this.bytes - base.bytes) * 1000) / elapsedMs : 0;
    const snapshot: ProgressSnapshot = { bytes: this.bytes, bytesPerSecond };
    if (this.total !== undefined) {
      snapshot.total = this.total;
      if (bytesPerSecond > 0) snapshot.etaSeconds = Math.max(0, (this.total - this.bytes) / bytesPerSecond);
    }
    return snapshot;
  }

  /** The bar as drawn on a terminal, fitted to `columns`. */
  renderLine(columns = 80): string {
    const { bytes, total, bytesPerSecond, etaSeconds } = this.snapshot();
    const amounts = total !== undefined ? `${formatBytes(bytes)} / ${formatBytes(total)}` : formatBytes(bytes);
    const tail = ` ${amounts} ${formatBytes(bytesPerSecond)}/s${etaSeconds !== undefined ? ` ETA ${formatDuration(etaSeconds)}` : ''}`;
    if (total === undefined || total === 0) return `${this.options.label}${tail}`.slice(0, Math.max(10, columns - 1));
    const fraction = Math.min(1, bytes / total);
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    const barWidth = Math.max(10, Math.min(40, columns - 1 - this.options.label.length - tail.length - percent.length - 4));
    const filled = Math.round(fraction * barWidth);
    const line = `${this.options.label} [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${percent}${tail}`;
    return line.length >= columns ? line.slice(0, Math.max(10, columns - 1)) : line.padEnd(columns - 1);
  }

  /** Stops the timer, ends the bar's line, and logs the totals. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearInterval(this.timer);
    if (this.tty) this.tty.write(`\r${this.renderLine(this.tty.columns ?? 80)}\n`);
    const seconds = (this.now() - this.startedAt) / 1000;
    this.options.logger?.info(
      `${this.options.label}: ${formatBytes(this.bytes)} in ${formatDuration(seconds)}` +
        (seconds > 0 ? ` (${formatBytes(this.bytes / seconds)}/s)` : ''),
    );
  }

  private logInterval(): number {
    return this.options.logIntervalMs ?? 10_000;
  }

  private logLine(fromUpdate: boolean): void {
    if (this.finished || !this.options.logger) return;
    const at = this.now();
    if (!fromUpdate && at - this.lastLogAt < this.logInterval() / 2) return;
    this.lastLogAt = at;
    const { bytes, total, bytesPerSecond, etaSeconds } = this.snapshot();
    const stalled = bytes === this.lastLoggedBytes;
    this.lastLoggedBytes = bytes;
    const percent = total ? ` (${Math.floor((bytes / total) * 100)}%)` : '';
    const amounts = total !== undefined ? `${formatBytes(bytes)} of ${formatBytes(total)}${percent}` : formatBytes(bytes);
    this.options.logger.info(
      `${this.options.label}: ${amounts}, ${stalled ? 'no data received in the last interval' : `${formatBytes(bytesPerSecond)}/s`}` +
        (etaSeconds !== undefined && !stalled ? `, about ${formatDuration(etaSeconds)} left` : ''),
    );
  }
}
