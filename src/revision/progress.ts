/**
 * Download progress for the three audiences: a one-line bar on a terminal (`deploy`), a line in the agent
 * log every few seconds (so a slow DownloadBundle is visible while it happens, users-and-peers theme 15),
 * and current figures for the status file.
 */
import type { Revision } from '../deployment/spec-types.js';
import type { Logger } from '../log/logger.js';
import { formatBytes } from '../util/byte-size.js';
import { formatDuration } from '../util/duration.js';

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
  /** Log the totals at `finish()` (default true); off when the downloader logs its own summary. */
  summary?: boolean;
  /** Tests. */
  now?: () => number;
}

/** How a revision is named in progress lines: `s3://bucket/key`, `GitHub owner/repo@commit`, or the local path. */
export function revisionLabel(revision: Revision): string {
  switch (revision.type) {
    case 'S3':
      return `s3://${revision.bucket}/${revision.key}`;
    case 'GitHub':
      // A full SHA is 40 characters; 12 identify it as well as git's own short form.
      return `GitHub ${revision.account}/${revision.repository}@${/^[0-9a-f]{40}$/i.test(revision.commitId) ? revision.commitId.slice(0, 12) : revision.commitId}`;
    default:
      return revision.location;
  }
}

/** `12.0 MiB in 3.2s (3.8 MiB/s)`: what a finished transfer moved and how fast. */
export function transferSummary(bytes: number, seconds: number): string {
  return `${formatBytes(bytes)} in ${formatDuration(seconds, 'fine')}${seconds > 0 ? ` (${formatBytes(bytes / seconds)}/s)` : ''}`;
}

/** `text` in at most `max` characters, cut in the middle (the end of a key or a commit says most). */
function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 1) return '';
  const keepEnd = Math.ceil((max - 1) / 2);
  return `${text.slice(0, max - 1 - keepEnd)}…${text.slice(text.length - keepEnd)}`;
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
      this.tty.write(`\r${this.renderLine(this.tty.columns)}`);
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

  /**
   * The bar as drawn on a terminal, fitted to `columns`. The figures always show; the label is shortened
   * (from the middle) and the bar narrowed before they would be cut off.
   */
  renderLine(columns = 80): string {
    const width = columns > 0 ? columns : 80;
    const room = Math.max(20, width - 1);
    const { bytes, total, bytesPerSecond, etaSeconds } = this.snapshot();
    const amounts = total !== undefined ? `${formatBytes(bytes)} / ${formatBytes(total)}` : formatBytes(bytes);
    const tail = ` ${amounts} ${formatBytes(bytesPerSecond)}/s${etaSeconds !== undefined ? ` ETA ${formatDuration(etaSeconds, 'fine')}` : ''}`;
    if (total === undefined || total === 0) return `${shorten(this.options.label, room - tail.length)}${tail}`.slice(0, room);
    const fraction = Math.min(1, bytes / total);
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    // `<label> [<bar>] <percent><tail>`; on a narrow terminal the bar gives way before the label's first
    // dozen characters do, and goes altogether when even that does not fit.
    const fixed = 4 + percent.length + tail.length;
    const minLabel = Math.min(this.options.label.length, 12);
    let barWidth = Math.max(10, Math.min(40, room - fixed - this.options.label.length));
    if (room - fixed - barWidth < minLabel) barWidth = Math.max(0, room - fixed - minLabel);
    if (barWidth < 5) barWidth = 0;
    const label = shorten(this.options.label, room - fixed - barWidth + (barWidth === 0 ? 3 : 0));
    const filled = Math.round(fraction * barWidth);
    const bar = barWidth > 0 ? ` [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]` : '';
    const line = `${label}${bar} ${percent}${tail}`;
    return line.length > room ? line.slice(0, room) : line.padEnd(room);
  }

  /** Stops the timer, ends the bar's line, and logs the totals. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearInterval(this.timer);
    if (this.tty) this.tty.write(`\r${this.renderLine(this.tty.columns)}\n`);
    if (this.options.summary === false) return;
    const seconds = (this.now() - this.startedAt) / 1000;
    this.options.logger?.info(
      `${this.options.label}: ${transferSummary(this.bytes, seconds)}`,
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
        (etaSeconds !== undefined && !stalled ? `, about ${formatDuration(etaSeconds, 'fine')} left` : ''),
    );
  }
}
