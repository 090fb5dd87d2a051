import { readFileSync } from 'node:fs';
import { readProcessStat } from './process-identity.js';

/**
 * When the process started, from /proc (clock ticks since boot + boot time): with the pid, it tells a
 * live process from a later one that reuses its number. Assumes USER_HZ = 100, which Linux has used on
 * every architecture for years.
 */
export function processStartTime(pid: number): Date | undefined {
  try {
    const startTicks = Number(readProcessStat(pid)?.start);
    const btimeLine = readFileSync('/proc/stat', 'utf8').split('\n').find((line) => line.startsWith('btime '));
    if (!btimeLine || !Number.isFinite(startTicks)) return undefined;
    const bootSeconds = Number(btimeLine.slice(6));
    return new Date((bootSeconds + startTicks / 100) * 1000);
  } catch {
    return undefined;
  }
}
