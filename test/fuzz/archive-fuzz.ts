import { accessSync, chmodSync, constants, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { expect } from 'vitest';
import { stripTempDirFor } from '../../src/archive/strip-top-directory.js';
import { unpackBundle, type ArchiveBundleType } from '../../src/archive/unpack.js';
import { ArchiveError } from '../../src/report/errors.js';
import { makeTempDir } from '../helpers/tmp.js';
import { MemoryWatch, settleOrTypedError } from './fuzz.js';

/**
 * What the tar and zip fuzzers share: a small revision to pack with real tools, and the property of
 * one unpack. Whatever the bundle, unpackBundle ends with success or an ArchiveError (no TypeError or
 * RangeError inside it); nothing appears or changes outside the destination; after a failure the
 * destination is gone; after a success every symlink in it resolves inside it; and memory stays flat
 * whatever sizes the headers claim.
 */

/** Above the entry writer's whole-read limit (256 KiB), so the streamed path is fuzzed too. */
const STREAMED_FILE_SIZE = 300 * 1024;
/** More than any honest case needs; a header claiming gigabytes must not get near it. */
const MEMORY_LIMIT = 192 * 1024 * 1024;

/**
 * The folder the cases run in: a tmpfs when the machine has one, where a case's writes and removal
 * cost a few milliseconds instead of tens on a loaded disk (three times the cases in the same budget).
 */
export function caseRoot(prefix: string): { dir: string; cleanup: () => void } {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return makeTempDir(prefix, '/dev/shm');
  } catch {
    return makeTempDir(prefix, process.env.CDA_TEST_RUN_DIR);
  }
}

/** Files, folders, a long name, symlinks in and out of folders, a hard link, odd modes and names. */
export function makeFuzzTree(root: string): void {
  const long = `${'long-directory-name-'.repeat(4)}/${'a-file-with-a-name-longer-than-a-hundred-bytes-'.repeat(3)}.txt`;
  const files: [string, string | Buffer, number][] = [
    ['appspec.yml', 'version: 0.0\nos: linux\n', 0o644],
    ['scripts/start.sh', '#!/bin/sh\necho start\n', 0o755],
    ['secret/key.pem', 'not a key\n', 0o600],
    ['bin/tool', '#!/bin/sh\n', 0o4755],
    ['ünïcødé/日本語.txt', 'unicode\n', 0o640],
    [long, 'long\n', 0o644],
    ['big.bin', Buffer.alloc(STREAMED_FILE_SIZE, 0x5a), 0o644],
    ['empty.txt', '', 0o444],
  ];
  for (const [path, data, mode] of files) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), data);
    chmodSync(join(root, path), mode);
  }
  mkdirSync(join(root, 'empty-dir'));
  mkdirSync(join(root, 'links'));
  symlinkSync('../scripts/start.sh', join(root, 'links/to-start'));
  symlinkSync('../scripts', join(root, 'links/to-dir'));
  symlinkSync('missing', join(root, 'links/dangling'));
  linkSync(join(root, 'appspec.yml'), join(root, 'hardlink.yml'));
}

function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(`${root}/`);
}

/** Every path under `dest` without following symlinks; each symlink's target, read lexically from its folder, stays inside. */
function expectContained(dest: string): void {
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const stats = lstatSync(path);
      if (stats.isSymbolicLink()) {
        const target = readlinkSync(path);
        expect(target.startsWith('/'), `${path} -> ${target}`).toBe(false);
        // Lexically, and through the archive's other links: resolve() with each component checked.
        expect(isInside(dest, resolveInside(dest, dirname(path), target)), `${path} -> ${target}`).toBe(true);
      } else if (stats.isDirectory()) {
        walk(path);
      } else {
        expect(stats.isFile(), `${path} is a special file`).toBe(true);
      }
    }
  };
  walk(dest);
}

/** Resolves `target` from `from` the way the kernel would, following symlinks that are inside `root` (bounded). */
function resolveInside(root: string, from: string, target: string, hops = 0): string {
  let current = from;
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    current = part === '..' ? dirname(current) : join(current, part);
    if (!isInside(root, current)) return current;
    let stats;
    try {
      stats = lstatSync(current);
    } catch {
      continue;
    }
    if (stats.isSymbolicLink() && hops < 40) {
      current = resolveInside(root, dirname(current), readlinkSync(current), hops + 1);
      if (!isInside(root, current)) return current;
    }
  }
  return resolve(current);
}

/** A folder per case under `base`: the bundle, the destination, and a sentinel folder beside them. */
export async function unpackCase(base: string, caseNumber: number, bundle: Buffer, bundleType: ArchiveBundleType): Promise<void> {
  const dir = join(base, `case-${caseNumber}`);
  mkdirSync(dir);
  try {
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep.txt'), 'original');
    const bundlePath = join(dir, 'bundle');
    writeFileSync(bundlePath, bundle);
    const dest = join(dir, 'deployment-archive');

    const watch = new MemoryWatch();
    let result: Awaited<ReturnType<typeof unpackBundle>> | undefined;
    try {
      result = await settleOrTypedError(() => unpackBundle(bundlePath, bundleType, dest), [ArchiveError]);
    } finally {
      watch.stop(MEMORY_LIMIT);
    }

    // Nothing new beside the destination, the sentinel untouched, no temporary sibling left.
    expect(readdirSync(dir).sort()).toEqual(result ? ['bundle', 'deployment-archive', 'outside'] : ['bundle', 'outside']);
    expect(readdirSync(outside)).toEqual(['keep.txt']);
    expect(readFileSync(join(outside, 'keep.txt'), 'utf8')).toBe('original');
    expect(readdirSync(dir)).not.toContain(stripTempDirFor(dest).slice(dir.length + 1));
    if (result) {
      expect(lstatSync(dest).isDirectory()).toBe(true);
      expectContained(dest);
      expect(result.entries).toBeGreaterThanOrEqual(0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
