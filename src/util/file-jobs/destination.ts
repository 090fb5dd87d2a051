import fs from 'node:fs';
import { descriptorPath, O_PATH } from '../descriptor-path.js';
import { changesOwner, creationMode, needsChmod, nowSeconds, type InodeAttributes } from './inode-attributes.js';

/**
 * Every operation that creates or finishes an inode at a destination (unpacking, copying a revision
 * folder, Install), in the agent's thread and in the file workers alike. New files are opened with
 * O_EXCL and O_NOFOLLOW, and mode, owner and times are set through that descriptor, so they always land
 * on the inode the agent created, never on whatever a symlink points at.
 *
 * The order is the rule: chown before chmod, because chown(2) clears setuid and setgid; chmod whenever
 * the creation mode may have come out wrong (see needsChmod); the times last.
 *
 * A path given here may be a descriptor path (../descriptor-path.ts): Install names its destinations as
 * `/proc/<pid>/fd/<folder>/<name>`, so that no folder on the way is looked up by name again (see
 * ../../install/destination-tree.ts). Nothing here looks a path up twice, and nothing after the creation
 * goes by path: what is set afterwards is set on the descriptor of the inode just made.
 */

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY, COPYFILE_FICLONE } = fs.constants;
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
const DIRECTORY_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

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

/**
 * Restores a directory's attributes; O_NOFOLLOW makes this fail rather than follow a symlink. With
 * `justCreated`, the directory must belong to the agent: in a folder another user owns, the name may
 * hold that user's own directory by now, which must not get the attributes.
 */
export function restoreDirectorySync(path: string, attributes: InodeAttributes, justCreated = false): void {
  const fd = fs.openSync(path, DIRECTORY_FLAGS);
  try {
    if (justCreated && fs.fstatSync(fd).uid !== process.geteuid?.()) {
      throw Object.assign(new Error(`EEXIST: the directory just created was replaced, mkdir '${path}'`), { code: 'EEXIST', path });
    }
    restoreOnDescriptor(fd, attributes, true);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Creates a symlink and gives the link itself (not its target) the owner and times; a link has no mode of
 * its own. The link is opened (O_PATH | O_NOFOLLOW) and changed through that descriptor: in a folder
 * another user owns, the name may already hold something else when the owner is set.
 */
export function createSymlinkSync(path: string, target: string, attributes: InodeAttributes | undefined): void {
  fs.symlinkSync(target, path);
  if (!attributes || (!changesOwner(attributes) && attributes.mtime === undefined)) return;
  const fd = fs.openSync(path, O_PATH | O_NOFOLLOW);
  try {
    const stats = fs.fstatSync(fd);
    // Nobody else can make a link that belongs to the agent.
    if (!stats.isSymbolicLink() || stats.uid !== process.geteuid?.()) {
      throw Object.assign(new Error(`EEXIST: the symbolic link just created was replaced, symlink '${path}'`), { code: 'EEXIST', path });
    }
    // chown and utimes follow the descriptor path to the link itself, never the link's target.
    if (changesOwner(attributes)) fs.chownSync(descriptorPath(fd), attributes.uid ?? -1, attributes.gid ?? -1);
    if (attributes.mtime !== undefined) fs.utimesSync(descriptorPath(fd), attributes.atime ?? nowSeconds(), attributes.mtime);
  } finally {
    fs.closeSync(fd);
  }
}

/** Removes what a failed job created, so a failure leaves no half-made file behind. */
export function removeCreatedSync(path: string): void {
  fs.rmSync(path, { force: true });
}

/*
 * Large files: the new file is created as every file is (createFileSync), then filled by copyFile from
 * the source's descriptor into the new file's (a reflink where the file system has them, else
 * copy_file_range), both named by descriptor path so neither end is looked up by name; the owner, the
 * exact mode (copyFile gave the source's) and the times are then set on the new file's descriptor. The
 * two functions below are one rule, in a worker's synchronous calls and on the agent's thread without
 * holding its event loop. Each returns the new file's descriptor, finished; the caller closes it.
 */

/** Private until restoreOnDescriptor: and writable through its descriptor path, whatever mode it will get. */
const COPY_CREATION_MODE = 0o600;

export function copyIntoNewFileSync(source: number, to: string, attributes: InodeAttributes): number {
  const fd = fs.openSync(to, CREATE_FLAGS, COPY_CREATION_MODE);
  try {
    fs.copyFileSync(descriptorPath(source), descriptorPath(fd), COPYFILE_FICLONE);
    restoreOnDescriptor(fd, attributes, true);
    return fd;
  } catch (error) {
    fs.closeSync(fd);
    removeCreatedSync(to);
    throw error;
  }
}

export async function copyIntoNewFile(source: number, to: string, attributes: InodeAttributes): Promise<number> {
  const fd = fs.openSync(to, CREATE_FLAGS, COPY_CREATION_MODE);
  try {
    await fs.promises.copyFile(descriptorPath(source), descriptorPath(fd), COPYFILE_FICLONE);
    restoreOnDescriptor(fd, attributes, true);
    return fd;
  } catch (error) {
    fs.closeSync(fd);
    removeCreatedSync(to);
    throw error;
  }
}
