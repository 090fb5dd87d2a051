import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyDirectoryBundle } from '../../src/archive/copy-directory.js';
import { unpackBundle } from '../../src/archive/unpack.js';
import { ArchiveError } from '../../src/report/errors.js';
import { makeTempDir } from '../helpers/tmp.js';
import { rawTar } from './helpers/raw-tar.js';
import { rawZip } from './helpers/raw-zip.js';

/** A full disk, for real: a 256 KiB tmpfs. Needs root and mount(2); skipped where either is missing. */

const DISK_FULL = 'The disk is (or was) full during extraction.';

let dir: string;
let cleanup: () => void;
let tiny: string;
let mounted = false;
beforeAll(() => {
  ({ dir, cleanup } = makeTempDir('cda-disk-full-'));
  tiny = join(dir, 'tiny');
  mkdirSync(tiny);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', tiny], { stdio: 'ignore' });
    mounted = true;
  } catch {
    mounted = false;
  }
});
afterAll(() => {
  if (mounted) execFileSync('umount', [tiny]);
  cleanup();
});

describe('a full disk', () => {
  const bigFile = { name: 'big.bin', data: Buffer.alloc(1024 * 1024, 1) };
  const manySmall = Array.from({ length: 200 }, (_, i) => ({ name: `small/${i}`, data: Buffer.alloc(4096, 2) }));

  const cases: [string, 'tar' | 'zip', Buffer][] = [
    ['a tar with one large file (streamed)', 'tar', rawTar([bigFile])],
    ['a tar with many small files', 'tar', rawTar(manySmall)],
    ['a zip', 'zip', rawZip([{ ...bigFile, deflate: true }])],
  ];
  for (const [name, bundleType, bundle] of cases) {
    it(`stops ${name} with AWS's message and removes the destination`, async (context) => {
      if (!mounted) context.skip();
      const bundlePath = join(dir, `bundle-${bundleType}`);
      writeFileSync(bundlePath, bundle);
      const dest = join(tiny, 'deployment-archive');
      const failure = unpackBundle(bundlePath, bundleType, dest);
      await expect(failure).rejects.toBeInstanceOf(ArchiveError);
      await expect(failure).rejects.toThrow(DISK_FULL);
      expect(existsSync(dest)).toBe(false);
    });
  }

  it('stops a directory copy with the same message', async (context) => {
    if (!mounted) context.skip();
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'big.bin'), Buffer.alloc(1024 * 1024, 1));
    const dest = join(tiny, 'deployment-archive');
    await expect(copyDirectoryBundle(src, dest)).rejects.toThrow(DISK_FULL);
    expect(existsSync(dest)).toBe(false);
  });
});
