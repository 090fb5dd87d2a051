import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { UnsafeEntryError, type UnsafeEntryRule } from '../../src/archive/entry-safety.js';
import { unpackBundle } from '../../src/archive/unpack.js';
import { useTempDir } from '../helpers/tmp.js';
import { rawTar, type RawTarEntry } from './helpers/raw-tar.js';
import { rawZip, type RawZipEntry } from './helpers/raw-zip.js';
import { listTree } from './helpers/tree.js';

/**
 * One crafted archive per refusal. Each puts harmless entries first, so something has been written
 * before the refusal, and aims the attack at a sentinel folder beside the destination: after the
 * refusal the sentinel must be untouched, nothing new may exist beside it, and the destination
 * must be gone.
 */

const tmp = useTempDir('cda-refusal-');
/** Where the attacks aim: a folder beside the destination that must stay as it is. */
const sentinel = () => join(tmp.dir, 'sentinel');
const dest = () => join(tmp.dir, 'deployment-archive');
beforeEach(() => {
  mkdirSync(sentinel());
  writeFileSync(join(sentinel(), 'keep.txt'), 'original');
});

const harmless: RawTarEntry[] = [
  { name: 'appspec.yml', data: 'version: 0.0\n' },
  { name: 'scripts/', type: '5' },
  { name: 'scripts/start.sh', data: '#!/bin/sh\n', mode: 0o755 },
];

async function expectRefusal(bundle: Buffer, bundleType: 'tar' | 'zip', rule: UnsafeEntryRule, message: string): Promise<void> {
  const bundlePath = join(tmp.dir, 'bundle');
  writeFileSync(bundlePath, bundle);
  const failure = unpackBundle(bundlePath, bundleType, dest());
  await expect(failure).rejects.toBeInstanceOf(UnsafeEntryError);
  await expect(failure).rejects.toMatchObject({ rule, message });
  expect(existsSync(dest())).toBe(false);
  expect(readdirSync(tmp.dir).sort()).toEqual(['bundle', 'sentinel']);
  expect(listTree(sentinel())).toEqual(['keep.txt']);
  expect(readFileSync(join(sentinel(), 'keep.txt'), 'utf8')).toBe('original');
}

const refused = (entry: string, reason: string) => `Refused to unpack bundle entry '${entry}': ${reason}`;

/** One attack: the entries after the harmless ones (a function of the sentinel folder), the rule, the entry named and why. */
interface Refusal<Entry> {
  attack: string;
  entries: (sentinel: string) => Entry[];
  rule: UnsafeEntryRule;
  /** The entry the message names; default the name of the last entry. */
  entry?: (sentinel: string) => string;
  reason: string;
}

const TAR_REFUSALS: Refusal<RawTarEntry>[] = [
  { attack: 'an absolute path', entries: (s) => [{ name: `${s}/pwned`, data: 'x' }], rule: 'absolute-path', reason: 'absolute paths are not allowed' },
  { attack: "a '../' escape", entries: () => [{ name: '../sentinel/pwned', data: 'x' }], rule: 'parent-escape', reason: "its '..' components lead outside the archive folder" },
  { attack: "'a/../../x'", entries: () => [{ name: 'a/../../sentinel/pwned', data: 'x' }], rule: 'parent-escape', reason: "its '..' components lead outside the archive folder" },
  {
    // The link itself points inside, so only the "through a symlink" rule stops the entry.
    attack: 'an entry written through a symlink of the archive',
    entries: () => [{ name: 'inside', type: '2', linkname: 'scripts' }, { name: 'inside/pwned', data: 'x' }],
    rule: 'through-symlink',
    reason: "it would be written through the symbolic link 'inside'",
  },
  {
    attack: 'a symlink to an absolute path (/etc)',
    entries: () => [{ name: 'etc', type: '2', linkname: '/etc' }, { name: 'etc/cron.d/pwned', data: 'x' }],
    rule: 'symlink-absolute',
    entry: () => 'etc',
    reason: "it is a symbolic link to the absolute path '/etc'",
  },
  {
    attack: "a symlink climbing out with '../../'",
    entries: () => [{ name: 'scripts/out', type: '2', linkname: '../../sentinel' }],
    rule: 'symlink-escape',
    reason: "it is a symbolic link to '../../sentinel', which resolves outside the archive folder",
  },
  {
    // 'b -> a/..' is harmless while 'a' is a folder; once 'a -> .' exists, b is the parent folder.
    attack: 'symlinks that only escape together, whatever their order',
    entries: () => [{ name: 'a/', type: '5' }, { name: 'b', type: '2', linkname: 'a/..' }, { name: 'a', type: '2', linkname: '.' }],
    rule: 'symlink-escape',
    entry: () => 'b',
    reason: "it is a symbolic link to 'a/..', which resolves outside the archive folder (through the link 'a')",
  },
  {
    // A hard link to a symlink is the same link at a new place, read from the new place's folder.
    attack: 'a hard link that turns a harmless symlink into an escaping one',
    entries: () => [{ name: 'a/b/s', type: '2', linkname: '../../scripts' }, { name: 'h', type: '1', linkname: 'a/b/s' }],
    rule: 'symlink-escape',
    reason: "it is a symbolic link to '../../scripts', which resolves outside the archive folder",
  },
  { attack: 'a hard link to /etc/passwd', entries: () => [{ name: 'passwd', type: '1', linkname: '/etc/passwd' }], rule: 'hardlink-outside', reason: "it is a hard link to '/etc/passwd', outside the archive folder" },
  {
    attack: "a hard link climbing out with '../'",
    entries: () => [{ name: 'keep', type: '1', linkname: '../sentinel/keep.txt' }],
    rule: 'hardlink-outside',
    reason: "it is a hard link to '../sentinel/keep.txt', outside the archive folder",
  },
  {
    attack: 'a hard link to an entry the archive does not hold',
    entries: () => [{ name: 'h', type: '1', linkname: 'not-there' }],
    rule: 'hardlink-missing',
    reason: "it is a hard link to 'not-there', which is not an earlier entry of the archive",
  },
  { attack: 'a character device', entries: () => [{ name: 'null', type: '3', devmajor: 1, devminor: 3 }], rule: 'special-file', reason: 'character device entries are not allowed (only files, directories and links)' },
  { attack: 'a block device', entries: () => [{ name: 'sda', type: '4', devmajor: 8, devminor: 0 }], rule: 'special-file', reason: 'block device entries are not allowed (only files, directories and links)' },
  { attack: 'a FIFO', entries: () => [{ name: 'pipe', type: '6' }], rule: 'special-file', reason: 'FIFO entries are not allowed (only files, directories and links)' },
];

