import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { archiveMode, type OriginalAttributes } from '../../../src/archive/original-attributes.js';

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

/** `nodes` as the unpacked copy holds them: the agent's, without setuid, setgid, or group/other write. */
export function asArchiveCopy(nodes: readonly TreeNode[]): TreeNode[] {
  const uid = process.geteuid!();
  const gid = process.getegid!();
  return nodes.map((node) => ({ ...node, uid, gid, mode: node.type === 'symlink' ? node.mode : archiveMode(node.mode) }));
}

/**
 * The unpacked copy's nodes with what unpacking recorded of the bundle given back (files and links; a
 * folder's own attributes are never installed, so they stay as the copy has them).
 */
export function withOriginals(nodes: readonly TreeNode[], originals: ReadonlyMap<string, OriginalAttributes>): TreeNode[] {
  return nodes.map((node) => {
    const original = originals.get(node.path);
    if (!original) return node;
    return { ...node, mode: node.type === 'symlink' ? node.mode : original.mode, uid: original.uid ?? node.uid, gid: original.gid ?? node.gid };
  });
}

/** What Install sees of a bundle: its files and links as they were, its folders as the unpacked copy has them. */
export function asInstalled(nodes: readonly TreeNode[]): TreeNode[] {
  return nodes.map((node) => (node.type === 'directory' ? asArchiveCopy([node])[0] : node));
}
