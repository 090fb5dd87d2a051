import { closeSync, openSync, readSync } from 'node:fs';
import { detectCompression } from './tar-source.js';

export type ArchiveType = 'tar' | 'tgz' | 'zip';

/** The archive type a file name says (`.tar`, `.tgz`, `.tar.gz`, `.zip`, any case), or undefined. */
export function archiveTypeFromName(name: string): ArchiveType | undefined {
  const lower = name.toLowerCase();
  if (lower.endsWith('.tar')) return 'tar';
  if (lower.endsWith('.tgz') || lower.endsWith('.tar.gz')) return 'tgz';
  if (lower.endsWith('.zip')) return 'zip';
  return undefined;
}

/**
 * The archive type a file's first bytes say: a zip's local or end-of-central-directory header, gzip's
 * magic (a `.tar.gz`), or the ustar magic of a plain tar; undefined for anything else. The contents win
 * over the name: a zip renamed `.tar` is still a zip.
 */
export function archiveTypeFromContents(path: string): ArchiveType | undefined {
  const head = Buffer.alloc(512);
  let length: number;
  const fd = openSync(path, 'r');
  try {
    length = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const bytes = head.subarray(0, length);
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6))) return 'zip';
  if (detectCompression(bytes) === 'gzip') return 'tgz';
  if (bytes.length >= 262 && bytes.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  return undefined;
}

/** `tar` and `tgz` are one family: either reads plain and gzip tar alike, so only zip versus tar contradicts. */
export function sameArchiveFamily(a: ArchiveType, b: ArchiveType): boolean {
  return (a === 'zip') === (b === 'zip');
}

export function describeArchiveType(type: ArchiveType): string {
  return type === 'tgz' ? 'gzip-compressed tar (tgz)' : `${type} archive`;
}
