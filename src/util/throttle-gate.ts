import { sleep } from './retry.js';

/**
 * One gate for every call to a service that throttles us (issue 4; aws/amazon-ssm-agent #151 shows a fleet throttled this way): once any caller
 * is told to slow down — the poll loop or a command's acknowledgement or completion — nobody sends again
 * until a jittered wait is over, so a host does not answer a throttle with a burst of other requests and
 * a fleet throttled together does not come back in step.
 */
export class ThrottleGate {
  private openAt = 0;

  /** `windowMs` gives the length of each closing (called each time, so it can jitter and follow the config). */
  constructor(
    private readonly windowMs: () => number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Closes the gate for one window, unless it is already closed (a burst of throttles closes it once). */
  close(): number {
    const now = this.now();
    if (this.openAt <= now) this.openAt = now + Math.max(0, this.windowMs());
    return this.openAt - now;
  }

  isClosed(): boolean {
    return this.openAt > this.now();
  }

  /** Resolves once the gate is open; rejects with the abort reason if `signal` aborts first. */
  async wait(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const wait = this.openAt - this.now();
      if (wait <= 0) return;
      await sleep(wait, signal);
    }
  }
}
