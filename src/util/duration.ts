/** `1h 02m`, `3m 05s`, `42s`, `2d 4h`: how `status`, `stop`, `start` and /healthz say how long something took. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
