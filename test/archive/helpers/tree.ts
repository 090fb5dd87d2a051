import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export interface TreeNode {
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  mode: number;
  /** Whole seconds: zip and tar keep no more. */
  mtime: number;
  uid: number;
  gid: number;
  sha1?: string;
  target?: string;
}

/** Everything under `root` (not root itself), sorted by path, never following symlinks. */
export function snapshotTree(root: string): TreeNode[] {
  const nodes: TreeNode[] = [];
  const walk = (relative: string) => {
    for (const name of readdirSync(join(root, relative)).sort()) {
      const path = relative ? `${relative}/${name}` : name;
      const absolute = join(root, path);
      const stats = lstatSync(absolute);
      const node: TreeNode = {
        path,
        type: stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : stats.isSymbolicLink() ? 'symlink' : 'other',
        mode: stats.mode & 0o7777,
        mtime: Math.floor(stats.mtimeMs / 1000),
        uid: stats.uid,
        gid: stats.gid,
      };
      if (node.type === 'file') node.sha1 = createHash('sha1').update(readFileSync(absolute)).digest('hex');
      if (node.type === 'symlink') {
        node.target = readlinkSync(absolute);
        node.mode = 0;
      }
      nodes.push(node);
      if (node.type === 'directory') walk(path);
    }
  };
  walk('');
  return nodes;
}

/** The paths under `root`, sorted; for "nothing else was written here" checks. */
export function listTree(root: string): string[] {
  return snapshotTree(root).map((node) => node.path);
}

/** Gives the owner write access everywhere under `root`, so a non-root test can delete read-only folders. */
export function makeOwnerWritable(root: string): void {
  for (const node of snapshotTree(root)) {
    if (node.type === 'directory') chmodSync(join(root, node.path), node.mode | 0o700);
  }
}
