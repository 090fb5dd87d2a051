import { execa } from 'execa';
import { existsSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { ArchiveError } from '../../src/report/errors.js';
import { unpackBundle, type ArchiveBundleType } from '../../src/archive/unpack.js';
import { makeTempDir } from '../helpers/tmp.js';
import { paxEntry, rawTar } from './helpers/raw-tar.js';
import { rawZip } from './helpers/raw-zip.js';
import { AS_ROOT, makeSampleTree, zipTree } from './helpers/sample-tree.js';
import { asArchiveCopy, asInstalled, makeOwnerWritable, snapshotTree, withOriginals, type TreeNode } from './helpers/tree.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = makeTempDir('cda-unpack-'));
});
afterEach(() => {
  makeOwnerWritable(dir);
  cleanup();
});

/** What unpacking should produce from `source`: ownership only survives a tar unpacked as root. */
function expectedTree(source: TreeNode[], keepsOwners: boolean): TreeNode[] {
  if (keepsOwners) return source;
  const uid = process.getuid!();
  const gid = process.getgid!();
  return source.map((node) => ({ ...node, uid, gid }));
}

describe('unpackBundle round trips', () => {
  const cases: { name: string; bundleType: ArchiveBundleType; make: (src: string, bundle: string) => Promise<unknown> }[] = [
    { name: 'tar', bundleType: 'tar', make: (src, bundle) => execa('tar', ['-cf', bundle, '-C', src, '.']) },
    { name: 'tgz', bundleType: 'tgz', make: (src, bundle) => execa('tar', ['-czf', bundle, '-C', src, '.']) },
    // GitHub tarballs are gzip although CodeDeploy calls them tar; GNU tar sniffs the magic bytes.
    { name: 'gzip-compressed tar given as tar', bundleType: 'tar', make: (src, bundle) => execa('tar', ['-czf', bundle, '-C', src, '.']) },
    { name: 'plain tar given as tgz', bundleType: 'tgz', make: (src, bundle) => execa('tar', ['-cf', bundle, '-C', src, '.']) },
    { name: 'zip', bundleType: 'zip', make: (src, bundle) => zipTree(src, bundle) },
  ];

  for (const { name, bundleType, make } of cases) {
    it(`keeps content, modes, mtimes, links and empty folders, the copy root's and the bundle's modes and owners recorded: ${name}`, async () => {
      const src = join(dir, 'src');
      mkdirSync(src);
      makeSampleTree(src);
      const bundle = join(dir, 'bundle.tar');
      await make(src, bundle);
      const dest = join(dir, 'deployment-archive');

      const result = await unpackBundle(bundle, bundleType, dest);

      const isTar = bundleType !== 'zip';
      const bundled = expectedTree(snapshotTree(src), isTar && AS_ROOT);
      // Hooks run from this copy as root: nobody else's, nothing setuid or writable by others.
      expect(snapshotTree(dest)).toEqual(asArchiveCopy(bundled));
      // What Install gives the installed copies: the bundle's own.
      expect(withOriginals(snapshotTree(dest), result.originals)).toEqual(asInstalled(bundled));
      expect(result.strippedTopDirectory).toBeUndefined();
      expect(result.bytes).toBeGreaterThan(1024 * 1024);
      // Files, folders and links: everything in the tree (the tar's './' entry counts once more).
      expect(result.entries).toBeGreaterThanOrEqual(snapshotTree(src).length);
      if (isTar) {
        expect(lstatSync(join(dest, 'hardlink-to-appspec.yml')).ino).toBe(lstatSync(join(dest, 'appspec.yml')).ino);
        // The './' entry carries the source folder's own mode.
        expect(statSync(dest).mode & 0o7777).toBe(0o755);
      }
      if (AS_ROOT && isTar) expect(result.originals.get('owned.txt')).toMatchObject({ uid: 4321, gid: 4322 });
      expect(result.originals.get('bin/suid-tool')?.mode).toBe(0o4755);
      expect(lstatSync(join(dest, 'bin/suid-tool')).mode & 0o7777).toBe(0o755);
    });
  }
});

