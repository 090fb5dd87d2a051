import { readdir, rm, lstat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from '../log/logger.js';
import { groupDir } from './layout.js';
import { readLastSuccessfulInstall } from './markers.js';

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
 * The group's old deployment folders the next DownloadBundle deletes (full paths), read from the
 * disk without changing it: what `cleanupOldRevisions` deletes, and what the dry run shows.
 */
export async function revisionsToDelete(rootDir: string, groupId: string, currentDeploymentDir: string, maxRevisions: number): Promise<string[]> {
  const dir = groupDir(rootDir, groupId);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const entries: RevisionEntry[] = [];
  for (const name of names) {
    try {
      entries.push({ name, mtimeMs: (await lstat(join(dir, name))).mtimeMs });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
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
  for (const path of await revisionsToDelete(rootDir, groupId, currentDeploymentDir, maxRevisions)) {
    try {
      logger.info(`Deleting old revision ${path} (keeping at most ${maxRevisions} revisions)`);
      await rm(path, { recursive: true, force: true });
      deleted.push(path);
    } catch (error) {
      logger.warn(`Could not delete old revision ${path}: ${(error as Error).message}`);
    }
  }
  return deleted;
}
