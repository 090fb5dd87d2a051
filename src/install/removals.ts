import { resolve } from 'node:path';
import type { CleanupEntry } from './cleanup-file.js';
import type { PathState, RemovalOperation } from './types.js';

/**
 * What removing the previous deployment's files will do (docs/compatibility.md, "Install and cleanup"), worked out from the scan
 * instead of the disk so that a refused deployment removes nothing: entries in reverse order, links and
 * files go, a directory goes only if everything in it goes too (a non-empty one is kept, silently),
 * missing paths are skipped.
 */
export function planRemovals(
  entries: readonly CleanupEntry[],
  destination: ReadonlyMap<string, PathState>,
  children: ReadonlyMap<string, readonly string[]>,
  cwd: string,
): { removals: RemovalOperation[]; removed: Set<string> } {
  const removals: RemovalOperation[] = [];
  const removed = new Set<string>();
  for (let index = entries.length - 1; index >= 0; index--) {
    const entry = entries[index];
    const path = resolve(cwd, entry.path);
    if (entry.kind === 'semanage') {
      removals.push({ type: 'semanage-delete', path: entry.path });
      continue;
    }
    const state = destination.get(path);
    if (state === undefined || removed.has(path)) continue;
    if (state.type === 'directory' && !(children.get(path) ?? []).every((child) => removed.has(child))) continue;
    removed.add(path);
    removals.push({ type: 'remove', path, entryType: state.type });
  }
  return { removals, removed };
}
