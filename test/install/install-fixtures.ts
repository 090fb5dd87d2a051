import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AppSpec, FileMapping, Permission } from '../../src/appspec/types.js';
import { formatOriginalAttributes } from '../../src/archive/original-attributes.js';
import { deploymentPaths } from '../../src/deployment/layout.js';

export type TreeSpec = Record<string, string | { content: string | Buffer; mode?: number } | { link: string } | { dir: true; mode?: number }>;

/** Write files, links and directories below `root`; parents are created as needed. */
export function writeTree(root: string, tree: TreeSpec): void {
  mkdirSync(root, { recursive: true });
  for (const [relativePath, spec] of Object.entries(tree)) {
    const path = join(root, relativePath);
    mkdirSync(dirname(path), { recursive: true });
    if (typeof spec === 'string') {
      writeFileSync(path, spec);
    } else if ('link' in spec) {
      symlinkSync(spec.link, path);
    } else if ('dir' in spec) {
      mkdirSync(path, { recursive: true });
      if (spec.mode !== undefined) chmodSync(path, spec.mode);
    } else {
      writeFileSync(path, spec.content);
      if (spec.mode !== undefined) chmodSync(path, spec.mode);
    }
  }
}

/**
 * A revision's archive folder under the deployment root, filled with `tree`, as DownloadBundle leaves
 * one: with the file beside it that says what the bundle's files had (nothing here; a test that changes
 * owners or modes in the folder afterwards installs what the folder then holds).
 */
export function makeRevision(rootDir: string, deploymentId: string, tree: TreeSpec, groupId = 'grp'): string {
  const { archiveDir, archiveAttributesFile } = deploymentPaths(rootDir, groupId, deploymentId);
  writeTree(archiveDir, tree);
  writeFileSync(archiveAttributesFile, formatOriginalAttributes(new Map()));
  return archiveDir;
}

/** What a deployment folder holds once Install is done: nothing of Install's own (its backup is gone). */
export const DEPLOYMENT_FOLDER_AFTER_INSTALL = ['archive-attributes.json', 'deployment-archive'];

export function makeAppSpec(files: FileMapping[], permissions: Partial<Permission>[] = [], fileExistsBehavior?: AppSpec['fileExistsBehavior']): AppSpec {
  return {
    version: '0.0',
    os: 'linux',
    files,
    permissions: permissions.map((p) => ({ object: '/', pattern: '**', except: [], type: ['file', 'directory'], ...p })),
    hooks: {},
    fileExistsBehavior,
    path: 'appspec.yml',
  };
}

/**
 * Everything observable about a tree, one line per entry: type, mode, owner, content hash or link
 * target, and the modification time to the nearest millisecond (restored times go through a float) (directories included: their times say whether
 * entries were added or removed).
 */
export function snapshot(root: string): string[] {
  const lines: string[] = [];
  const visit = (path: string) => {
    const stats = lstatSync(path);
    const base = `${path.slice(root.length) || '/'} ${(stats.mode & 0o177777).toString(8)} ${stats.uid}:${stats.gid} ${Math.round(stats.mtimeMs)}`;
    if (stats.isSymbolicLink()) lines.push(`${base} -> ${readlinkSync(path)}`);
    else if (stats.isDirectory()) {
      lines.push(base);
      for (const name of readdirSync(path).sort()) visit(join(path, name));
    } else lines.push(`${base} ${createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)}`);
  };
  visit(root);
  return lines;
}

export function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
