import fs from 'node:fs';
import { promisify } from 'node:util';

/**
 * The file-system writes of unpacking, each through a file descriptor opened with O_NOFOLLOW (and
 * O_EXCL for new files), so ownership, mode and times always land on the inode the agent created,
 * never on whatever a symlink points at.
 *
 * Small files are written by a FileJobPool (../util/file-job-pool.ts) with the same rules, in worker
 * threads: with tens of thousands of small files the system calls that create them, not the bytes,
 * are most of the time. Large files stream here, asynchronously, one chunk at a time, so the event
 * loop is never held for long.
 */

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = fs.constants;
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
const DIRECTORY_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

const writeFd = promisify(fs.write);

/** What to restore on an unpacked inode. `uid`/`gid` are set only when ownership must change. */
export interface InodeAttributes {
  /** Exact permission bits, setuid/setgid/sticky included. */
  mode: number;
  mtime?: Date;
  atime: Date;
  uid?: number;
  gid?: number;
}

/**
 * Whether the mode given to open(2) may come out wrong and needs an explicit fchmod: the umask
 * strips bits, and chown(2) clears setuid and setgid (even for root).
 */
function needsChmod(attributes: InodeAttributes, umask: number): boolean {
  return (attributes.mode & 0o7000) !== 0 || (attributes.mode & umask) !== 0 || attributes.uid !== undefined || attributes.gid !== undefined;
}

function restoreAttributesSync(fd: number, attributes: InodeAttributes, chmod: boolean): void {
  // chown before chmod: chown(2) clears setuid and setgid.
  if (attributes.uid !== undefined || attributes.gid !== undefined) fs.fchownSync(fd, attributes.uid ?? -1, attributes.gid ?? -1);
  if (chmod) fs.fchmodSync(fd, attributes.mode);
  if (attributes.mtime) fs.futimesSync(fd, attributes.atime, attributes.mtime);
}

function createFileSync(path: string, attributes: InodeAttributes, umask: number): { fd: number; chmod: boolean } {
  const chmod = needsChmod(attributes, umask);
  // When a chmod follows, the file starts private rather than briefly wider than the archive says.
  return { fd: fs.openSync(path, CREATE_FLAGS, chmod ? 0o600 : attributes.mode), chmod };
}

/**
 * Creates `path` from content too large to hold in memory. Each chunk is written before the next is
 * read, so the source is paused for as long as the disk is slower than it.
 */
export async function writeStreamedFile(
  path: string,
  chunks: AsyncIterable<Buffer>,
  attributes: InodeAttributes,
  umask: number,
  signal?: AbortSignal,
): Promise<void> {
  const { fd, chmod } = createFileSync(path, attributes, umask);
  try {
    for await (const chunk of chunks) {
      signal?.throwIfAborted();
      for (let offset = 0; offset < chunk.length; ) {
        offset += (await writeFd(fd, chunk, offset, chunk.length - offset, null)).bytesWritten;
      }
    }
    restoreAttributesSync(fd, attributes, chmod);
  } finally {
    fs.closeSync(fd);
  }
}

/** Restores a directory's attributes; O_NOFOLLOW makes this fail rather than follow a symlink. */
export function restoreDirectoryAttributesSync(path: string, attributes: InodeAttributes): void {
  const fd = fs.openSync(path, DIRECTORY_FLAGS);
  try {
    restoreAttributesSync(fd, attributes, true);
  } finally {
    fs.closeSync(fd);
  }
}

/** Creates a symlink and gives the link itself (not its target) the owner and time. */
export function writeSymlinkSync(path: string, target: string, attributes: InodeAttributes): void {
  fs.symlinkSync(target, path);
  if (attributes.uid !== undefined || attributes.gid !== undefined) fs.lchownSync(path, attributes.uid ?? -1, attributes.gid ?? -1);
  if (attributes.mtime) fs.lutimesSync(path, attributes.atime, attributes.mtime);
}
