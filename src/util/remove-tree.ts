import { execFile } from 'node:child_process';
import { findTool } from './find-tool.js';

/**
 * Removes a folder tree that may hold folders of other users (an unpacked revision keeps the owners its
 * archive carried), without ever following a symlink swapped in while it runs. Node's `fs.rm` walks by
 * path: a user who owns a folder inside the tree can replace one of its sub-folders with a symlink
 * between the check and the descent, and root then empties the link's target. GNU rm walks with fts on
 * descriptors (openat, O_NOFOLLOW, device and inode checked after each descent), which is what it was
 * hardened for; `--one-file-system` keeps it off anything mounted inside. A missing path is not an error.
 */
export async function removeTree(path: string): Promise<void> {
  const rm = findTool('rm');
  if (!rm) throw new Error('the rm command (coreutils) is missing');
  await new Promise<void>((resolve, reject) => {
    execFile(rm, ['-rf', '--one-file-system', '--', path], { maxBuffer: 64 * 1024 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`rm -rf ${path} failed: ${String(stderr).trim() || error.message}`));
      else resolve();
    });
  });
}
