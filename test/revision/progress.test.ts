import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { ProgressTracker } from '../../src/revision/progress.js';

const MiB = 1024 * 1024;

function fakeTty(columns = 100): NodeJS.WriteStream & { output: string[] } {
  const output: string[] = [];
  return { isTTY: true, columns, output, write: (text: string) => output.push(text) > 0 } as unknown as NodeJS.WriteStream & { output: string[] };
}

describe('ProgressTracker', () => {
  afterEach(() => vi.useRealTimers());

  it('reports bytes, rate and ETA for the status file', () => {
    let now = 0;
    const tracker = new ProgressTracker({ label: 'bundle', total: 100 * MiB, now: () => now });
    now = 2000;
    tracker.update(20 * MiB);
    const snapshot = tracker.snapshot();
    expect(snapshot.bytes).toBe(20 * MiB);
    expect(snapshot.total).toBe(100 * MiB);
    expect(snapshot.bytesPerSecond).toBeCloseTo(10 * MiB, -3);
    expect(snapshot.etaSeconds).toBeCloseTo(8, 1);
    tracker.finish();
  });

  it('follows the recent rate, and drops to zero when bytes stop', () => {
    let now = 0;
    const tracker = new ProgressTracker({ label: 'bundle', total: 1000 * MiB, now: () => now, rateWindowMs: 5000 });
    // 10 s at 1 MiB/s, then 10 s at 10 MiB/s.
    let bytes = 0;
    for (let second = 1; second <= 20; second++) {
      now = second * 1000;
      bytes += (second <= 10 ? 1 : 10) * MiB;
      tracker.update(bytes);
    }
    expect(tracker.snapshot().bytesPerSecond).toBeCloseTo(10 * MiB, -3);
    now = 40_000;
    expect(tracker.snapshot().bytesPerSecond).toBe(0);
    expect(tracker.snapshot().etaSeconds).toBeUndefined();
    tracker.finish();
  });

  it('has no total or ETA when the size is unknown', () => {
    let now = 0;
    const tracker = new ProgressTracker({ label: 'github', now: () => now });
    now = 1000;
    tracker.onProgress({ bytes: 5 * MiB });
    expect(tracker.snapshot()).toEqual({ bytes: 5 * MiB, bytesPerSecond: 5 * MiB });
    expect(tracker.renderLine(80)).toMatch(/^github 5\.0 MiB 5\.0 MiB\/s/);
    tracker.finish();
  });

  it('writes a log line every interval while bytes arrive', () => {
    let now = 0;
    const logger = new MemoryLogger();
    const tracker = new ProgressTracker({ label: 's3://b/k', total: 10 * MiB, logger, logIntervalMs: 1000, now: () => now });
    for (let step = 1; step <= 40; step++) {
      now = step * 100;
      tracker.update(step * 256 * 1024);
    }
    const lines = logger.lines.map((l) => l.message);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe('s3://b/k: 2.5 MiB of 10.0 MiB (25%), 2.5 MiB/s, about 3.0s left');
    tracker.finish();
    expect(logger.lines.at(-1)?.message).toBe('s3://b/k: 10.0 MiB in 4.0s (2.5 MiB/s)');
  });

  it('logs on a timer too, so a stalled download shows up', () => {
    vi.useFakeTimers();
    const logger = new MemoryLogger();
    const tracker = new ProgressTracker({ label: 'bundle', total: 10 * MiB, logger, logIntervalMs: 1000 });
    tracker.update(MiB);
    vi.advanceTimersByTime(1000);
    vi.advanceTimersByTime(1000);
    expect(logger.lines.map((l) => l.message)).toEqual([
      expect.stringMatching(/^bundle: 1\.0 MiB of 10\.0 MiB \(10%\), /),
      'bundle: 1.0 MiB of 10.0 MiB (10%), no data received in the last interval',
    ]);
    tracker.finish();
    vi.advanceTimersByTime(5000);
    expect(logger.lines).toHaveLength(3);
  });

  it('draws a bar on a terminal, throttled, and ends the line when finished', () => {
    let now = 0;
    const tty = fakeTty(100);
    const tracker = new ProgressTracker({ label: 'Downloading bundle', total: 100 * MiB, tty, now: () => now });
    now = 1000;
    tracker.update(50 * MiB);
    now = 1010;
    tracker.update(51 * MiB); // within the redraw interval: not drawn
    expect(tty.output).toHaveLength(1);
    expect(tty.output[0]).toMatch(/^\rDownloading bundle \[#+\.+\]  50% 50\.0 MiB \/ 100\.0 MiB 50\.0 MiB\/s ETA 1\.0s/);
    expect(tty.output[0].length).toBeLessThanOrEqual(100);
    now = 2000;
    tracker.update(100 * MiB);
    tracker.finish();
    expect(tty.output.at(-1)).toMatch(/\[#{10,}\] 100% .*\n$/);
  });

  it('stays quiet on something that is not a terminal', () => {
    const notTty = { ...fakeTty(), isTTY: false } as unknown as NodeJS.WriteStream & { output: string[] };
    const tracker = new ProgressTracker({ label: 'bundle', total: 10, tty: notTty });
    tracker.update(5);
    tracker.finish();
    expect(notTty.output).toHaveLength(0);
  });
});

describe('the terminal bar', () => {
  it('keeps the figures when the label is long, and treats an unknown width (0 columns) as 80', () => {
    let now = 0;
    const label = `GitHub octo/webapp@${'c0ffee1234567890abcdef1234567890abcdef12'}`;
    const tracker = new ProgressTracker({ label, total: 100 * MiB, now: () => now });
    now = 1000;
    tracker.update(25 * MiB);
    for (const columns of [0, 80, 70]) {
      const line = tracker.renderLine(columns);
      expect(line.length).toBeLessThanOrEqual((columns || 80) - 1);
      expect(line).toMatch(/^GitHu.*….*ef12 \[#+\.+\]  25% 25\.0 MiB \/ 100\.0 MiB 25\.0 MiB\/s ETA 3\.0s/);
    }
    // Narrower still: the bar goes, the figures stay.
    expect(tracker.renderLine(60)).toMatch(/^GitHu.*….*  25% 25\.0 MiB \/ 100\.0 MiB 25\.0 MiB\/s ETA 3\.0s$/);
    expect(tracker.renderLine(60)).not.toContain('[');
    expect(tracker.renderLine(200)).toContain(label);
    tracker.finish();
  });
});
