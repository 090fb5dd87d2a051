import { ArchiveError } from '../report/errors.js';
import type { EntryKind } from './archive-entry.js';

/**
 * The rules that keep a bundle inside its deployment-archive folder. Bundles come from S3 or GitHub,
 * so every name and link target in them is attacker-controlled until checked here. Each rule is a
 * named function with its own tests; the entry writer calls them before it touches the disk.
 *
 * Paths here are archive-relative and "/"-separated: '' is the archive folder itself.
 */

export type UnsafeEntryRule =
  | 'nul-byte'
  | 'absolute-path'
  | 'parent-escape'
  | 'root-replaced'
  | 'through-symlink'
  | 'symlink-absolute'
  | 'symlink-escape'
  | 'symlink-loop'
  | 'hardlink-outside'
  | 'hardlink-missing'
  | 'hardlink-directory'
  | 'special-file';

/** An entry the agent refuses to unpack; names the entry and the rule it broke. */
export class UnsafeEntryError extends ArchiveError {
  readonly entryPath: string;
  readonly rule: UnsafeEntryRule;
  constructor(entryPath: string, rule: UnsafeEntryRule, reason: string) {
    super(`Refused to unpack bundle entry '${entryPath}': ${reason}`);
    this.entryPath = entryPath;
    this.rule = rule;
  }
}

/** Linux gives up after 40 links; resolving further than that ourselves proves nothing either way. */
const MAX_SYMLINK_HOPS = 64;

/** A NUL would silently cut the name short in the kernel; Node refuses it with a less helpful error. */
export function refuseNulByte(entryPath: string, value: string = entryPath): void {
  if (value.includes('\0')) {
    throw new UnsafeEntryError(entryPath, 'nul-byte', 'the name contains a NUL byte');
  }
}

/** GNU tar strips a leading '/' and carries on; a deployment bundle never needs one, so refuse it. */
export function refuseAbsolutePath(entryPath: string): void {
  if (entryPath.startsWith('/')) {
    throw new UnsafeEntryError(entryPath, 'absolute-path', 'absolute paths are not allowed');
  }
}

/**
 * Resolves '.' and '..' by name only and refuses a path that climbs above the archive folder.
 * Resolving by name means the kernel never sees a '..', so no symlink on the way can redirect it.
 */
export function normalizeInsideArchive(entryPath: string): string {
  const parts: string[] = [];
  for (const part of entryPath.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) {
        throw new UnsafeEntryError(entryPath, 'parent-escape', "its '..' components lead outside the archive folder");
      }
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  return parts.join('/');
}

/** All path rules for an entry's own name; returns the archive-relative path to write. */
export function resolveEntryPath(entryPath: string): string {
  refuseNulByte(entryPath);
  refuseAbsolutePath(entryPath);
  return normalizeInsideArchive(entryPath);
}

/** Only a directory entry ('./') may describe the archive folder itself; anything else would replace it. */
export function refuseRootReplacement(entryPath: string, relativePath: string, kind: EntryKind): void {
  if (relativePath === '' && kind !== 'directory') {
    throw new UnsafeEntryError(entryPath, 'root-replaced', 'only a directory may stand for the archive folder itself');
  }
}

/** Devices, FIFOs and sockets have no place in an application bundle and a device node is a way out. */
export function refuseSpecialFile(entryPath: string, kind: EntryKind): void {
  const labels: Partial<Record<EntryKind, string>> = {
    'character-device': 'character device',
    'block-device': 'block device',
    fifo: 'FIFO',
    socket: 'socket',
  };
  const label = labels[kind];
  if (label) {
    throw new UnsafeEntryError(entryPath, 'special-file', `${label} entries are not allowed (only files, directories and links)`);
  }
}

/** The ancestors of an archive-relative path, shortest first: 'a/b/c' → ['a', 'a/b']. */
export function ancestorsOf(relativePath: string): string[] {
  const ancestors: string[] = [];
  let slash = relativePath.indexOf('/');
  while (slash !== -1) {
    ancestors.push(relativePath.slice(0, slash));
    slash = relativePath.indexOf('/', slash + 1);
  }
  return ancestors;
}

/**
 * Refuses an entry whose parent path is a symlink from the archive: writing through it would land
 * wherever the link points (the classic `link -> /etc`, then `link/cron.d/x` attack).
 */
