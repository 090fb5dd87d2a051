import type { Stats } from 'node:fs';

/**
 * Who can change a path: the one rule for "only root may change this", shared by the operator hooks'
 * check and the walk of destination paths (../install/destination-tree.ts). A file or folder that
 * belongs to root (or the agent's own user) and that neither its group nor others may write can be
 * changed by root alone; a sticky folder (mode +t, like /tmp) may be writable by all, because nobody but
 * root and an entry's owner can rename or remove the entries root put there.
 */

/** Why `stats` of `path` lets someone other than root change it, or undefined. */
export function ownershipProblem(path: string, stats: Pick<Stats, 'uid' | 'gid' | 'mode' | 'isDirectory'>, agentUid: number, stickyAllowed: boolean): string | undefined {
  if (stats.uid !== 0 && stats.uid !== agentUid) return `${path} belongs to uid ${stats.uid}, not to root`;
  if ((stats.mode & 0o022) !== 0 && !(stickyAllowed && stats.isDirectory() && (stats.mode & 0o1000) !== 0)) {
    return `${path} is writable by ${(stats.mode & 0o002) !== 0 ? 'everyone' : `its group (gid ${stats.gid})`} (mode ${(stats.mode & 0o7777).toString(8).padStart(4, '0')})`;
  }
  return undefined;
}

/** Whether nobody but root (or the agent) can add, rename or remove entries of this folder. */
export function onlyRootChanges(stats: Pick<Stats, 'uid' | 'gid' | 'mode' | 'isDirectory'>, agentUid: number): boolean {
  return ownershipProblem('', stats, agentUid, true) === undefined;
}
