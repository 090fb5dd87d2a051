import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { scopedSignal } from '../../src/util/scoped-signal.js';

describe('scopedSignal', () => {
  it('aborts with the parent while linked, with the same reason', () => {
    const parent = new AbortController();
    const scope = scopedSignal(parent.signal);
    expect(scope.signal.aborted).toBe(false);
    parent.abort(new Error('stopping'));
    expect(scope.signal.aborted).toBe(true);
    expect((scope.signal.reason as Error).message).toBe('stopping');
  });

  it('leaves nothing on the parent once released, however many scopes came and went', () => {
    const parent = new AbortController();
    for (let i = 0; i < 1000; i++) {
      const scope = scopedSignal(parent.signal);
      // What the S3 download does with the signal it is given.
      AbortSignal.any([scope.signal, new AbortController().signal]).addEventListener('abort', () => {});
      scope.release();
    }
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
    const kept = Object.getOwnPropertySymbols(parent.signal).find((symbol) => symbol.description === 'kDependantSignals');
    expect(kept === undefined ? 0 : (parent.signal as unknown as Record<symbol, Set<unknown> | undefined>)[kept]?.size ?? 0).toBe(0);
  });

  it('a released scope no longer follows the parent', () => {
    const parent = new AbortController();
    const scope = scopedSignal(parent.signal);
    scope.release();
    parent.abort();
    expect(scope.signal.aborted).toBe(false);
  });

  it('starts aborted under an aborted parent', () => {
    const parent = new AbortController();
    parent.abort('gone');
    const scope = scopedSignal(parent.signal);
    expect(scope.signal.aborted).toBe(true);
    expect(scope.signal.reason).toBe('gone');
    scope.release();
  });
});
