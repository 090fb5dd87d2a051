import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bundleScript } from '../helpers/bundle-script.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const OUTPUT_BYTES = 50 * MiB;
/**
 * RSS growth allowed while 50 MiB of output streams through. Streaming measures ~20 MiB here (allocator
 * and collector slack: the heap after a full GC is the same for 10 and 200 MiB); keeping the output
 * needs more than 50 MiB (~110 MiB measured), so the bound separates the two with room on both sides.
 */
const GROWTH_BOUND = 40 * MiB;

let tmp: { dir: string; cleanup: () => void };
let driver: string;

beforeAll(async () => {
  tmp = makeTempDir('cda-volume-');
  driver = await bundleScript(new URL('./volume-driver.ts', import.meta.url), join(tmp.dir, 'volume-driver.mjs'));
});

afterAll(() => tmp.cleanup());

function measure(name: string, mode: 'stream' | 'accumulate'): { growth: number; logBytes: number } {
  // A small young generation keeps garbage-collector slack out of the measurement.
  const output = execFileSync(process.execPath, ['--max-semi-space-size=1', driver, join(tmp.dir, name), String(OUTPUT_BYTES), mode], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: MiB,
  });
  const result = JSON.parse(output) as { baselineRss: number; peakRss: number; logBytes: number };
  const growth = result.peakRss - result.baselineRss;
  console.log(`${mode}: RSS growth ${(growth / MiB).toFixed(1)} MiB for ${OUTPUT_BYTES / MiB} MiB of output`);
  return { growth, logBytes: result.logBytes };
}

it('streams 50 MiB of output to scripts.log with flat memory', () => {
  const streamed = measure('streamed', 'stream');
  expect(streamed.growth).toBeLessThan(GROWTH_BOUND);
  // Every byte reached the file: the output plus a timestamp prefix per line.
  expect(streamed.logBytes).toBeGreaterThan(OUTPUT_BYTES);
}, 120_000);

it('would catch a runner that keeps the output in memory', () => {
  const accumulated = measure('accumulated', 'accumulate');
  expect(accumulated.growth).toBeGreaterThan(GROWTH_BOUND);
}, 120_000);
