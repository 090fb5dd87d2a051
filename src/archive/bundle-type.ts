import { closeSync, openSync, readSync, statSync } from 'node:fs';
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

/**
 * Whether the type `-t` gives fits what is at `location` (`path` on disk; a folder, else a file read by
 * archiveTypeFromContents): the message that refuses it, saying what the location looks like, or
 * undefined when it fits. A `-t` naming an archive type fits a file whose contents say nothing (the
 * unpacking then judges it). One rule for `deploy` and `validate`; `notAnArchive` is the advice for a
 * file given as `directory` that looks like no archive (each command accepts different files).
 */
export function givenTypeMismatch(location: string, path: string, given: ArchiveType | 'directory', notAnArchive = 'give -t tar, tgz or zip'): string | undefined {
  if (statSync(path).isDirectory()) {
    return given === 'directory' ? undefined : `location ${location} is specified as a compressed local file but it is a directory: leave out -t (or give -t directory) for a folder`;
  }
  const fromContents = archiveTypeFromContents(path);
  if (given === 'directory') {
    const looksLike = fromContents ?? archiveTypeFromName(path);
    const advice = looksLike ? `it looks like a ${describeArchiveType(looksLike)}: give -t ${looksLike}, or leave out -t` : notAnArchive;
    return `location ${location} is specified with type directory but it is a file; ${advice}`;
  }
  if (fromContents && !sameArchiveFamily(fromContents, given)) {
    return `location ${location} is specified with type ${given} but it looks like a ${describeArchiveType(fromContents)}: give -t ${fromContents}, or leave out -t`;
  }
  return undefined;
}