describe('unpackBundle', () => {
  it('empties an existing destination first and creates missing parents', async () => {
    const dest = join(dir, 'a', 'b', 'deployment-archive');
    mkdirSync(join(dest, 'stale'), { recursive: true });
    writeFileSync(join(dest, 'stale', 'old.txt'), 'old');
    const bundle = join(dir, 'bundle.tar');
    writeFileSync(bundle, rawTar([{ name: 'appspec.yml', data: 'version: 0.0\n' }]));

    await unpackBundle(bundle, 'tar', dest);

    expect(snapshotTree(dest).map((node) => node.path)).toEqual(['appspec.yml']);
  });

  it('keeps modes exactly, whatever the umask: the safe bits on the copy, all of them recorded', async () => {
    const bundle = join(dir, 'bundle.tar');
    writeFileSync(
      bundle,
      rawTar([
        { name: 'world-writable', mode: 0o777, data: 'x' },
        { name: 'private', mode: 0o600, data: 'x' },
        { name: 'group-writable-dir/', type: '5', mode: 0o2775 },
        { name: 'sticky/', type: '5', mode: 0o1777 },
      ]),
    );
    const dest = join(dir, 'out');
    const previous = process.umask(0o077);
    let originals;
    try {
      ({ originals } = await unpackBundle(bundle, 'tar', dest));
    } finally {
      process.umask(previous);
    }
    expect(lstatSync(join(dest, 'world-writable')).mode & 0o7777).toBe(0o755);
    expect(lstatSync(join(dest, 'private')).mode & 0o7777).toBe(0o600);
    expect(lstatSync(join(dest, 'group-writable-dir')).mode & 0o7777).toBe(0o755);
    expect(lstatSync(join(dest, 'sticky')).mode & 0o7777).toBe(0o1755);
    expect(originals).toEqual(new Map([['world-writable', { mode: 0o777 }]]));
  });

  it.runIf(AS_ROOT)('as root, records the owner name in a tar over its numeric id, as GNU tar restores it; the copy is root\'s', async () => {
    const bundle = join(dir, 'bundle.tar');
    writeFileSync(
      bundle,
      rawTar([
        { name: 'by-name', uid: 12345, gid: 12345, uname: 'nobody', gname: 'root', data: 'x' },
        { name: 'by-number', uid: 23456, gid: 34567, uname: 'no-such-user-here', data: 'x' },
      ]),
    );
    const dest = join(dir, 'out');
    const { originals } = await unpackBundle(bundle, 'tar', dest);
    const nobody = readFileSync('/etc/passwd', 'utf8').match(/^nobody:[^:]*:(\d+):/m);
    if (nobody) expect(originals.get('by-name')).toEqual({ mode: 0o644, uid: Number(nobody[1]) });
    expect(originals.get('by-number')).toEqual({ mode: 0o644, uid: 23456, gid: 34567 });
    for (const name of ['by-name', 'by-number']) expect(lstatSync(join(dest, name))).toMatchObject({ uid: 0, gid: 0 });
  });

  it.runIf(AS_ROOT)('as root, an owner id no chown can set leaves the entry to the agent (found by test/fuzz/tar.test.ts)', async () => {
    // Base-256 ids (first byte 0x80) can say anything; 2^32 made lchown throw a RangeError.
    const tar = rawTar([{ name: 'file', data: 'x' }, { name: 'link', type: '2', linkname: 'file' }]);
    for (const at of [0, 1024]) {
      tar.fill(0, at + 108, at + 124);
      tar[at + 108] = 0x80;
      tar[at + 111] = 1; // uid 2^32 (bytes 109-115 big-endian)
      tar[at + 116] = 0xff; // gid: a negative base-256 number
      tar.fill(0xff, at + 117, at + 124);
      tar.fill(' ', at + 148, at + 156);
      let sum = 0;
      for (let i = at; i < at + 512; i++) sum += tar[i];
      tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 8, 'latin1');
    }
    const bundle = join(dir, 'bundle.tar');
    writeFileSync(bundle, tar);
    const dest = join(dir, 'out');
    const { originals } = await unpackBundle(bundle, 'tar', dest);
    expect(lstatSync(join(dest, 'file'))).toMatchObject({ uid: 0, gid: 0 });
    expect(lstatSync(join(dest, 'link'))).toMatchObject({ uid: 0, gid: 0 });
    expect(originals.size).toBe(0);
  });

  it.runIf(AS_ROOT)('as root, records owners by name from a GNU-format tar made by GNU tar', async () => {
    const nobody = readFileSync('/etc/passwd', 'utf8').match(/^nobody:[^:]*:(\d+):/m);
    if (!nobody) return;
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'file'), 'x');
    const bundle = join(dir, 'bundle.tar');
    await execa('tar', ['--format=gnu', '--owner=nobody:12345', '--group=root:23456', '-cf', bundle, '-C', src, 'file']);
    const dest = join(dir, 'out');
    const { originals } = await unpackBundle(bundle, 'tar', dest);
    expect(originals.get('file')).toMatchObject({ uid: Number(nobody[1]) });
    expect(originals.get('file')?.gid).toBeUndefined();
    expect(lstatSync(join(dest, 'file'))).toMatchObject({ uid: 0, gid: 0 });
  });

  it('reads GNU long names, pax paths and a GitHub-style global header', async () => {
    const longName = `${'long-directory-name/'.repeat(8)}file.txt`;
    const paxName = `${'p'.repeat(150)}/ünïcødé.txt`;
    const bundle = join(dir, 'bundle.tar');
    writeFileSync(
      bundle,
      gzipSync(
        rawTar([
          paxEntry({ comment: '0123456789abcdef0123456789abcdef01234567' }, 'g'),
          { name: 'repo-sha/', type: '5' },
          { name: 'repo-sha/appspec.yml', data: 'version: 0.0\n' },
          { name: '././@LongLink', type: 'L', data: `repo-sha/${longName}\0` },
          { name: 'repo-sha/truncated-name', data: 'long' },
          paxEntry({ path: `repo-sha/${paxName}`, mtime: '1234567890.5' }),
          { name: 'repo-sha/ignored', data: 'pax' },
        ]),
      ),
    );
    const dest = join(dir, 'out');
    const result = await unpackBundle(bundle, 'tar', dest);
    expect(result.strippedTopDirectory).toBe('repo-sha');
    expect(readFileSync(join(dest, longName), 'utf8')).toBe('long');
    expect(readFileSync(join(dest, paxName), 'utf8')).toBe('pax');
    expect(lstatSync(join(dest, paxName)).mtimeMs).toBe(1234567890500);
  });

  it('lets a later entry of the same name win, as GNU tar does', async () => {
    const bundle = join(dir, 'bundle.tar');
    writeFileSync(
      bundle,
      rawTar([
        { name: 'a', data: 'first' },
        { name: 'a', data: 'second' },
        { name: 'b', type: '2', linkname: 'a' },
        { name: 'b', data: 'file now' },
        { name: 'c/', type: '5' },
        { name: 'c', type: '2', linkname: 'a' },
      ]),
    );
    const dest = join(dir, 'out');
    await unpackBundle(bundle, 'tar', dest);
    expect(readFileSync(join(dest, 'a'), 'utf8')).toBe('second');
    expect(readFileSync(join(dest, 'b'), 'utf8')).toBe('file now');
    expect(lstatSync(join(dest, 'c')).isSymbolicLink()).toBe(true);
  });

  it('refuses to replace a folder that has content, and removes the destination', async () => {
    const bundle = join(dir, 'bundle.tar');
    writeFileSync(bundle, rawTar([{ name: 'c/x', data: 'x' }, { name: 'c', data: 'file' }]));
    const dest = join(dir, 'out');
    await expect(unpackBundle(bundle, 'tar', dest)).rejects.toThrow(
      "Error extracting tar archive: cannot replace the directory 'c' with a later entry of the same name: it is not empty",
    );
    expect(existsSync(dest)).toBe(false);
  });

  it('creates hard links to earlier entries, and to earlier symlinks once those exist', async () => {
    const bundle = join(dir, 'bundle.tar');
    writeFileSync(
      bundle,
      rawTar([
        { name: 'file', data: 'x' },
        { name: 'link-to-file', type: '1', linkname: 'file' },
        { name: 'symlink', type: '2', linkname: 'file' },
        { name: 'link-to-symlink', type: '1', linkname: './symlink' },
        { name: 'link-to-link', type: '1', linkname: 'link-to-symlink' },
        // Relinked to a name that links back to it: must neither loop nor fail.
        { name: 'link-to-symlink', type: '1', linkname: 'link-to-link' },
      ]),
    );
    const dest = join(dir, 'out');
    await unpackBundle(bundle, 'tar', dest);
    expect(lstatSync(join(dest, 'link-to-file')).ino).toBe(lstatSync(join(dest, 'file')).ino);
    for (const name of ['link-to-symlink', 'link-to-link']) {
      expect(lstatSync(join(dest, name)).isSymbolicLink()).toBe(true);
      expect(lstatSync(join(dest, name)).ino).toBe(lstatSync(join(dest, 'symlink')).ino);
    }
  });

  it('skips types it does not unpack, with a warning', async () => {
    const bundle = join(dir, 'bundle.tar');
    writeFileSync(bundle, rawTar([{ name: 'label', type: 'V' }, { name: 'acl', type: 'A', data: 'acl' }, { name: 'kept', data: 'x' }]));
    const logger = new MemoryLogger();
    const dest = join(dir, 'out');
    await unpackBundle(bundle, 'tar', dest, { logger });
    expect(snapshotTree(dest).map((node) => node.path)).toEqual(['kept']);
    expect(logger.text()).toContain("Skipping bundle entry 'acl': tar type 'A' entries are not unpacked");
  });

  it('reads zips made on Windows: backslashes, no Unix modes', async () => {
    const bundle = join(dir, 'bundle.zip');
    const zip = rawZip([
      { name: 'dir\\file.txt', data: 'hello', deflate: true },
      { name: 'empty\\', mode: 0 },
    ]);
    // Version made by: MS-DOS (host 0), so the external attributes hold no Unix mode.
    for (let at = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])); at !== -1; at = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), at + 4)) {
      zip.writeUInt16LE(20, at + 4);
    }
    writeFileSync(bundle, zip);
    const dest = join(dir, 'out');
    await unpackBundle(bundle, 'zip', dest);
    expect(readFileSync(join(dest, 'dir/file.txt'), 'utf8')).toBe('hello');
    expect(lstatSync(join(dest, 'dir/file.txt')).mode & 0o7777).toBe(0o644);
    expect(lstatSync(join(dest, 'empty')).isDirectory()).toBe(true);
  });
});

