import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyDirectoryBundle } from '../../src/archive/copy-directory.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { ArchiveError } from '../../src/report/errors.js';
import { useTempDir } from '../helpers/tmp.js';
import { AS_ROOT, makeSampleTree } from './helpers/sample-tree.js';
import { asArchiveCopy, asInstalled, listTree, makeOwnerWritable, snapshotTree, withOriginals } from './helpers/tree.js';

const tmp = useTempDir('cda-copy-');
let src: string;
let dest: string;
beforeEach(() => {
  src = join(tmp.dir, 'revision');
  mkdirSync(src);
  dest = join(tmp.dir, 'deployment-archive');
});
// Before the folder is removed (hooks after a test run last-registered first).
afterEach(() => makeOwnerWritable(tmp.dir));

describe('copyDirectoryBundle', () => {
  it('copies content, modes, mtimes, symlinks as links and empty folders, the copy root\'s and what cp -a keeps recorded', async () => {
    makeSampleTree(src);
    const originals = await copyDirectoryBundle(src, dest);
    const copied = snapshotTree(dest);
    const source = snapshotTree(src);
    // As root the owners come along too (cp -a); otherwise everything belongs to the agent.
    const kept = AS_ROOT ? source : source.map((node) => ({ ...node, uid: process.getuid!(), gid: process.getgid!() }));
    expect(copied).toEqual(asArchiveCopy(kept));
    expect(withOriginals(copied, originals)).toEqual(asInstalled(kept));
    expect(lstatSync(join(dest, 'bin/suid-tool')).mode & 0o7777).toBe(0o755);
    expect(originals.get('bin/suid-tool')?.mode).toBe(0o4755);
    expect(lstatSync(dest).mode & 0o7777).toBe(0o755);
  });

  it('replaces an existing destination instead of copying into it (§10.23)', async () => {
    writeFileSync(join(src, 'appspec.yml'), 'version: 0.0');
    mkdirSync(join(dest, 'stale'), { recursive: true });
    writeFileSync(join(dest, 'stale', 'old.txt'), 'old');
    await copyDirectoryBundle(src, dest);
    await copyDirectoryBundle(src, dest);
    expect(listTree(dest)).toEqual(['appspec.yml']);
  });

  it('copies links pointing outside the folder as they are, without following them', async () => {
    const outside = join(tmp.dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'outside');
    symlinkSync(outside, join(src, 'to-outside'));
    symlinkSync('/etc/passwd', join(src, 'passwd'));
    await copyDirectoryBundle(src, dest);
    expect(readlinkSync(join(dest, 'to-outside'))).toBe(outside);
    expect(readlinkSync(join(dest, 'passwd'))).toBe('/etc/passwd');
    expect(listTree(dest)).toEqual(['passwd', 'to-outside']);
  });

  it('skips FIFOs with a warning instead of blocking on them', async () => {
    writeFileSync(join(src, 'appspec.yml'), 'x');
    execFileSync('mkfifo', [join(src, 'pipe')]);
    const logger = new MemoryLogger();
    await copyDirectoryBundle(src, dest, { logger });
    expect(listTree(dest)).toEqual(['appspec.yml']);
    expect(logger.text()).toContain(`Skipping '${join(src, 'pipe')}' in the revision directory`);
  });

  it('follows the revision folder itself when it is a symlink', async () => {
    writeFileSync(join(src, 'appspec.yml'), 'x');
    const link = join(tmp.dir, 'revision-link');
    symlinkSync(src, link);
    await copyDirectoryBundle(link, dest);
    expect(listTree(dest)).toEqual(['appspec.yml']);
  });

  it('refuses a location that is not a folder', async () => {
    await expect(copyDirectoryBundle(join(tmp.dir, 'missing'), dest)).rejects.toThrow(
      new ArchiveError(`The revision location '${join(tmp.dir, 'missing')}' is not a directory`),
    );
    writeFileSync(join(tmp.dir, 'file'), 'x');
    await expect(copyDirectoryBundle(join(tmp.dir, 'file'), dest)).rejects.toBeInstanceOf(ArchiveError);
  });

  it('refuses to copy a folder into itself', async () => {
    writeFileSync(join(src, 'appspec.yml'), 'x');
    await expect(copyDirectoryBundle(src, join(src, 'deployment-archive'))).rejects.toThrow(/which is inside it$/);
    await expect(copyDirectoryBundle(src, src)).rejects.toBeInstanceOf(ArchiveError);
    expect(listTree(src)).toEqual(['appspec.yml']);
  });

  it('stops when aborted and removes the partial copy', async () => {
    for (let i = 0; i < 2000; i++) writeFileSync(join(src, `f${i}`), 'x');
    const controller = new AbortController();
    const copying = copyDirectoryBundle(src, dest, { signal: controller.signal });
    setImmediate(() => controller.abort());
    await expect(copying).rejects.toMatchObject({ name: 'AbortError' });
    expect(existsSync(dest)).toBe(false);
  });
});
