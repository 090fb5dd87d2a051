import { describe, expect, it, vi } from 'vitest';
import { backoffDelay, isAbortError, retry, sleep } from '../../src/util/retry.js';
import { ThrottleGate } from '../../src/util/throttle-gate.js';

describe('backoffDelay', () => {
  it('doubles from the base up to the cap without jitter', () => {
    const delays = [0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, { baseMs: 100, capMs: 1000, jitter: 'none' }));
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('full jitter spans [0, d] and equal jitter [d/2, d]', () => {
    expect(backoffDelay(2, { baseMs: 100, capMs: 10_000, jitter: 'full', random: () => 0 })).toBe(0);
    expect(backoffDelay(2, { baseMs: 100, capMs: 10_000, jitter: 'full', random: () => 0.999999 })).toBe(400);
    expect(backoffDelay(2, { baseMs: 100, capMs: 10_000, jitter: 'equal', random: () => 0 })).toBe(200);
    expect(backoffDelay(2, { baseMs: 100, capMs: 10_000, jitter: 'equal', random: () => 0.999999 })).toBe(400);
  });

  it('never exceeds the cap, even for huge attempt numbers', () => {
    for (const attempt of [10, 100, 10_000]) {
      expect(backoffDelay(attempt, { baseMs: 300, capMs: 20_000, jitter: 'full' })).toBeLessThanOrEqual(20_000);
    }
  });
});

describe('retry', () => {
  it('retries retryable failures and returns the first success', async () => {
    const onRetry = vi.fn();
    let calls = 0;
    const result = await retry(async (attempt) => {
      calls++;
      if (attempt < 2) throw new Error(`fail ${attempt}`);
      return 'ok';
    }, { attempts: 5, baseMs: 1, capMs: 2, onRetry });
    expect(result).toBe('ok');
    expect(calls).toBe(3);
    expect(onRetry).toHaveBeenCalledTimes(2);
  });

  it('stops at the attempt limit and rethrows the last error unchanged', async () => {
    const errors = [new Error('a'), new Error('b'), new Error('c')];
    let i = 0;
    await expect(retry(async () => { throw errors[i++]; }, { attempts: 3, baseMs: 1, capMs: 1 })).rejects.toBe(errors[2]);
    expect(i).toBe(3);
  });

  it('does not retry what isRetryable refuses', async () => {
    let calls = 0;
    await expect(retry(async () => { calls++; throw new Error('fatal'); }, {
      attempts: 5, baseMs: 1, capMs: 1, isRetryable: (e) => (e as Error).message !== 'fatal',
    })).rejects.toThrow('fatal');
    expect(calls).toBe(1);
  });

  it('an abort during the wait ends the loop with an AbortError', async () => {
    const controller = new AbortController();
    const promise = retry(async () => { throw new Error('x'); }, {
      attempts: 10, baseMs: 10_000, capMs: 10_000, jitter: 'none', signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 20);
    const error = await promise.catch((e: unknown) => e);
    expect(isAbortError(error)).toBe(true);
  });

  it('uses delayFor when it returns a number', async () => {
    const delays: number[] = [];
    await retry(async (a) => { if (a < 2) throw new Error('x'); }, {
      attempts: 3, baseMs: 10_000, capMs: 10_000, delayFor: () => 1, onRetry: (_e, _a, d) => delays.push(d),
    });
    expect(delays).toEqual([1, 1]);
  });

  it('sleep rejects at once on an already aborted signal', async () => {
    await expect(sleep(10, AbortSignal.abort())).rejects.toSatisfy(isAbortError);
  });
});

describe('ThrottleGate', () => {
  it('closes once for a burst, holds waiters until it opens, and opens again', async () => {
    let now = 1_000;
    const windows = [500, 900];
    const gate = new ThrottleGate(() => windows.shift() ?? 0, () => now);
    expect(gate.isClosed()).toBe(false);
    expect(gate.close()).toBe(500);
    now += 100;
    // A second throttle inside the window does not stretch it.
    expect(gate.close()).toBe(400);
    expect(gate.isClosed()).toBe(true);
    now += 400;
    expect(gate.isClosed()).toBe(false);
    await gate.wait();
    expect(gate.close()).toBe(900);
  });

  it('an abort ends the wait', async () => {
    const gate = new ThrottleGate(() => 60_000);
    gate.close();
    const controller = new AbortController();
    const waiting = gate.wait(controller.signal);
    controller.abort();
    await expect(waiting).rejects.toThrow();
  });
});
