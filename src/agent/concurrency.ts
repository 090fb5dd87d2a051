/**
 * Two small coordination tools of the poll loop: a counting slot pool (commands of different groups run
 * in parallel, up to a bound) and a per-key mutex (commands of one deployment group never overlap).
 */
export class SlotPool {
  private used = 0;
  private waiters: (() => void)[] = [];
  constructor(private readonly size: number) {}

  get inUse(): number {
    return this.used;
  }

  hasFree(): boolean {
    return this.used < this.size;
  }

  /** Resolves once a slot is free (does not take it). */
  async waitForFree(signal?: AbortSignal): Promise<void> {
    while (!this.hasFree()) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal?.removeEventListener('abort', done);
          resolve();
        };
        this.waiters.push(done);
        signal?.addEventListener('abort', done, { once: true });
      });
      if (signal?.aborted) return;
    }
  }

  take(): () => void {
    this.used++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used--;
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    };
  }
}

export class KeyedMutex {
  private tails = new Map<string, Promise<void>>();

  /** Waits for earlier holders of `key`, then returns the release function. */
  async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous;
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }
}
