import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Unpacking and copying write small files with synchronous calls (see ./file-jobs/run-jobs.ts), which hold
 * the event loop. This hands it back every `intervalMs`, so the agent's poller and heartbeats keep
 * running during a large unpack.
 */
export class LoopYield {
  readonly #intervalMs: number;
  #last = performance.now();

  constructor(intervalMs = 10) {
    this.#intervalMs = intervalMs;
  }

  /** Cheap to call after every entry; waits one turn of the event loop only when the interval has passed. */
  async maybeYield(): Promise<void> {
    if (performance.now() - this.#last < this.#intervalMs) return;
    await nextTurn();
    this.#last = performance.now();
  }
}
