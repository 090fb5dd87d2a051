import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stripTempDirFor, stripTopDirectory } from '../../src/archive/strip-top-directory.js';
import { unpackBundle } from '../../src/archive/unpack.js';
import { makeTempDir } from '../helpers/tmp.js';
import { rawTar } from './helpers/raw-tar.js';
import { rawZip } from './helpers/raw-zip.js';
import { listTree } from './helpers/tree.js';

let dir: string;
let cleanup: () => void;
let archive: string;
beforeEach(() => {
  ({ dir, cleanup } = makeTempDir('cda-strip-'));
  archive = join(dir, 'deployment-archive');
  mkdirSync(archive);
});
afterEach(() => cleanup());

function write(relative: string, content = 'x'): void {
  mkdirSync(join(archive, relative, '..'), { recursive: true });
  writeFileSync(join(archive, relative), content);
}

describe('stripTopDirectory', () => {
  it('moves the content of a lone top folder holding an appspec up one level', async () => {
    write('owner-repo-abc123/appspec.yml', 'version: 0.0');
    write('owner-repo-abc123/scripts/start.sh');
    expect(await stripTopDirectory(archive)).toBe('owner-repo-abc123');
    expect(listTree(archive)).toEqual(['appspec.yml', 'scripts', 'scripts/start.sh']);
    expect(readFileSync(join(archive, 'appspec.yml'), 'utf8')).toBe('version: 0.0');
    expect(existsSync(stripTempDirFor(archive))).toBe(false);
  });

  it('matches any name containing "appspec", in any case, file or folder', async () => {
    write('top/My-AppSpec.YAML');
    expect(await stripTopDirectory(archive)).toBe('top');
  });

  it('strips only one level', async () => {
    write('outer/inner/appspec.yml');
    write('outer/appspec-notes/readme');
    expect(await stripTopDirectory(archive)).toBe('outer');
    expect(listTree(archive)).toEqual(['appspec-notes', 'appspec-notes/readme', 'inner', 'inner/appspec.yml']);
  });

  it('leaves the tree alone when the appspec sits deeper', async () => {
    write('top/sub/appspec.yml');
    expect(await stripTopDirectory(archive)).toBeUndefined();
    expect(listTree(archive)).toEqual(['top', 'top/sub', 'top/sub/appspec.yml']);
  });

  it('leaves the tree alone when the top folder has company', async () => {
    write('top/appspec.yml');
    write('README.md');
    expect(await stripTopDirectory(archive)).toBeUndefined();
  });

  it('leaves a lone file or a lone symlink to a folder alone', async () => {
    write('appspec.yml');
    expect(await stripTopDirectory(archive)).toBeUndefined();

    const other = join(dir, 'other');
    mkdirSync(join(other, 'real'), { recursive: true });
    writeFileSync(join(other, 'real', 'appspec.yml'), 'x');
    const lone = join(dir, 'lone');
    mkdirSync(lone);
    symlinkSync(join(other, 'real'), join(lone, 'link'));
    expect(await stripTopDirectory(lone)).toBeUndefined();
  });

  it('replaces a leftover temp folder from an earlier run', async () => {
    mkdirSync(join(stripTempDirFor(archive), 'leftover'), { recursive: true });
    write('top/appspec.yml');
    expect(await stripTopDirectory(archive)).toBe('top');
    expect(existsSync(stripTempDirFor(archive))).toBe(false);
  });

  it('names the anchor temp folder beside the archive', () => {
    expect(stripTempDirFor('/root/grp/d-1/deployment-archive')).toBe('/root/grp/d-1/deployment-archive-temp');
  });
});

describe('unpackBundle and the top folder', () => {
  it('strips a GitHub-style zipball by default and reports it', async () => {
    const bundle = join(dir, 'bundle.zip');
    writeFileSync(
      bundle,
      rawZip([{ name: 'acme-app-1a2b3c/' }, { name: 'acme-app-1a2b3c/appspec.yml', data: 'version: 0.0\n' }, { name: 'acme-app-1a2b3c/bin/tool', data: '#!/bin/sh\n', mode: 0o104755 }]),
    );
    const dest = join(dir, 'dest');
    const result = await unpackBundle(bundle, 'zip', dest);
    expect(result.strippedTopDirectory).toBe('acme-app-1a2b3c');
    expect(listTree(dest)).toEqual(['appspec.yml', 'bin', 'bin/tool']);
    // The bundle's own modes follow their files up one level.
    expect(result.originals).toEqual(new Map([['bin/tool', { mode: 0o4755 }]]));
  });

  it('keeps the top folder when asked not to strip', async () => {
    const bundle = join(dir, 'bundle.tar');
    writeFileSync(bundle, rawTar([{ name: 'top/appspec.yml', data: 'x' }]));
    const dest = join(dir, 'dest');
    const result = await unpackBundle(bundle, 'tar', dest, { stripSingleTopDirectory: false });
    expect(result.strippedTopDirectory).toBeUndefined();
    expect(listTree(dest)).toEqual(['top', 'top/appspec.yml']);
  });

  it('keeps a lone top folder without an appspec', async () => {
    const bundle = join(dir, 'bundle.tar');
    writeFileSync(bundle, rawTar([{ name: 'top/readme', data: 'x' }]));
    const dest = join(dir, 'dest');
    expect((await unpackBundle(bundle, 'tar', dest)).strippedTopDirectory).toBeUndefined();
    expect(listTree(dest)).toEqual(['top', 'top/readme']);
  });
});
