/**
 * Durations for people, in one format wherever the agent prints one (logs, the download bar, `deploy`,
 * `status`, `stop`): `850ms`, `3.2s`, `42s`, `3m 05s`, `1h 02m`, `2d 4h`.
 *
 * `fine` keeps what matters below ten seconds (an event that took 850 ms, a 0.4 s retry delay); the
 * default counts whole seconds, as `status` does for uptimes and ages.
 */
export type DurationPrecision = 'whole' | 'fine';

const pad = (value: number) => String(value).padStart(2, '0');

export function formatDuration(seconds: number | undefined, precision: DurationPrecision = 'whole'): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '?';
  if (precision === 'fine' && seconds < 10) {
    const ms = Math.round(seconds * 1000);
    if (ms < 1000) return `${ms}ms`;
    return `${(ms / 1000).toFixed(1)}s`;
  }
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** A delay or elapsed time given in milliseconds, at `fine` precision. */
export function formatMs(ms: number): string {
  return formatDuration(ms / 1000, 'fine');
}
