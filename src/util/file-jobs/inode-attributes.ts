import type { Stats } from 'node:fs';

/**
 * What a created inode gets: the one attribute type of unpacking, copying and Install, in the agent's
 * thread and in the file workers alike (it crosses threads as plain numbers, see ./wire.ts).
 */
export interface InodeAttributes {
  /** Exact permission bits, setuid/setgid/sticky included (0o7777). */
  mode: number;
  /** Seconds since the epoch (fractions kept); default: now. */
  atime?: number;
  /** Seconds since the epoch; undefined leaves the times the inode was created with. */
  mtime?: number;
  /** Set only when ownership must change (root giving files away): a no-op chown is a system call per file. */
  uid?: number;
  gid?: number;
}

/** Now, as inode times are given. */
export function nowSeconds(): number {
  return Date.now() / 1000;
}

/** Seconds since the epoch, as InodeAttributes keeps times. */
export function toSeconds(date: Date): number {
  return date.getTime() / 1000;
}

export function changesOwner(attributes: InodeAttributes): boolean {
  return attributes.uid !== undefined || attributes.gid !== undefined;
}

/**
 * Whether the mode given to open(2) may come out wrong and needs an explicit chmod: the umask strips
 * bits, open(2) ignores setuid/setgid/sticky, and chown(2) clears setuid and setgid (even for root).
 */
export function needsChmod(attributes: InodeAttributes, umask: number): boolean {
  return changesOwner(attributes) || (attributes.mode & 0o7000) !== 0 || (attributes.mode & umask) !== 0;
}

/**
 * The mode to create a file with: when a chmod follows, the file starts private rather than briefly
 * wider than it should be.
 */
export function creationMode(attributes: InodeAttributes, umask: number): number {
  return needsChmod(attributes, umask) ? 0o600 : attributes.mode & 0o777;
}

/**
 * A source file's mode and times, as `cp -a` keeps them; its owner too with `withOwner` (the caller
 * decides: root keeping owners that are not its own, or a setgid folder that would give the copy its group).
 */
export function attributesOf(stats: Pick<Stats, 'mode' | 'uid' | 'gid' | 'atimeMs' | 'mtimeMs'>, withOwner: boolean): InodeAttributes {
  const attributes: InodeAttributes = { mode: stats.mode & 0o7777, atime: stats.atimeMs / 1000, mtime: stats.mtimeMs / 1000 };
  if (withOwner) {
    attributes.uid = stats.uid;
    attributes.gid = stats.gid;
  }
  return attributes;
}

/** Bits a shared copy never has: setuid, setgid, and write for group and others. */
const SHARED_UNSAFE_BITS = 0o6022;

/**
 * The mode of a copy only root may change and that gives nobody root's rights (the unpacked revision
 * hooks run from): the same bits without setuid, setgid, or write for group and others.
 */
export function withoutSharedWrite(mode: number): number {
  return mode & 0o7777 & ~SHARED_UNSAFE_BITS;
}
