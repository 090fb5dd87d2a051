import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { appspecCandidates, readBundleManifest, type BundleManifest } from '../../src/archive/bundle-manifest.js';
import { diskFiles, type RevisionFiles } from '../../src/archive/revision-files.js';
import { unpackBundle } from '../../src/archive/unpack.js';
import { makeTempDir } from '../helpers/tmp.js';
import { rawTar, type RawTarEntry } from './helpers/raw-tar.js';
import { makeSampleTree, zipTree } from './helpers/sample-tree.js';
import { listTree, snapshotTree } from './helpers/tree.js';

/**
 * The manifest of an archive read in place (for `deploy --dry-run`) must answer every question the
 * checks and Install's scan ask exactly as the folder unpackBundle makes from the same archive, and
 * refuse what unpackBundle refuses, with the same message.
 */
const tmp = makeTempDir('cda-manifest-');
afterAll(tmp.cleanup);

const VIRTUAL_ROOT = '/nowhere/bundle.tgz';

/**
 * A folder the archive does not list (its root, parents it omits) gets the time it was made: the
 * unpacked one when unpacking wrote into it, the manifest's when it was read, a moment later, so the
 * two can fall either side of a second. Such times compare as "recent"; every time an archive records
 * here is years old and compares exactly.
 */
const RECENT_MS = 10 * 60 * 1000;
const mtimeOf = (mtimeMs: number) => (Math.abs(Date.now() - mtimeMs) < RECENT_MS ? 'recent' : Math.floor(mtimeMs / 1000));

/** Everything a view says about each path of the unpacked tree (and a few that are not there). */
function describeView(files: RevisionFiles, root: string, paths: string[]): unknown[] {
  const at = (path: string) => (path === '' ? root : `${root}/${path}`);
  const shape = (stats: ReturnType<RevisionFiles['lstat']>) =>
    stats && { mode: stats.mode, file: stats.isFile(), directory: stats.isDirectory(), link: stats.isSymbolicLink(), mtime: mtimeOf(stats.mtimeMs) };
  const attempt = <T>(read: () => T) => {
    try {
      return read();
    } catch (error) {
      return `error ${(error as NodeJS.ErrnoException).code}`;
    }
  };
  return [...paths, 'missing', 'links/to-dir/b', 'links/to-dir/../b', 'scripts/start.sh/x'].map((path) => {
    const stats = files.lstat(at(path));
    return {
      path,
      lstat: shape(stats),
      stat: shape(attempt(() => files.stat(at(path))) as ReturnType<RevisionFiles['lstat']>),
      readlink: stats?.isSymbolicLink() ? files.readlink(at(path)) : undefined,
      realpath: attempt(() => files.realpath(at(path)).slice(root.length)),
      readdir: attempt(() => files.readdir(at(path)).map((entry) => `${entry.name}${entry.isDirectory() ? '/' : entry.isSymbolicLink() ? '@' : ''}`).sort()),
      head: files.readHead(at(path), 512).toString('latin1').startsWith('#!') ? files.readHead(at(path), 512).toString('latin1') : '',
    };
  });
}

async function compare(bundle: string, type: 'tar' | 'tgz' | 'zip', name: string): Promise<BundleManifest> {
  const unpacked = join(tmp.dir, `unpacked-${name}`);
  await unpackBundle(bundle, type, unpacked);
  const before = listTree(tmp.dir);
  const manifest = await readBundleManifest(bundle, type, { root: VIRTUAL_ROOT, keepText: appspecCandidates(undefined) });
  expect(listTree(tmp.dir), 'reading the manifest wrote nothing').toEqual(before);
  const paths = ['', ...snapshotTree(unpacked).map((node) => node.path)];
  expect(describeView(manifest, VIRTUAL_ROOT, paths)).toEqual(describeView(diskFiles, unpacked, paths));
  expect(manifest.readText(`${VIRTUAL_ROOT}/appspec.yml`)).toBe(diskFiles.readText(join(unpacked, 'appspec.yml')));
  return manifest;
}

