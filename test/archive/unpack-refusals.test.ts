import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnsafeEntryError, type UnsafeEntryRule } from '../../src/archive/entry-safety.js';
import { unpackBundle } from '../../src/archive/unpack.js';
import { makeTempDir } from '../helpers/tmp.js';
import { rawTar, type RawTarEntry } from './helpers/raw-tar.js';
import { rawZip, type RawZipEntry } from './helpers/raw-zip.js';
import { listTree } from './helpers/tree.js';

/**
 * One crafted archive per refusal. Each puts harmless entries first, so something has been written
 * before the refusal, and aims the attack at a sentinel folder beside the destination: after the
 * refusal the sentinel must be untouched, nothing new may exist beside it, and the destination
 * must be gone.
 */

let dir: string;
let cleanup: () => void;
let sentinel: string;
let dest: string;
beforeEach(() => {
  ({ dir, cleanup } = makeTempDir('cda-refusal-'));
  sentinel = join(dir, 'sentinel');
  mkdirSync(sentinel);
  writeFileSync(join(sentinel, 'keep.txt'), 'original');
  dest = join(dir, 'deployment-archive');
});
afterEach(() => cleanup());

const harmless: RawTarEntry[] = [
  { name: 'appspec.yml', data: 'version: 0.0\n' },
  { name: 'scripts/', type: '5' },
  { name: 'scripts/start.sh', data: '#!/bin/sh\n', mode: 0o755 },
];

async function expectRefusal(bundle: Buffer, bundleType: 'tar' | 'zip', rule: UnsafeEntryRule, message: string): Promise<void> {
  const bundlePath = join(dir, 'bundle');
  writeFileSync(bundlePath, bundle);
  const failure = unpackBundle(bundlePath, bundleType, dest);
  await expect(failure).rejects.toBeInstanceOf(UnsafeEntryError);
  await expect(failure).rejects.toMatchObject({ rule, message });
  expect(existsSync(dest)).toBe(false);
  expect(readdirSync(dir).sort()).toEqual(['bundle', 'sentinel']);
  expect(listTree(sentinel)).toEqual(['keep.txt']);
  expect(readFileSync(join(sentinel, 'keep.txt'), 'utf8')).toBe('original');
}

const refused = (entry: string, reason: string) => `Refused to unpack bundle entry '${entry}': ${reason}`;

describe('tar refusals', () => {
  const tar = (...entries: RawTarEntry[]) => rawTar([...harmless, ...entries]);

  it('an absolute path', async () => {
    const name = `${sentinel}/pwned`;
    await expectRefusal(tar({ name, data: 'x' }), 'tar', 'absolute-path', refused(name, 'absolute paths are not allowed'));
  });

  it("a '../' escape", async () => {
    await expectRefusal(
      tar({ name: '../sentinel/pwned', data: 'x' }),
      'tar',
      'parent-escape',
      refused('../sentinel/pwned', "its '..' components lead outside the archive folder"),
    );
  });

  it("'a/../../x'", async () => {
    await expectRefusal(
      tar({ name: 'a/../../sentinel/pwned', data: 'x' }),
      'tar',
      'parent-escape',
      refused('a/../../sentinel/pwned', "its '..' components lead outside the archive folder"),
    );
  });

  it('an entry written through a symlink of the archive', async () => {
    // The link itself points inside, so only the "through a symlink" rule stops the entry.
    await expectRefusal(
      tar({ name: 'inside', type: '2', linkname: 'scripts' }, { name: 'inside/pwned', data: 'x' }),
      'tar',
      'through-symlink',
      refused('inside/pwned', "it would be written through the symbolic link 'inside'"),
    );
  });

  it('a symlink to an absolute path (/etc)', async () => {
    await expectRefusal(
      tar({ name: 'etc', type: '2', linkname: '/etc' }, { name: 'etc/cron.d/pwned', data: 'x' }),
      'tar',
      'symlink-absolute',
      refused('etc', "it is a symbolic link to the absolute path '/etc'"),
    );
  });

  it("a symlink climbing out with '../../'", async () => {
    await expectRefusal(
      tar({ name: 'scripts/out', type: '2', linkname: '../../sentinel' }),
      'tar',
      'symlink-escape',
      refused('scripts/out', "it is a symbolic link to '../../sentinel', which resolves outside the archive folder"),
    );
  });

  it('symlinks that only escape together, whatever their order', async () => {
    // 'b -> a/..' is harmless while 'a' is a folder; once 'a -> .' exists, b is the parent folder.
    await expectRefusal(
      tar({ name: 'a/', type: '5' }, { name: 'b', type: '2', linkname: 'a/..' }, { name: 'a', type: '2', linkname: '.' }),
      'tar',
      'symlink-escape',
      refused('b', "it is a symbolic link to 'a/..', which resolves outside the archive folder (through the link 'a')"),
    );
  });

  it('a hard link that turns a harmless symlink into an escaping one', async () => {
    // A hard link to a symlink is the same link at a new place, read from the new place's folder.
    await expectRefusal(
      tar({ name: 'a/b/s', type: '2', linkname: '../../scripts' }, { name: 'h', type: '1', linkname: 'a/b/s' }),
      'tar',
      'symlink-escape',
      refused('h', "it is a symbolic link to '../../scripts', which resolves outside the archive folder"),
    );
  });

  it('a hard link to /etc/passwd', async () => {
    await expectRefusal(
      tar({ name: 'passwd', type: '1', linkname: '/etc/passwd' }),
      'tar',
      'hardlink-outside',
      refused('passwd', "it is a hard link to '/etc/passwd', outside the archive folder"),
    );
  });

  it("a hard link climbing out with '../'", async () => {
    await expectRefusal(
      tar({ name: 'keep', type: '1', linkname: '../sentinel/keep.txt' }),
      'tar',
      'hardlink-outside',
      refused('keep', "it is a hard link to '../sentinel/keep.txt', outside the archive folder"),
    );
  });

  it('a hard link to an entry the archive does not hold', async () => {
    await expectRefusal(
      tar({ name: 'h', type: '1', linkname: 'not-there' }),
      'tar',
      'hardlink-missing',
      refused('h', "it is a hard link to 'not-there', which is not an earlier entry of the archive"),
    );
  });

  it('a character device', async () => {
    await expectRefusal(
      tar({ name: 'null', type: '3', devmajor: 1, devminor: 3 }),
      'tar',
      'special-file',
      refused('null', 'character device entries are not allowed (only files, directories and links)'),
    );
  });

  it('a block device', async () => {
    await expectRefusal(
      tar({ name: 'sda', type: '4', devmajor: 8, devminor: 0 }),
      'tar',
      'special-file',
      refused('sda', 'block device entries are not allowed (only files, directories and links)'),
    );
  });

  it('a FIFO', async () => {
    await expectRefusal(
      tar({ name: 'pipe', type: '6' }),
      'tar',
      'special-file',
      refused('pipe', 'FIFO entries are not allowed (only files, directories and links)'),
    );
  });

  it('a link escaping once the single top folder is stripped', async () => {
    // Before stripping, 'top/link -> ../x' points at the archive's own 'x'; after, beside it.
    const bundle = rawTar([
      { name: 'top/', type: '5' },
      { name: 'top/appspec.yml', data: 'version: 0.0\n' },
      { name: 'top/link', type: '2', linkname: '../sentinel' },
    ]);
    await expectRefusal(bundle, 'tar', 'symlink-escape', refused('top/link', "it is a symbolic link to '../sentinel', which resolves outside the archive folder"));
  });
});

