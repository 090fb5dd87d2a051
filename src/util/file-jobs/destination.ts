import fs from 'node:fs';
import { changesOwner, creationMode, needsChmod, nowSeconds, type InodeAttributes } from './inode-attributes.js';

/**
 * Every operation that creates or finishes an inode at a destination (unpacking, copying a revision
 * folder, Install), in the agent's thread and in the file workers alike. New files are opened with
 * O_EXCL and O_NOFOLLOW, and mode, owner and times are set through that descriptor, so they always land
 * on the inode the agent created, never on whatever a symlink points at.
 *
 * The order is the rule: chown before chmod, because chown(2) clears setuid and setgid; chmod whenever
 * the creation mode may have come out wrong (see needsChmod); the times last.
 */

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY, COPYFILE_EXCL, COPYFILE_FICLONE } = fs.constants;
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
const DIRECTORY_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
/** Large copies: a reflink where the file system has them, else copy_file_range; never over an existing file. */
const COPY_FLAGS = COPYFILE_EXCL | COPYFILE_FICLONE;

function restoreOnDescriptor(fd: number, attributes: InodeAttributes, chmod: boolean): void {
  if (changesOwner(attributes)) fs.fchownSync(fd, attributes.uid ?? -1, attributes.gid ?? -1);
  if (chmod) fs.fchmodSync(fd, attributes.mode);
  if (attributes.mtime !== undefined) fs.futimesSync(fd, attributes.atime ?? nowSeconds(), attributes.mtime);
}

/** Creates `path`, which must not exist (not even as a symlink), open for writing; finish it with finishFileSync. */
export function createFileSync(path: string, attributes: InodeAttributes, umask: number): number {
  return fs.openSync(path, CREATE_FLAGS, creationMode(attributes, umask));
}

/** Gives a file made by createFileSync (same attributes and umask) its owner, exact mode and times. */
export function finishFileSync(fd: number, attributes: InodeAttributes, umask: number): void {
  restoreOnDescriptor(fd, attributes, needsChmod(attributes, umask));
}

/** Restores a directory's attributes; O_NOFOLLOW makes this fail rather than follow a symlink. */
export function restoreDirectorySync(path: string, attributes: InodeAttributes): void {
  const fd = fs.openSync(path, DIRECTORY_FLAGS);
  try {
    restoreOnDescriptor(fd, attributes, true);
  } finally {
    fs.closeSync(fd);
  }
}

/** Creates a symlink and gives the link itself (not its target) the owner and times; a link has no mode of its own. */
export function createSymlinkSync(path: string, target: string, attributes: InodeAttributes | undefined): void {
  fs.symlinkSync(target, path);
  if (!attributes) return;
  if (changesOwner(attributes)) fs.lchownSync(path, attributes.uid ?? -1, attributes.gid ?? -1);
  if (attributes.mtime !== undefined) fs.lutimesSync(path, attributes.atime ?? nowSeconds(), attributes.mtime);
}

/** Removes what a failed job created, so a failure leaves no half-made file behind. */
export function removeCreatedSync(path: string): void {
  fs.rmSync(path, { force: true });
}

/*
 * Large files are copied with copyFile, which gives the copy the source's exact mode; then owner and
 * times by path, on the inode the copy just created (COPYFILE_EXCL). The two functions below are one
 * rule, in a worker's synchronous calls and on the agent's thread without holding its event loop.
 */

export function copyLargeFileSync(from: string, to: string, attributes: InodeAttributes): void {
  fs.copyFileSync(from, to, COPY_FLAGS);
  try {
    if (changesOwner(attributes)) {
      fs.lchownSync(to, attributes.uid ?? -1, attributes.gid ?? -1);
      fs.chmodSync(to, attributes.mode);
    }
    fs.utimesSync(to, attributes.atime ?? nowSeconds(), attributes.mtime ?? nowSeconds());
  } catch (error) {
    removeCreatedSync(to);
    throw error;
  }
}

export async function copyLargeFile(from: string, to: string, attributes: InodeAttributes): Promise<void> {
  await fs.promises.copyFile(from, to, COPY_FLAGS);
  try {
    if (changesOwner(attributes)) {
      await fs.promises.lchown(to, attributes.uid ?? -1, attributes.gid ?? -1);
      await fs.promises.chmod(to, attributes.mode);
    }
    const now = nowSeconds();
    await fs.promises.utimes(to, attributes.atime ?? now, attributes.mtime ?? now);
  } catch (error) {
    await fs.promises.rm(to, { force: true });
    throw error;
  }
}
