import { linkSync, mkdirSync, rmdirSync, unlinkSync } from 'node:fs';
import type { EntryContent } from './archive-entry.js';
import { createSymlinkSync, restoreDirectorySync } from '../util/file-jobs/destination.js';
import { FileJobPool } from '../util/file-jobs/file-job-pool.js';
import type { InodeAttributes } from '../util/file-jobs/inode-attributes.js';
import { writeStreamedFile } from './write-file.js';

/**
 * What the entry writer creates, once it has checked an entry: paths are archive-relative,
 * already normalised ('' is the archive folder itself). The writer decides what and in which order;
 * a target only carries it out (on the disk, or in memory for the dry run).
 */
export interface UnpackTarget {
  /** A directory the archive lists; its mode, owner and times come later, from restoreDirectory. */
  makeDirectory(path: string): void;
  /** A directory and its missing ancestors that the archive does not list (0755 less the umask, as GNU tar). */
  makeParents(path: string): void;
  writeFile(path: string, content: EntryContent, attributes: InodeAttributes): Promise<void>;
  /** Removes a file or link an earlier entry of the same name made. */
  remove(path: string): void;
  /** Removes an empty directory an earlier entry of the same name made. */
  removeDirectory(path: string): void;
  /** A second name for the inode at `existing`. */
  hardlink(existing: string, path: string): void;
  symlink(path: string, target: string, attributes: InodeAttributes): void;
  restoreDirectory(path: string, attributes: InodeAttributes): void;
  /** Waits for the writes in flight (a hard link or a replacement needs the earlier entry there). */
  flush(): Promise<void>;
  /** Waits for everything in flight; called once, after finishing or failing. */
  close(): Promise<void>;
}

/** Unpacking onto the disk, under `root`. */
export class DiskTarget implements UnpackTarget {
  readonly #root: string;
  readonly #rootPrefix: string;
  readonly #smallFileLimit: number;
  readonly #signal: AbortSignal | undefined;
  readonly #umask = process.umask();
  /**
   * Small files are written by worker threads (see FileJobPool): with tens of thousands of them, the
   * system calls that create them are most of the time, and several threads make them in parallel.
   */
  readonly #pool = new FileJobPool({ callerRuns: false });

  constructor(root: string, options: { smallFileLimit: number; signal?: AbortSignal }) {
    this.#root = root;
    this.#rootPrefix = root.endsWith('/') ? root : `${root}/`;
    this.#smallFileLimit = options.smallFileLimit;
    this.#signal = options.signal;
  }

  /** `path` is already normalised (resolveEntryPath): concatenation, a fraction of join's cost per entry. */
  #absolute(path: string): string {
    return path === '' ? this.#root : `${this.#rootPrefix}${path}`;
  }

  makeDirectory(path: string): void {
    // Owner-writable while it fills up; the archive's mode is applied by restoreDirectory.
    mkdirSync(this.#absolute(path), { mode: 0o700 });
  }

  makeParents(path: string): void {
    mkdirSync(this.#absolute(path), { recursive: true, mode: 0o755 });
  }

  async writeFile(path: string, content: EntryContent, attributes: InodeAttributes): Promise<void> {
    const target = this.#absolute(path);
    if (content.size > this.#smallFileLimit) {
      await writeStreamedFile(target, content.chunks(), attributes, this.#umask, this.#signal);
    } else {
      await this.#pool.add({ kind: 'write', to: target, data: await content.readAll(), attributes });
    }
  }

  remove(path: string): void {
    unlinkSync(this.#absolute(path));
  }

  removeDirectory(path: string): void {
    rmdirSync(this.#absolute(path));
  }

  hardlink(existing: string, path: string): void {
    linkSync(this.#absolute(existing), this.#absolute(path));
  }

  symlink(path: string, target: string, attributes: InodeAttributes): void {
    createSymlinkSync(this.#absolute(path), target, attributes);
  }

  restoreDirectory(path: string, attributes: InodeAttributes): void {
    restoreDirectorySync(this.#absolute(path), attributes);
  }

  flush(): Promise<void> {
    return this.#pool.flush();
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}
