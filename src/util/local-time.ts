/**
 * Timestamps in the host's local time, as AWS's agent writes its logs (operators compare them with
 * journald and their own clocks): `2024-10-09T22:54:00` in the agent log, `2024-10-09 22:54:00` in
 * scripts.log, `.123` added in the deployments log, `20241009` in a rotated file's name.
 */
const pad = (value: number, width = 2) => String(value).padStart(width, '0');

/** `2024-10-09` (or `20241009` with an empty separator). */
export function localDate(date: Date, separator = '-'): string {
  return `${date.getFullYear()}${separator}${pad(date.getMonth() + 1)}${separator}${pad(date.getDate())}`;
}

/** `2024-10-09T22:54:00`; `separator` goes between the date and the time. */
export function localTimestamp(date: Date, separator = 'T'): string {
  return `${localDate(date)}${separator}${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** `2024-10-09 22:54:00.123`. */
export function localTimestampMs(date: Date): string {
  return `${localTimestamp(date, ' ')}.${pad(date.getMilliseconds(), 3)}`;
}
