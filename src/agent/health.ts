import { formatDuration } from '../util/duration.js';
import type { StatusSnapshot } from './status-snapshot.js';

/**
 * Whether the daemon is healthy: the one judgement behind `/healthz` (from the daemon's own snapshot) and
 * `status --json` (from the status file the daemon writes), so the two always agree.
 *
 * Unhealthy: the agent is stopping; or the service refused the host's credentials on the newest poll
 * (nothing will work until someone fixes them, so this does not wait for the threshold); or polls have
 * kept failing (errors, throttling, no identity) for longer than `health_poll_failure_seconds`. A poll
 * that fails now and then, or a start-up that has not polled yet, is healthy: the agent retries on its own.
 */
export interface HealthVerdict {
  healthy: boolean;
  /** One line: why, for the 503 body, `status` and the metrics log. */
  reason: string;
}

type HealthFields = Pick<StatusSnapshot, 'state' | 'lastSuccessfulPollAt' | 'lastError' | 'pollFailingSince' | 'credentialsRefused'>;

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 500 ? `${line.slice(0, 500)}…` : line;
}

function secondsSince(at: string | undefined, now: Date): number | undefined {
  if (!at) return undefined;
  const time = Date.parse(at);
  return Number.isNaN(time) ? undefined : Math.max(0, (now.getTime() - time) / 1000);
}

export function judgeHealth(snapshot: HealthFields, thresholdSeconds: number, now: Date = new Date()): HealthVerdict {
  if (snapshot.state === 'stopping') return { healthy: false, reason: 'the agent is stopping' };
  if (snapshot.credentialsRefused) {
    return { healthy: false, reason: `the commands service refused this host's credentials: ${oneLine(snapshot.credentialsRefused.message)}` };
  }
  const failingFor = secondsSince(snapshot.pollFailingSince, now);
  const lastError = snapshot.lastError ? oneLine(snapshot.lastError.message) : 'no answer';
  if (failingFor !== undefined && failingFor > thresholdSeconds) {
    return { healthy: false, reason: `polls have failed for ${formatDuration(failingFor)} (more than ${formatDuration(thresholdSeconds)}): ${lastError}` };
  }
  if (failingFor !== undefined) {
    return { healthy: true, reason: `polls failing for ${formatDuration(failingFor)} (unhealthy after ${formatDuration(thresholdSeconds)}): ${lastError}` };
  }
  const sincePoll = secondsSince(snapshot.lastSuccessfulPollAt, now);
  if (sincePoll === undefined) return { healthy: true, reason: 'starting: no poll has finished yet' };
  return { healthy: true, reason: `polling; last successful poll ${formatDuration(sincePoll)} ago` };
}
