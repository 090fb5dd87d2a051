import { localTimestamp } from '../util/local-time.js';

/**
 * One log line, for the agent's log and `deploy`'s codedeploy-local.log alike: AWS's agent's layout
 * `%d %-5l [%c(%p)]: %m` in local time, or one JSON object a line for log shippers.
 */
export function formatTextLine(date: Date, level: string, program: string, pid: number, message: string): string {
  return `${localTimestamp(date)} ${level.toUpperCase().padEnd(5)} [${program}(${pid})]: ${message}`;
}

export function formatJsonLine(date: Date, level: string, program: string, pid: number, message: string): string {
  return JSON.stringify({ time: date.toISOString(), level, program, pid, message });
}