describe('zip refusals', () => {
  const zip = (...entries: RawZipEntry[]) =>
    rawZip([{ name: 'appspec.yml', data: 'version: 0.0\n' }, { name: 'scripts/' }, { name: 'scripts/start.sh', data: '#!/bin/sh\n', mode: 0o100755 }, ...entries]);

  it('an absolute path', async () => {
    const name = `${sentinel}/pwned`;
    await expectRefusal(zip({ name, data: 'x' }), 'zip', 'absolute-path', refused(name, 'absolute paths are not allowed'));
  });

  it("a '../' escape", async () => {
    await expectRefusal(zip({ name: '../sentinel/pwned', data: 'x' }), 'zip', 'parent-escape', refused('../sentinel/pwned', "its '..' components lead outside the archive folder"));
  });

  it("'a/../../x'", async () => {
    await expectRefusal(
      zip({ name: 'a/../../sentinel/pwned', data: 'x' }),
      'zip',
      'parent-escape',
      refused('a/../../sentinel/pwned', "its '..' components lead outside the archive folder"),
    );
  });

  it('a Windows-style escape with backslashes', async () => {
    await expectRefusal(zip({ name: '..\\sentinel\\pwned', data: 'x' }), 'zip', 'parent-escape', refused('../sentinel/pwned', "its '..' components lead outside the archive folder"));
  });

  it('an entry written through a symlink of the archive', async () => {
    await expectRefusal(
      zip({ name: 'inside', data: 'scripts', mode: 0o120777 }, { name: 'inside/pwned', data: 'x' }),
      'zip',
      'through-symlink',
      refused('inside/pwned', "it would be written through the symbolic link 'inside'"),
    );
  });

  it('a symlink to /etc', async () => {
    await expectRefusal(zip({ name: 'etc', data: '/etc', mode: 0o120777 }), 'zip', 'symlink-absolute', refused('etc', "it is a symbolic link to the absolute path '/etc'"));
  });

  it("a symlink climbing out with '../../'", async () => {
    await expectRefusal(
      zip({ name: 'scripts/out', data: '../../sentinel', mode: 0o120777, deflate: true }),
      'zip',
      'symlink-escape',
      refused('scripts/out', "it is a symbolic link to '../../sentinel', which resolves outside the archive folder"),
    );
  });

  it('a character device', async () => {
    await expectRefusal(zip({ name: 'null', mode: 0o020666 }), 'zip', 'special-file', refused('null', 'character device entries are not allowed (only files, directories and links)'));
  });

  it('a FIFO', async () => {
    await expectRefusal(zip({ name: 'pipe', mode: 0o010644 }), 'zip', 'special-file', refused('pipe', 'FIFO entries are not allowed (only files, directories and links)'));
  });

  it('a NUL byte in a name', async () => {
    await expectRefusal(zip({ name: 'evil\0.txt', data: 'x' }), 'zip', 'nul-byte', refused('evil\0.txt', 'the name contains a NUL byte'));
  });
});