describe('readBundleManifest answers as the unpacked folder', () => {
  const tree = join(tmp.dir, 'tree');
  mkdirSync(tree);
  makeSampleTree(tree);

  it('tar', async () => {
    const bundle = join(tmp.dir, 'sample.tar');
    execFileSync('tar', ['-cf', bundle, '-C', tree, '.']);
    const manifest = await compare(bundle, 'tar', 'tar');
    expect(manifest.summary.strippedTopDirectory).toBeUndefined();
  });

  it('zip', async () => {
    const bundle = join(tmp.dir, 'sample.zip');
    await zipTree(tree, bundle);
    await compare(bundle, 'zip', 'zip');
  });

  it('a tgz wrapped in one top folder (a GitHub tarball): the folder moves up, as unpacking does', async () => {
    const wrapped = join(tmp.dir, 'wrapped');
    mkdirSync(join(wrapped, 'owner-repo-abc123'), { recursive: true });
    makeSampleTree(join(wrapped, 'owner-repo-abc123'));
    const bundle = join(tmp.dir, 'wrapped.tgz');
    execFileSync('tar', ['-czf', bundle, '-C', wrapped, 'owner-repo-abc123']);
    const manifest = await compare(bundle, 'tgz', 'wrapped');
    expect(manifest.summary.strippedTopDirectory).toBe('owner-repo-abc123');
  });

  it('a later entry of the same name wins, a hard link shares its file, parents the archive omits are made', async () => {
    const entries: RawTarEntry[] = [
      { name: 'appspec.yml', data: 'version: 0.0\nos: linux\n' },
      { name: 'a/b/first.sh', data: '#!/bin/sh\necho one\n', mode: 0o755 },
      { name: 'a/b/first.sh', data: '#!/bin/bash\r\necho two\n', mode: 0o700 },
      { name: 'same.sh', type: '1', linkname: 'a/b/first.sh' },
    ];
    const bundle = join(tmp.dir, 'crafted.tar');
    writeFileSync(bundle, rawTar(entries));
    const manifest = await compare(bundle, 'tar', 'crafted');
    expect(manifest.readHead(`${VIRTUAL_ROOT}/same.sh`, 512).toString()).toBe('#!/bin/bash\r\necho two\n');
  });
});

describe('readBundleManifest refuses what unpacking refuses', () => {
  const cases: [string, RawTarEntry[]][] = [
    ["a '../' escape", [{ name: '../escape.txt', data: 'x' }]],
    ['a link out of the archive', [{ name: 'out', type: '2', linkname: '../../etc' }]],
    ['a write through a link', [{ name: 'dir', type: '2', linkname: 'sub' }, { name: 'sub/', type: '5' }, { name: 'dir/x', data: 'x' }]],
    ['a device', [{ name: 'dev', type: '3', devmajor: 1, devminor: 3 }]],
    ['a link that escapes once the top folder moves up', [{ name: 'top/', type: '5' }, { name: 'top/appspec.yml', data: 'x' }, { name: 'top/up', type: '2', linkname: '../x' }]],
  ];
  for (const [name, entries] of cases) {
    it(name, async () => {
      const bundle = join(tmp.dir, `refused-${name.replaceAll(/\W/g, '-')}.tar`);
      writeFileSync(bundle, rawTar(entries));
      const unpacked = await unpackBundle(bundle, 'tar', join(tmp.dir, 'refused')).then(() => 'unpacked', (error: Error) => error.message);
      const read = await readBundleManifest(bundle, 'tar', { root: VIRTUAL_ROOT, keepText: () => false }).then(() => 'read', (error: Error) => error.message);
      expect(unpacked).toMatch(/Refused|not|outside/);
      expect(read).toBe(unpacked);
    });
  }

  it('a corrupt archive fails with the message unpacking gives', async () => {
    const bundle = join(tmp.dir, 'corrupt.tgz');
    writeFileSync(bundle, Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), Buffer.alloc(40, 7)]));
    const unpacked = await unpackBundle(bundle, 'tgz', join(tmp.dir, 'corrupt')).then(() => 'unpacked', (error: Error) => error.message);
    const read = await readBundleManifest(bundle, 'tgz', { root: VIRTUAL_ROOT, keepText: () => false }).then(() => 'read', (error: Error) => error.message);
    expect(unpacked).toMatch(/^Error extracting tar archive/);
    expect(read).toBe(unpacked);
  });
});
