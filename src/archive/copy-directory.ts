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
import { agentIds, archiveMode, recordOriginal, type OriginalAttributesMap } from './original-attributes.js';

export interface CopyDirectoryOptions {
  logger?: Logger;
  signal?: AbortSignal;
}

/**
 * Copies a Local Directory revision into `destDir` (DownloadBundle, agent-spec §3.4).
 *
 * Fixes §10.23: the anchor copied *into* an existing `deployment-archive`, so a re-run nested the
 * revision one level down; here `destDir` is emptied first. The folder is the local user's own,
 * so its symlinks are trusted, but they are copied as links and never followed. Modes and mtimes are
 * kept, except that the copy, which hooks run from as root, is the agent's and has no setuid, setgid, or
 * write for group and others; what `cp -a` would have kept (those bits and, as root, the owners) is
 * returned for Install (./original-attributes.ts). FIFOs, sockets and devices are skipped with a
 * warning: copying a FIFO's "content" would block forever.
 *
 * Folders are created here, one at a time; files and links are copied by a FileJobPool (worker
 * threads, each copy with synchronous calls): on 20,000 small files a pool of asynchronous copyFile
 * calls measured 3-4x slower than `cp -a`, almost all of it thread-pool round trips, and one thread of
 * synchronous calls was still slower than `cp -a` (the many-files benchmark).
 *
 * On failure `destDir` is removed, so no half-copied revision is left behind.
 */
export async function copyDirectoryBundle(sourceDir: string, destDir: string, options: CopyDirectoryOptions = {}): Promise<OriginalAttributesMap> {
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
    return copy.originals;
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
  readonly #agent = agentIds();
  readonly #loop = new LoopYield();
  readonly originals: OriginalAttributesMap = new Map();
  // Made the agent's (sanitize); what `cp -a` would have kept, owners too as root, comes back in `original`.
  readonly #pool = new FileJobPool({
    preserveOwner: this.#asRoot,
    onDone: (jobs) => {
      for (const job of jobs) {
        if (job.kind !== 'copy' || !job.original) continue;
        const { mode, uid, gid } = job.original;
        recordOriginal(this.originals, job.from.slice(this.source.length + 1), mode, uid, gid, this.#agent);
      }
    },
  });

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
      // The source's mode (past the umask) made safe, and its times; never through a link.
      await this.#pool.add({ kind: 'copy', from, to, sanitize: true });
    } else if (entry.isSymbolicLink()) {
      // Links are few: their owner is read here, kept as an original, and the link made the agent's.
      const stats = fs.lstatSync(from);
      const owned = this.#asRoot && (stats.uid !== this.#agent.uid || stats.gid !== this.#agent.gid);
      if (owned) recordOriginal(this.originals, relative, archiveMode(0o777), stats.uid, stats.gid, this.#agent);
      await this.#pool.add({ kind: 'symlink', to, target: fs.readlinkSync(from), attributes: { ...attributesOf(stats, false), mode: 0o777 } });
    } else {
      this.logger.warn(`Skipping '${from}' in the revision directory: only files, directories and symbolic links are copied`);
    }
  }

  /** The path is a directory this copy just created: the source's times, its mode made safe, the agent's. */
  #restoreAttributes(path: string, stats: Stats): void {
    restoreDirectorySync(path, { ...attributesOf(stats, false), mode: archiveMode(stats.mode) });
  }
}
