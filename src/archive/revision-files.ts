import { closeSync, lstatSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';

/**
 * A read-only view of an unpacked revision: what the appspec lookup, the bundle checks and Install's
 * source scan ask of its files. Two views exist: the disk (a bundle folder, or a deployment-archive
 * DownloadBundle made) and an archive read without unpacking it (./bundle-manifest.ts, for
 * `deploy --dry-run`, which must write nothing). The checks and the plan are the same code over both.
 *
 * Paths are absolute, as on the disk; node's Stats and Dirent have every member asked for here.
 */
export interface RevisionFileStats {
  /** Full `st_mode` (type and permission bits). */
  mode: number;
  uid: number;
  gid: number;
  atimeMs: number;
  mtimeMs: number;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

export interface RevisionDirent {
  name: string;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

export interface RevisionFiles {
  /** What the path itself is (a link is a link); undefined when nothing is there. */
  lstat(path: string): RevisionFileStats | undefined;
  /** What the path is through links; undefined when nothing is there or a link dangles. */
  stat(path: string): RevisionFileStats | undefined;
  /** The entries of a folder, each typed as itself; throws (ENOENT, ENOTDIR) as readdir does. */
  readdir(path: string): RevisionDirent[];
  readlink(path: string): string;
  /** The path with every link resolved; throws ENOENT when it does not exist. */
  realpath(path: string): string;
  readText(path: string): string;
  /** Up to `length` bytes from the start of a file; empty when it cannot be read. */
  readHead(path: string, length: number): Buffer;
}

/** The most of a file's start any check reads (a script's #! line); a view must keep at least this much. */
export const HEAD_BYTES = 512;

/** The revision as it is on the disk. */
export const diskFiles: RevisionFiles = {
  lstat: (path) => absentAsUndefined(() => lstatSync(path)),
  stat: (path) => absentAsUndefined(() => statSync(path)),
  readdir: (path) => readdirSync(path, { withFileTypes: true }),
  readlink: (path) => readlinkSync(path),
  realpath: (path) => realpathSync(path),
  readText: (path) => readFileSync(path, 'utf8'),
  readHead(path, length) {
    const buffer = Buffer.alloc(length);
    try {
      const fd = openSync(path, 'r');
      try {
        return buffer.subarray(0, readSync(fd, buffer, 0, length, 0));
      } finally {
        closeSync(fd);
      }
    } catch {
      return Buffer.alloc(0);
    }
  },
};

/** A path that is not there (or runs through a file) is undefined; other failures (EACCES) are thrown. */
export function absentAsUndefined<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}
