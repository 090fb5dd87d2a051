import fs, { type Dirent, type Stats } from 'node:fs';
import { mkdir, realpath, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { ArchiveError } from '../report/errors.js';
import { toArchiveFailure } from './archive-failure.js';
import { LoopYield } from '../util/loop-yield.js';
import { restoreDirectorySync } from '../util/file-jobs/destination.js';
import { FileJobPool } from '../util/file-jobs/file-job-pool.js';
import { attributesOf } from '../util/file-jobs/inode-attributes.js';

export interface CopyDirectoryOptions {
  logger?: Logger;
  signal?: AbortSignal;
}

/**
 * Copies a Local Directory revision into `destDir` (DownloadBundle, agent-spec §3.4).
 *
 * Fixes §10.23: the anchor copied *into* an existing `deployment-archive`, so a re-run nested the
 * revision one level down; here `destDir` is emptied first. The folder is the local user's own,
 * so its symlinks are trusted, but they are copied as links and never followed. Modes (setuid
 * included) and mtimes are kept, and, as root, owners too (as `cp -a` would). FIFOs, sockets and
 * devices are skipped with a warning: copying a FIFO's "content" would block forever.
 *
 * Folders are created here, one at a time; files and links are copied by a FileJobPool (worker
 * threads, each copy with synchronous calls): on 20,000 small files a pool of asynchronous copyFile
 * calls measured 3-4x slower than `cp -a`, almost all of it thread-pool round trips, and one thread of
 * synchronous calls was still slower than `cp -a` (the many-files benchmark).
 *
 * On failure `destDir` is removed, so no half-copied revision is left behind.
 */
export async function copyDirectoryBundle(sourceDir: string, destDir: string, options: CopyDirectoryOptions = {}): Promise<void> {
  const { logger = silentLogger, signal } = options;
  const source = resolve(sourceDir);
  const dest = resolve(destDir);
  signal?.throwIfAborted();
  const sourceStats = await stat(source).catch(() => undefined);
  if (!sourceStats?.isDirectory()) {
    throw new ArchiveError(`The revision location '${sourceDir}' is not a directory`);
  }
  await refuseDestinationInsideSource(source, dest);

  try {
    await rm(dest, { recursive: true, force: true });
    await mkdir(dest, { recursive: true });
    const copy = new DirectoryCopy(source, dest, logger, signal);
    try {
      await copy.run(sourceStats);
    } finally {
      await copy.close();
    }
  } catch (error) {
    await rm(dest, { recursive: true, force: true }).catch(() => {});
    throw toArchiveFailure(error, 'Error copying the revision directory', signal);
  }
}

/** Copying a folder into itself would recurse until the disk is full. */
async function refuseDestinationInsideSource(source: string, dest: string): Promise<void> {
  const realSource = await realpath(source);
  const realDestParent = await realpath(dirname(dest)).catch(() => dirname(dest));
  const realDest = join(realDestParent, basename(dest));
  if (realDest === realSource || realDest.startsWith(realSource + sep)) {
    throw new ArchiveError(`Cannot copy the revision directory '${source}' into '${dest}', which is inside it`);
  }
}

class DirectoryCopy {
  /** Directory attributes are restored last: filling a directory changes its mtime. */
  readonly #directories: { path: string; stats: Stats; depth: number }[] = [];
  readonly #asRoot = process.getuid?.() === 0;
  readonly #uid = process.getuid?.() ?? -1;
  readonly #gid = process.getgid?.() ?? -1;
  readonly #loop = new LoopYield();
  // As root the copies keep their owners, as `cp -a` would; new inodes already belong to the agent.
  readonly #pool = new FileJobPool({ preserveOwner: this.#asRoot });

  constructor(
    readonly source: string,
    readonly dest: string,
    readonly logger: Logger,
    readonly signal: AbortSignal | undefined,
  ) {}

  async run(rootStats: Stats): Promise<void> {
    await this.#copyChildren('', 1);
    await this.#pool.flush();
    this.#directories.push({ path: this.dest, stats: rootStats, depth: 0 });
    // Deepest first, so a read-only directory is locked only after its children are done.
    this.#directories.sort((a, b) => b.depth - a.depth);
    for (const { path, stats } of this.#directories) this.#restoreAttributes(path, stats);
  }

  /** Waits for the copies in flight; call once, before the destination may be removed. */
  close(): Promise<void> {
    return this.#pool.close();
  }

  async #copyChildren(relative: string, depth: number): Promise<void> {
    const entries = fs.readdirSync(join(this.source, relative), { withFileTypes: true });
    for (const entry of entries) {
      this.signal?.throwIfAborted();
      await this.#copyEntry(relative === '' ? entry.name : `${relative}/${entry.name}`, entry, depth);
      await this.#loop.maybeYield();
    }
  }

  async #copyEntry(relative: string, entry: Dirent, depth: number): Promise<void> {
    // Names from readdir hold no '/': plain concatenation, path.join's normalising costs more than the copy's JS.
    const from = `${this.source}/${relative}`;
    const to = `${this.dest}/${relative}`;
    if (entry.isDirectory()) {
      const stats = fs.lstatSync(from);
      // Owner-writable while it fills up; its own mode is restored at the end.
      fs.mkdirSync(to, { mode: 0o700 });
      this.#directories.push({ path: to, stats, depth });
      await this.#copyChildren(relative, depth + 1);
    } else if (entry.isFile()) {
      // The source's exact mode (past the umask), times and, as root, owner; never through a link.
      await this.#pool.add({ kind: 'copy', from, to });
    } else if (entry.isSymbolicLink()) {
      await this.#pool.add({ kind: 'symlink', from, to });
    } else {
      this.logger.warn(`Skipping '${from}' in the revision directory: only files, directories and symbolic links are copied`);
    }
  }

  /** The path is a directory this copy just created; as root it keeps the source's owner when not the agent's. */
  #restoreAttributes(path: string, stats: Stats): void {
    restoreDirectorySync(path, attributesOf(stats, this.#asRoot && (stats.uid !== this.#uid || stats.gid !== this.#gid)));
  }
}
