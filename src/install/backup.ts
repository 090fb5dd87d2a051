import fs from 'node:fs';
import { lstat, rename, rm, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { onlyRootChanges } from '../util/folder-trust.js';
import { removeTree } from '../util/remove-tree.js';
import { copyPreserving } from './preserving-copy.js';

/**
 * The backup folder of an Install (`install-backup` in the deployment folder): entry `n` is the n-th
 * path moved aside, `previous-cleanup` and `previous-install.json` what those two files held.
 */

/** The names of the saved cleanup file and install.json in the backup folder (no entry is named so). */
export const SAVED_CLEANUP = 'previous-cleanup';
export const SAVED_INSTALL_JSON = 'previous-install.json';

/**
 * `rename`, or across file systems a preserving copy to `<to>.part`, renamed to `to` once complete,
 * then removal of the original: `to` existing always means a complete copy.
 */
export async function moveEntry(from: string, to: string): Promise<'renamed' | 'copied'> {
  try {
    await rename(from, to);
    return 'renamed';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
  }
  const part = `${to}.part`;
  await rm(part, { recursive: true, force: true });
  try {
    await copyPreserving(from, part);
    await rename(part, to);
  } catch (error) {
    await rm(part, { recursive: true, force: true });
    throw error;
  }
  await removeEntry(from);
  return 'copied';
}

/**
 * Deletes the backup folder. A folder moved into it that its owner (or anyone) may write can have gained
 * entries since, symlinks included: the backup is then removed by removeTree, which never follows a
 * symlink swapped in while it runs. Folders are moved only once empty, and the backup folder itself is
 * the agent's alone (0700).
 */
export async function removeBackup(dir: string): Promise<void> {
  const uid = process.geteuid?.() ?? 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const othersCouldWrite = entries.some((entry) => entry.isDirectory() && !onlyRootChanges(fs.lstatSync(join(dir, entry.name)), uid));
  if (othersCouldWrite) await removeTree(dir);
  else await rm(dir, { recursive: true, force: true });
}

/** Removes one file, link or empty directory. */
export async function removeEntry(path: string): Promise<void> {
  const stats = await lstat(path);
  if (stats.isDirectory()) await rmdir(path);
  else await unlink(path);
}

export async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

export function writeDurably(path: string, content: string): void {
  const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.writeFileSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
