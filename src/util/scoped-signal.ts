/**
 * A signal that follows `parent` only while the work it was made for runs; `release()` unlinks it.
 *
 * The daemon's shutdown signal lives as long as the process. Handing it straight to each command let every
 * S3 download combine it with a short-lived one (`AbortSignal.any`), and Node.js 20 keeps an entry in the
 * long-lived signal for every such combination, never pruned: one more per deployment, for good. A signal
 * per command, unlinked when the command ends, is collected with everything that was combined with it.
 */
export function scopedSignal(parent: AbortSignal): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { signal: controller.signal, release: () => {} };
  }
  const follow = () => controller.abort(parent.reason);
  parent.addEventListener('abort', follow, { once: true });
  return { signal: controller.signal, release: () => parent.removeEventListener('abort', follow) };
}
