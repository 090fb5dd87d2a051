import { execFile } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleScript } from '../helpers/bundle-script.js';
import { makeTempDir } from '../helpers/tmp.js';
import { tarHeader } from './helpers/raw-tar.js';

/**
 * Memory must stay flat whatever the entry size: a 1 GiB entry is unpacked in a child process and
 * its peak RSS (VmHWM) compared with the same child unpacking a 1 KiB entry. The tar is sparse
 * (a header, then a hole), so making it costs neither time nor disk.
 */

const GIB = 1024 * 1024 * 1024;
/**
 * Measured on Node 20: the 1 KiB unpack peaks at ~46 MB, 1 GiB at ~90 MB and 4 GiB at ~92 MB; the
 * difference is spent 1 MiB read buffers waiting for the garbage collector, not the entry; on a
 * loaded machine the collector runs later and the 1 GiB peak reached 111 MB. Holding the entry would
 * cost a gigabyte, so 128 MiB still catches it by a factor of eight.
 */
const ALLOWED_GROWTH_KB = 128 * 1024;

const run = promisify(execFile);
const hasProcStatus = existsSync('/proc/self/status');

let dir: string;
let cleanup: () => void;
let bundled: string;
beforeAll(async () => {
  ({ dir, cleanup } = makeTempDir('cda-memory-'));
  // The child runs plain Node, so it gets the unpacker as one self-contained CommonJS file.
  bundled = join(dir, 'unpack.cjs');
  await bundleScript(new URL('../../src/archive/unpack.ts', import.meta.url), bundled, 'cjs');
});
afterAll(() => cleanup?.());

function writeSparseTar(path: string, size: number): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, tarHeader({ name: 'big.bin', mode: 0o644 }, size));
    // Content and the two end blocks are all zeros: leave them as a hole.
    ftruncateSync(fd, 512 + Math.ceil(size / 512) * 512 + 1024);
  } finally {
    closeSync(fd);
  }
}

async function unpackInChild(bundle: string, dest: string): Promise<{ bytes: number; peakKb: number }> {
  const script = `
    const { unpackBundle } = require(${JSON.stringify(bundled)});
    unpackBundle(${JSON.stringify(bundle)}, 'tar', ${JSON.stringify(dest)}).then((result) => {
      const peakKb = Number(/VmHWM:\\s+(\\d+) kB/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]);
      console.log(JSON.stringify({ bytes: result.bytes, peakKb }));
    });`;
  const { stdout } = await run(process.execPath, ['-e', script], { timeout: 60_000 });
  return JSON.parse(stdout) as { bytes: number; peakKb: number };
}

describe.runIf(hasProcStatus)('unpackBundle memory', () => {
  it('stays flat for a 1 GiB entry', async () => {
    const small = join(dir, 'small.tar');
    const big = join(dir, 'big.tar');
    writeSparseTar(small, 1024);
    writeSparseTar(big, GIB);

    const baseline = await unpackInChild(small, join(dir, 'small-out'));
    const started = performance.now();
    const large = await unpackInChild(big, join(dir, 'big-out'));
    const seconds = (performance.now() - started) / 1000;

    expect(large.bytes).toBe(GIB);
    expect(statSync(join(dir, 'big-out', 'big.bin')).size).toBe(GIB);
    console.info(`1 GiB entry: peak RSS ${Math.round(large.peakKb / 1024)} MB (1 KiB entry: ${Math.round(baseline.peakKb / 1024)} MB), ${seconds.toFixed(1)} s`);
    expect(large.peakKb - baseline.peakKb).toBeLessThan(ALLOWED_GROWTH_KB);
  }, 90_000);
});
