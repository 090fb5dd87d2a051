import { constants } from 'node:fs';
import { chmod, copyFile, lchown, lstat, lutimes, mkdir, readlink, symlink, utimes } from 'node:fs/promises';

/**
 * Copy one file, link or (empty) directory with its mode, owner and times, as `cp -a` would, for moves
 * between file systems where `rename` fails with EXDEV. ACLs and extended attributes are not carried.
 */
export async function copyPreserving(from: string, to: string): Promise<void> {
  const stats = await lstat(from);
  if (stats.isSymbolicLink()) {
    await symlink(await readlink(from), to);
    await lchownIfRoot(to, stats.uid, stats.gid);
    await lutimes(to, stats.atimeMs / 1000, stats.mtimeMs / 1000);
    return;
  }
  if (stats.isDirectory()) {
    await mkdir(to);
  } else if (stats.isFile()) {
    await copyFile(from, to, constants.COPYFILE_EXCL);
  } else {
    throw new Error(`${from} is not a regular file, directory or symbolic link and cannot be copied to ${to}`);
  }
  await lchownIfRoot(to, stats.uid, stats.gid);
  // After chown: changing the owner clears setuid and setgid.
  await chmod(to, stats.mode & 0o7777);
  await utimes(to, stats.atimeMs / 1000, stats.mtimeMs / 1000);
}

async function lchownIfRoot(path: string, uid: number, gid: number): Promise<void> {
  if (process.getuid?.() === 0) await lchown(path, uid, gid);
}