describe('unpackBundle failures', () => {
  async function expectFailure(bundleContent: Buffer, bundleType: ArchiveBundleType, message: string | RegExp) {
    const bundle = join(dir, 'bundle');
    writeFileSync(bundle, bundleContent);
    const dest = join(dir, 'deployment-archive');
    const failure = unpackBundle(bundle, bundleType, dest);
    await expect(failure).rejects.toBeInstanceOf(ArchiveError);
    await expect(failure).rejects.toThrow(message);
    expect(existsSync(dest)).toBe(false);
  }

  it('reports a file that is not a tar the way GNU tar does', async () => {
    await expectFailure(Buffer.from('this is not a tar archive at all'.repeat(40)), 'tar', 'Error extracting tar archive: This does not look like a tar archive');
  });

  it('reports a corrupt header mid-archive', async () => {
    const tar = rawTar([{ name: 'a', data: 'x' }, { name: 'b', data: 'y' }]);
    tar[1024 + 10] ^= 0xff;
    await expectFailure(tar, 'tar', 'Error extracting tar archive: invalid header checksum at byte 1024');
  });

  it('reports a truncated tar, naming the entry', async () => {
    const tar = rawTar([{ name: 'a', data: 'x'.repeat(2000) }], { endBlocks: false });
    await expectFailure(tar.subarray(0, 1500), 'tar', "Error extracting tar archive: unexpected end of archive inside 'a'");
  });

  it('reports a truncated gzip stream', async () => {
    const tgz = gzipSync(rawTar([{ name: 'a', data: 'x'.repeat(100_000) }]));
    await expectFailure(tgz.subarray(0, tgz.length / 2), 'tgz', 'Error extracting tar archive: unexpected end of file');
  });

  it('names compressions it cannot read', async () => {
    await expectFailure(Buffer.concat([Buffer.from('BZh91AY&SY'), Buffer.alloc(600)]), 'tar', 'Error extracting tar archive: bzip2-compressed tar archives are not supported');
  });

  it('reports a file that is not a zip', async () => {
    await expectFailure(Buffer.from('not a zip'.repeat(10)), 'zip', /^Error extracting zip archive: End of central directory record signature not found/);
  });

  it('reports a zip entry whose content does not match its CRC', async () => {
    const zip = rawZip([{ name: 'a.txt', data: 'hello world' }]);
    zip[30 + 'a.txt'.length] ^= 0xff;
    await expectFailure(zip, 'zip', "Error extracting zip archive: 'a.txt' is corrupt (CRC mismatch)");
  });

  it('reports a zip entry that inflates to more than its recorded size', async () => {
    const zip = rawZip([{ name: 'bomb.txt', data: 'x'.repeat(100_000), deflate: true, recordedSize: 10 }]);
    await expectFailure(zip, 'zip', "Error extracting zip archive: 'bomb.txt' inflates to more than the 10 bytes its header says");
  });

  it('reports a zip entry whose compressed data is damaged', async () => {
    const zip = rawZip([{ name: 'a.txt', data: 'x'.repeat(1000), deflate: true }]);
    zip.fill(0xff, 30 + 'a.txt'.length, 30 + 'a.txt'.length + 4);
    await expectFailure(zip, 'zip', /^Error extracting zip archive: 'a.txt' cannot be inflated: /);
  });

  it('reports a missing bundle', async () => {
    const dest = join(dir, 'deployment-archive');
    await expect(unpackBundle(join(dir, 'missing.tar'), 'tar', dest)).rejects.toThrow(/^Error extracting tar archive: ENOENT/);
    expect(existsSync(dest)).toBe(false);
  });

  it('stops when aborted and removes what it wrote', async () => {
    const entries = Array.from({ length: 3000 }, (_, i) => ({ name: `f${i}`, data: 'x'.repeat(100) }));
    const bundle = join(dir, 'bundle.tar');
    writeFileSync(bundle, rawTar(entries));
    const controller = new AbortController();
    const dest = join(dir, 'deployment-archive');
    const unpacking = unpackBundle(bundle, 'tar', dest, { signal: controller.signal });
    setImmediate(() => controller.abort());
    await expect(unpacking).rejects.toMatchObject({ name: 'AbortError' });
    expect(existsSync(dest)).toBe(false);
  });
});