export function refuseSymlinkAncestor(entryPath: string, relativePath: string, symlinks: ReadonlyMap<string, unknown>): void {
  if (symlinks.size === 0) return;
  for (const ancestor of ancestorsOf(relativePath)) {
    if (symlinks.has(ancestor)) {
      throw new UnsafeEntryError(entryPath, 'through-symlink', `it would be written through the symbolic link '${ancestor}'`);
    }
  }
}

/**
 * Refuses a symlink whose target is absolute or resolves outside the archive folder. The target is
 * resolved the way the kernel would, but inside the archive only: each component that is itself a
 * symlink of the archive is replaced by that link's target, so `a -> .` followed by `b -> a/..`
 * is caught even though `a/..` looks harmless by name.
 *
 * @param symlinks every other symlink of the archive (archive-relative path → target as stored)
 */
export function refuseSymlinkOutside(
  entryPath: string,
  relativePath: string,
  target: string,
  symlinks: ReadonlyMap<string, string>,
): void {
  refuseNulByte(entryPath, target);
  if (target.startsWith('/')) {
    throw new UnsafeEntryError(entryPath, 'symlink-absolute', `it is a symbolic link to the absolute path '${target}'`);
  }
  const outside = (via?: string) =>
    new UnsafeEntryError(
      entryPath,
      'symlink-escape',
      `it is a symbolic link to '${target}', which resolves outside the archive folder${via ? ` (through the link '${via}')` : ''}`,
    );

  const resolved = relativePath.split('/').slice(0, -1);
  // Components still to walk, last one first, so expanding a link is a push rather than a splice.
  const pending = target.split('/').reverse();
  let hops = 0;
  let via: string | undefined;
  while (pending.length > 0) {
    const part = pending.pop()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (resolved.length === 0) throw outside(via);
      resolved.pop();
      continue;
    }
    resolved.push(part);
    const here = resolved.join('/');
    const next = symlinks.get(here);
    if (next === undefined) continue;
    if (++hops > MAX_SYMLINK_HOPS) {
      throw new UnsafeEntryError(entryPath, 'symlink-loop', `its target '${target}' goes through more than ${MAX_SYMLINK_HOPS} symbolic links`);
    }
    if (next.startsWith('/')) throw outside(here);
    via = here;
    resolved.pop();
    for (const component of next.split('/').reverse()) pending.push(component);
  }
}

/**
 * A link checked against the archive root may escape once its top directory becomes the root:
 * `top/link -> ../x` pointed at the archive's own `x`, and now points beside the archive folder.
 */
export function refuseSymlinksEscapingAfterStrip(symlinks: ReadonlyMap<string, string>, strippedTop: string): void {
  const prefix = `${strippedTop}/`;
  const movedPath = (path: string) => (path.startsWith(prefix) ? path.slice(prefix.length) : path);
  const moved = new Map<string, string>();
  for (const [path, target] of symlinks) moved.set(movedPath(path), target);
  for (const [path, target] of symlinks) refuseSymlinkOutside(path, movedPath(path), target, moved);
}

/**
 * Checks a hard link's target and returns it archive-relative. Tar stores the target as another
 * member's name, so it must name an entry already unpacked (a link to anything else would reach a
 * file outside the bundle), and not a directory.
 *
 * @param unpacked what each path unpacked so far is
 */
export function resolveHardlinkTarget(
  entryPath: string,
  target: string,
  unpacked: ReadonlyMap<string, EntryKind>,
  symlinks: ReadonlyMap<string, unknown>,
): string {
  refuseNulByte(entryPath, target);
  let relativeTarget: string;
  try {
    refuseAbsolutePath(target);
    relativeTarget = normalizeInsideArchive(target);
  } catch {
    throw new UnsafeEntryError(entryPath, 'hardlink-outside', `it is a hard link to '${target}', outside the archive folder`);
  }
  try {
    refuseSymlinkAncestor(target, relativeTarget, symlinks);
  } catch {
    throw new UnsafeEntryError(entryPath, 'through-symlink', `it is a hard link to '${target}', which goes through a symbolic link`);
  }
  const kind = relativeTarget === '' ? 'directory' : unpacked.get(relativeTarget);
  if (kind === undefined) {
    throw new UnsafeEntryError(entryPath, 'hardlink-missing', `it is a hard link to '${target}', which is not an earlier entry of the archive`);
  }
  if (kind === 'directory') {
    throw new UnsafeEntryError(entryPath, 'hardlink-directory', `it is a hard link to the directory '${target}'`);
  }
  return relativeTarget;
}
