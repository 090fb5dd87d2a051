import { readdir, lstat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from '../log/logger.js';
import { removeTree } from '../util/remove-tree.js';
import { groupDir } from './layout.js';
import { readLastSuccessfulInstall } from './markers.js';
import { isDeploymentFolderEntry, isDeploymentFolderName } from './folder-names.js';

export interface RevisionEntry {
  /** Folder name under ROOT/<group> (the deployment id). */
  name: string;
  mtimeMs: number;
}

/**
 * Which deployment folders to delete so that at most `maxRevisions` remain (agent-spec §3.6): the
 * current one and the last successful one are never candidates, the oldest by mtime go first.
 * The count of extras is taken before the last successful one is set aside, as the anchor does, so
 * protecting it never lets the group grow past the limit.
 */
export function selectRevisionsToDelete(
  entries: readonly RevisionEntry[],
  current: string,
  lastSuccessful: string | undefined,
  maxRevisions: number,
): string[] {
  const others = entries.filter((entry) => entry.name !== current);
  const extra = others.length - maxRevisions + 1;
  if (extra <= 0) return [];
  return others
    .filter((entry) => entry.name !== lastSuccessful)
    .sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .slice(0, extra)
    .map((entry) => entry.name);
}

/**
 * Whether a group folder's entry is a deployment folder of the agent's, the only thing retention may
 * delete: named like one (`d-` + nine capitals or digits, `-local` for `deploy`'s), a real folder (never
 * a symlink), owned by the agent's user, and empty or holding something the agent puts there
 * (deployment-archive, bundle.tar, logs...). Anything else found in a group folder is left alone.
 */
export async function isAgentDeploymentFolder(path: string, name: string, stats: Stats, uid = process.geteuid?.()): Promise<boolean> {
  if (!isDeploymentFolderName(name) || !stats.isDirectory() || (uid !== undefined && stats.uid !== uid)) return false;
  const inside = await readdir(path);
  return inside.length === 0 || inside.some(isDeploymentFolderEntry);
}

/**
 * The group's old deployment folders the next DownloadBundle deletes (full paths), read from the
 * disk without changing it: what `cleanupOldRevisions` deletes, and what the dry run shows. Only the
 * agent's own deployment folders count and go (isAgentDeploymentFolder); others are named once to `logger`.
 */
export async function revisionsToDelete(
  rootDir: string,
  groupId: string,
  currentDeploymentDir: string,
  maxRevisions: number,
  logger?: Logger,
): Promise<string[]> {
  const dir = groupDir(rootDir, groupId);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const entries: RevisionEntry[] = [];
  const strangers: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    try {
      const stats = await lstat(path);
      if (await isAgentDeploymentFolder(path, name, stats)) entries.push({ name, mtimeMs: stats.mtimeMs });
      else if (path !== resolve(currentDeploymentDir)) strangers.push(name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  if (strangers.length > 0) {
    logger?.warn(`${dir} holds ${strangers.map((name) => `'${name}'`).join(', ')}, which the agent did not make as a deployment folder; retention leaves ${strangers.length === 1 ? 'it' : 'them'} alone`);
  }
  const lastSuccessfulDir = readLastSuccessfulInstall(rootDir, groupId);
  // The pointer holds a full path; only a folder of this group can be protected by it.
  const lastSuccessful =
    lastSuccessfulDir !== undefined && resolve(dirname(lastSuccessfulDir)) === resolve(dir) ? basename(lastSuccessfulDir) : undefined;
  return selectRevisionsToDelete(entries, basename(currentDeploymentDir), lastSuccessful, maxRevisions).map((name) => join(dir, name));
}

/**
 * Delete the group's old deployment folders before a new bundle is downloaded. A folder that cannot be
 * deleted is logged and skipped: a full disk is better reported by the download than by this tidy-up.
 */
export async function cleanupOldRevisions(
  rootDir: string,
  groupId: string,
  currentDeploymentDir: string,
  maxRevisions: number,
  logger: Logger,
): Promise<string[]> {
  const deleted: string[] = [];
  for (const path of await revisionsToDelete(rootDir, groupId, currentDeploymentDir, maxRevisions, logger)) {
    try {
      logger.info(`Deleting old revision ${path} (keeping at most ${maxRevisions} revisions)`);
      // Never through a symlink, at the top or swapped in below while it runs (see removeTree).
      await removeTree(path);
      deleted.push(path);
    } catch (error) {
      logger.warn(`Could not delete old revision ${path}: ${(error as Error).message}`);
    }
  }
  return deleted;
}
