import { createWriteStream, chmodSync, lchownSync, linkSync, lutimesSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import yazl from 'yazl';
import { snapshotTree } from './tree.js';

export const AS_ROOT = process.getuid?.() === 0;
/** Larger than both the unpacker's whole-read limits, so the streamed paths run too. */
export const BIG_FILE_SIZE = 1536 * 1024 + 7;

function pseudoRandom(size: number, seed: number): Buffer {
  const data = Buffer.alloc(size);
  let state = seed;
  for (let i = 0; i < size; i++) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    data[i] = state >> 16;
  }
  return data;
}

/**
 * A revision with what unpacking must keep: exact modes (0755, 0600, setuid, a read-only folder),
 * symlinks to files, folders and nowhere, empty and nested folders, spaces and non-ASCII names, a
 * file above the streaming threshold, a hard link and, as root, a file owned by someone else.
 * Every inode gets its own mtime, set deepest first so writing a child does not move its parent's.
 */
export function makeSampleTree(root: string): void {
  const files: [string, string | Buffer, number][] = [
    ['appspec.yml', 'version: 0.0\nos: linux\n', 0o644],
    ['scripts/start.sh', '#!/bin/sh\necho start\n', 0o755],
    ['scripts/stop.sh', '#!/bin/sh\necho stop\n', 0o700],
    ['secret/key.pem', 'not really a key\n', 0o600],
    ['bin/suid-tool', '#!/bin/sh\n', 0o4755],
    ['deep/a/b/c/d.txt', 'deep\n', 0o644],
    ['with space/file name.txt', 'spaces\n', 0o644],
    ['ünïcødé/日本語 ファイル.txt', 'unicode\n', 0o640],
    ['big.bin', pseudoRandom(BIG_FILE_SIZE, 7), 0o644],
    ['readonly/inside.txt', 'locked\n', 0o444],
    ['owned.txt', 'owned by someone else\n', 0o644],
  ];
  const directories: [string, number][] = [
    ['scripts', 0o755],
    ['secret', 0o700],
    ['bin', 0o755],
    ['empty', 0o755],
    ['empty/nested-empty', 0o750],
    ['deep', 0o755],
    ['deep/a', 0o755],
    ['deep/a/b', 0o755],
    ['deep/a/b/c', 0o755],
    ['with space', 0o755],
    ['ünïcødé', 0o755],
    ['readonly', 0o555],
    ['links', 0o755],
  ];
  const symlinks: [string, string][] = [
    ['links/to-start', '../scripts/start.sh'],
    ['links/to-dir', '../deep/a'],
    ['links/dangling', '../missing-file'],
  ];
  for (const [path] of directories) mkdirSync(join(root, path), { recursive: true });
  for (const [path, data] of files) writeFileSync(join(root, path), data);
  for (const [path, target] of symlinks) symlinkSync(target, join(root, path));
  linkSync(join(root, 'appspec.yml'), join(root, 'hardlink-to-appspec.yml'));
  if (AS_ROOT) chmodOwner(join(root, 'owned.txt'));

  let time = 1_600_000_000;
  const touch = (path: string) => {
    time += 3600;
    lutimesSync(path, time, time);
  };
  for (const [path, , mode] of files) {
    chmodSync(join(root, path), mode);
    touch(join(root, path));
  }
  for (const [path] of symlinks) touch(join(root, path));
  for (const [path, mode] of [...directories].reverse()) {
    chmodSync(join(root, path), mode);
    touch(join(root, path));
  }
  chmodSync(root, 0o755);
}

function chmodOwner(path: string): void {
  lchownSync(path, 4321, 4322);
}

/** A zip of `root` made with yazl, with Unix modes (symlinks as S_IFLNK entries) and mtimes. */
export async function zipTree(root: string, zipPath: string): Promise<void> {
  const zip = new yazl.ZipFile();
  for (const node of snapshotTree(root)) {
    const mtime = new Date(node.mtime * 1000);
    if (node.type === 'directory') zip.addEmptyDirectory(node.path, { mode: 0o040000 | node.mode, mtime });
    else if (node.type === 'file') zip.addBuffer(readFileSync(join(root, node.path)), node.path, { mode: 0o100000 | node.mode, mtime });
    else if (node.type === 'symlink') zip.addBuffer(Buffer.from(node.target!), node.path, { mode: 0o120777, mtime, compress: false });
  }
  zip.end();
  const out = createWriteStream(zipPath);
  zip.outputStream.pipe(out);
  await once(out, 'close');
}
