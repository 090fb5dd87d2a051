/**
 * Exponential backoff with jitter and a retry loop, shared by the poller, the commands client, IMDS, S3
 * and GitHub. Every retry has a cap and jitter (the project's rule), so a fleet recovering from the same outage
 * does not come back in lockstep.
 */

export type Jitter = 'full' | 'equal' | 'none';

export interface BackoffOptions {
  /** Delay of the first retry before jitter, in milliseconds. */
  baseMs: number;
  /** No delay exceeds this, in milliseconds. */
  capMs: number;
  /**
   * `full`: uniform in [0, d]; `equal`: d/2 + uniform in [0, d/2]; `none`: d. (AWS architecture blog,
   * "Exponential Backoff And Jitter".) Default `full`.
   */
  jitter?: Jitter;
  /** Injectable for tests; returns a number in [0, 1). */
  random?: () => number;
}

/** Delay before retry number `attempt` (0 = the first retry): min(cap, base × 2^attempt) with jitter. */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const { baseMs, capMs, jitter = 'full', random = Math.random } = options;
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 52);
  const ceiling = Math.max(0, Math.min(capMs, baseMs * 2 ** exponent));
  switch (jitter) {
    case 'none':
      return ceiling;
    case 'equal':
      return Math.round(ceiling / 2 + random() * (ceiling / 2));
    case 'full':
      return Math.round(random() * ceiling);
  }
}

/** The error a sleep or a retry loop rejects with when its signal aborts (the signal's reason if it has one). */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error(typeof reason === 'string' ? reason : 'The operation was aborted');
  error.name = 'AbortError';
  return error;
}

export function isAbortError(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || (error as { code?: string }).code === 'ABORT_ERR');
}

/** Resolves after `ms`, or rejects with the abort error as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryOptions extends BackoffOptions {
  /** Total tries, including the first (1 = no retry). */
  attempts: number;
  /** Whether a failure is worth another try; default: every error except an abort. */
  isRetryable?: (error: unknown, attempt: number) => boolean;
  /** Stops waiting and retrying; the current try is the caller's to cancel (pass the signal into `fn`). */
  signal?: AbortSignal;
  /** Called before each wait, e.g. to log `retrying in 300 ms`. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** Overrides the computed delay for one failure (e.g. a Retry-After header); undefined = computed. */
  delayFor?: (error: unknown, attempt: number) => number | undefined;
}

/**
 * Runs `fn` until it succeeds, a failure is not retryable, or `attempts` tries are used up; the last
 * error is rethrown unchanged so callers can still classify it.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const attempts = Math.max(1, Math.floor(options.attempts));
  const isRetryable = options.isRetryable ?? ((error: unknown) => !isAbortError(error));
  for (let attempt = 0; ; attempt++) {
    if (options.signal?.aborted) throw abortError(options.signal);
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt + 1 >= attempts || options.signal?.aborted || isAbortError(error) || !isRetryable(error, attempt)) {
        throw error;
      }
      const delayMs = options.delayFor?.(error, attempt) ?? backoffDelay(attempt, options);
      options.onRetry?.(error, attempt, delayMs);
      await sleep(delayMs, options.signal);
    }
  }
}
