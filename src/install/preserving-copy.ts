import fs from 'node:fs';
import { copyIntoNewFile, createSymlinkSync, restoreDirectorySync } from '../util/file-jobs/destination.js';
import { attributesOf } from '../util/file-jobs/inode-attributes.js';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/**
 * Copy one file, link or (empty) directory with its mode, owner and times, as `cp -a` would, for moves
 * between file systems where `rename` fails with EXDEV. ACLs and extended attributes are not carried.
 *
 * Either end may be a destination entry named by descriptor path (./destination-tree.ts), in a folder
 * another user can write: the source is opened without following it and copied from that descriptor,
 * the copy is created with O_EXCL and finished through its own descriptor (../util/file-jobs/destination.ts).
 */
export async function copyPreserving(from: string, to: string): Promise<void> {
  const stats = fs.lstatSync(from);
  // As root the copy keeps its owner; a new inode is already the agent's otherwise.
  const asRoot = process.getuid?.() === 0;
  const attributes = attributesOf(stats, asRoot);
  if (stats.isSymbolicLink()) {
    createSymlinkSync(to, fs.readlinkSync(from), attributes);
    return;
  }
  if (stats.isDirectory()) {
    fs.mkdirSync(to, { mode: 0o700 });
    restoreDirectorySync(to, attributes, true);
    return;
  }
  // O_NONBLOCK: a FIFO swapped in since the lstat would block the open forever; fstat then refuses it.
  const source = fs.openSync(from, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  try {
    // The attributes of what was opened, not of what the lstat saw: another user may have swapped it since.
    const opened = fs.fstatSync(source);
    if (!opened.isFile()) throw new Error(`${from} is not a regular file, directory or symbolic link and cannot be copied to ${to}`);
    fs.closeSync(await copyIntoNewFile(source, to, attributesOf(opened, asRoot)));
  } finally {
    fs.closeSync(source);
  }
}