const ZIP_REFUSALS: Refusal<RawZipEntry>[] = [
  { attack: 'an absolute path', entries: (s) => [{ name: `${s}/pwned`, data: 'x' }], rule: 'absolute-path', reason: 'absolute paths are not allowed' },
  { attack: "a '../' escape", entries: () => [{ name: '../sentinel/pwned', data: 'x' }], rule: 'parent-escape', reason: "its '..' components lead outside the archive folder" },
  { attack: "'a/../../x'", entries: () => [{ name: 'a/../../sentinel/pwned', data: 'x' }], rule: 'parent-escape', reason: "its '..' components lead outside the archive folder" },
  {
    attack: 'a Windows-style escape with backslashes',
    entries: () => [{ name: '..\\sentinel\\pwned', data: 'x' }],
    rule: 'parent-escape',
    entry: () => '../sentinel/pwned',
    reason: "its '..' components lead outside the archive folder",
  },
  {
    attack: 'an entry written through a symlink of the archive',
    entries: () => [{ name: 'inside', data: 'scripts', mode: 0o120777 }, { name: 'inside/pwned', data: 'x' }],
    rule: 'through-symlink',
    reason: "it would be written through the symbolic link 'inside'",
  },
  { attack: 'a symlink to /etc', entries: () => [{ name: 'etc', data: '/etc', mode: 0o120777 }], rule: 'symlink-absolute', reason: "it is a symbolic link to the absolute path '/etc'" },
  {
    attack: "a symlink climbing out with '../../'",
    entries: () => [{ name: 'scripts/out', data: '../../sentinel', mode: 0o120777, deflate: true }],
    rule: 'symlink-escape',
    reason: "it is a symbolic link to '../../sentinel', which resolves outside the archive folder",
  },
  { attack: 'a character device', entries: () => [{ name: 'null', mode: 0o020666 }], rule: 'special-file', reason: 'character device entries are not allowed (only files, directories and links)' },
  { attack: 'a FIFO', entries: () => [{ name: 'pipe', mode: 0o010644 }], rule: 'special-file', reason: 'FIFO entries are not allowed (only files, directories and links)' },
  { attack: 'a NUL byte in a name', entries: () => [{ name: 'evil\0.txt', data: 'x' }], rule: 'nul-byte', reason: 'the name contains a NUL byte' },
];

const named = <Entry extends { name: string }>(refusal: Refusal<Entry>, sentinelDir: string) =>
  refusal.entry?.(sentinelDir) ?? refusal.entries(sentinelDir).at(-1)!.name;

describe('tar refusals', () => {
  it.each(TAR_REFUSALS.map((refusal) => [refusal.attack, refusal] as const))('%s', async (_attack, refusal) => {
    const bundle = rawTar([...harmless, ...refusal.entries(sentinel())]);
    await expectRefusal(bundle, 'tar', refusal.rule, refused(named(refusal, sentinel()), refusal.reason));
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
  const harmlessZip: RawZipEntry[] = [{ name: 'appspec.yml', data: 'version: 0.0\n' }, { name: 'scripts/' }, { name: 'scripts/start.sh', data: '#!/bin/sh\n', mode: 0o100755 }];

  it.each(ZIP_REFUSALS.map((refusal) => [refusal.attack, refusal] as const))('%s', async (_attack, refusal) => {
    const bundle = rawZip([...harmlessZip, ...refusal.entries(sentinel())]);
    await expectRefusal(bundle, 'zip', refusal.rule, refused(named(refusal, sentinel()), refusal.reason));
  });
});
