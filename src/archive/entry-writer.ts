import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import type { ArchiveEntry, EntryContent, EntryKind } from './archive-entry.js';
import type { BundleBudget } from './bundle-limits.js';
import {
  ancestorsOf,
  refuseRootReplacement,
  refuseSpecialFile,
  refuseSymlinkAncestor,
  refuseSymlinkOutside,
  resolveEntryPath,
  resolveHardlinkTarget,
} from './entry-safety.js';
import { LoopYield } from '../util/loop-yield.js';
import { OwnerLookup } from './owner-lookup.js';
import { DiskTarget, type UnpackTarget } from './unpack-target.js';
import { toSeconds, type InodeAttributes } from '../util/file-jobs/inode-attributes.js';
import { agentIds, archiveMode, recordOriginal, type OriginalAttributesMap } from './original-attributes.js';

export interface EntryWriterOptions {
  /** Record the ownership the archive carries (what `tar -p` restores as root) among the originals. */
  preserveOwner?: boolean;
  logger?: Logger;
  signal?: AbortSignal;
  /** Files up to this size are read whole and written at once; larger ones are streamed. */
  smallFileLimit?: number;
  /** What the bundle may unpack to; each file is charged before it is written. */
  budget?: BundleBudget;
}

export interface WriterResult {
  entries: number;
  bytes: number;
  /** The symlinks created (archive-relative path → target), for checks after moving the tree. */
  symlinks: ReadonlyMap<string, string>;
  /** What the archive said of its files and links that the unpacked copy does not keep (./original-attributes.ts). */
  originals: OriginalAttributesMap;
}

const DEFAULT_SMALL_FILE_LIMIT = 256 * 1024;

/**
 * Writes archive entries under a root folder, one at a time in archive order, applying the rules of
 * ./entry-safety.ts before anything touches the disk. Shared by the tar and zip readers. What it
 * creates goes through an UnpackTarget: the disk, or a manifest in memory for the dry run, which so
 * refuses and replaces entries exactly as unpacking would.
 *
 * Three things are deferred to `finish()`, as GNU tar defers them:
 * - symlinks: until the end nothing on disk is a symlink, so no write can pass through one, even by
 *   a route the name checks missed; and each link is checked again against all the others;
 * - hard links to those symlinks;
 * - directory modes, owners and times: a read-only directory must stay writable while it fills up,
 *   and writing into a directory changes its mtime.
 *
 * Everything unpacked is the agent's, without setuid, setgid, or write for group and others (hooks run
 * from it as root); the archive's own modes and owners of files and links are kept in `originals`, for
 * Install to give the installed copies (./original-attributes.ts).
 */
export class EntryWriter {
  readonly #target: UnpackTarget;
  readonly #logger: Logger;
  readonly #signal: AbortSignal | undefined;
  readonly #budget: BundleBudget | undefined;
  readonly #owners: OwnerLookup | undefined;
  /** Unpacked inodes' access time (seconds): when the unpacking started. */
  readonly #now = Date.now() / 1000;
  readonly #agent = agentIds();
  readonly #originals: OriginalAttributesMap = new Map();
  readonly #loop = new LoopYield();

  /** What each archive-relative path is right now (pending symlinks included). */
  readonly #unpacked = new Map<string, EntryKind>();
  /** Symlinks to create in finish(): path → target. */
  readonly #symlinks = new Map<string, string>();
  readonly #symlinkAttributes = new Map<string, InodeAttributes>();
  /** Hard links to a pending symlink: path → that symlink's path. */
  readonly #deferredHardlinks = new Map<string, string>();
  readonly #directoryAttributes = new Map<string, InodeAttributes>();
  #entries = 0;
  #bytes = 0;

  /** `root`: the folder to unpack into, or another target (the dry run's manifest). */
  constructor(root: string | UnpackTarget, options: EntryWriterOptions = {}) {
    this.#target = typeof root === 'string'
      ? new DiskTarget(root, { smallFileLimit: options.smallFileLimit ?? DEFAULT_SMALL_FILE_LIMIT, signal: options.signal })
      : root;
    this.#logger = options.logger ?? silentLogger;
    this.#signal = options.signal;
    this.#budget = options.budget;
    this.#owners = options.preserveOwner ? new OwnerLookup() : undefined;
  }

  /** Checks and writes one entry. */
  async add(entry: ArchiveEntry, content?: EntryContent): Promise<void> {
    this.#signal?.throwIfAborted();
    const path = resolveEntryPath(entry.path);
    refuseRootReplacement(entry.path, path, entry.kind);
    refuseSpecialFile(entry.path, entry.kind);
    refuseSymlinkAncestor(entry.path, path, this.#symlinks);
    // A hard link needs its target on disk, and replacing an entry needs the earlier one there to remove.
    if (entry.kind === 'hardlink' || this.#unpacked.has(path)) await this.#target.flush();
    switch (entry.kind) {
      case 'directory':
        this.#directory(path, entry);
        break;
      case 'file':
        if (!content) throw new Error(`file entry '${entry.path}' has no content`);
        this.#budget?.charge(entry.path, entry.size);
        await this.#file(path, entry, content);
        break;
      case 'symlink':
        this.#symlink(path, entry);
        break;
      case 'hardlink':
        this.#hardlink(path, entry);
        break;
      default:
        this.#logger.warn(`Skipping bundle entry '${entry.path}': ${entry.typeLabel ?? entry.kind} entries are not unpacked`);
    }
    await this.#loop.maybeYield();
  }

  /** Creates the deferred links and restores directory attributes; call once, after the last add(). */
  async finish(): Promise<WriterResult> {
    await this.#target.flush();
    const links = this.#finalSymlinks();
    for (const [path, target] of links) {
      refuseSymlinkAncestor(path, path, links);
      refuseSymlinkOutside(path, path, target, links);
    }
    for (const [path, target] of this.#symlinks) {
      this.#target.symlink(path, target, this.#symlinkAttributes.get(path)!);
      await this.#loop.maybeYield();
    }
    for (const [path, target] of this.#deferredHardlinks) this.#target.hardlink(target, path);
    // Deepest first, so no directory is locked before its children are done.
    const depthOf = (path: string) => (path === '' ? 0 : path.split('/').length);
    const directories = [...this.#directoryAttributes].sort(([a], [b]) => depthOf(b) - depthOf(a));
    for (const [path, attributes] of directories) {
      this.#target.restoreDirectory(path, attributes);
      await this.#loop.maybeYield();
    }
    return { entries: this.#entries, bytes: this.#bytes, symlinks: links, originals: this.#originals };
  }

  /** Waits for the writes in flight; call once (after finish() or a failure), before the folder may be removed. */
  close(): Promise<void> {
    return this.#target.close();
  }

  /**
   * Every path that will be a symlink once finish() is done. A hard link to a symlink is a second
   * name for the same link inode, so it is a symlink too, and its stored target is read relative to
   * its own folder: `a/b/s -> ../../x` stays inside, a hard link to it at the top climbs out.
   */
  #finalSymlinks(): Map<string, string> {
    const links = new Map(this.#symlinks);
    for (const [path, symlinkPath] of this.#deferredHardlinks) {
      const linkTarget = this.#symlinks.get(symlinkPath);
      if (linkTarget !== undefined) links.set(path, linkTarget);
    }
    return links;
  }

  /**
   * What the unpacked copy of `entry` gets: its times, and its mode without setuid, setgid, or write for
   * group and others; no owner (a new inode is the agent's). What the archive said, where that differs,
   * goes to the originals under `path` (files and links: Install never copies a folder's own attributes).
   */
  #attributes(path: string, entry: ArchiveEntry): InodeAttributes {
    const attributes: InodeAttributes = { mode: archiveMode(entry.mode), atime: this.#now };
    if (entry.mtime) attributes.mtime = toSeconds(entry.mtime);
    if (entry.kind === 'directory') return attributes;
    const owner = this.#owners && entry.owner ? this.#owners.resolve(entry.owner) : {};
    // A link has no mode of its own: only its owner is worth keeping.
    const mode = entry.kind === 'symlink' ? archiveMode(0o777) : entry.mode;
    recordOriginal(this.#originals, path, mode, owner.uid, owner.gid, this.#agent);
    return attributes;
  }

  /**
   * Makes `path` ready for a new entry of `kind`: replaces an earlier entry of the same name (the
   * later one wins, as in GNU tar) and creates missing parents.
   */
  #prepare(path: string, kind: EntryKind): void {
    this.#originals.delete(path);
    const existing = this.#unpacked.get(path);
    if (existing === undefined) return this.#ensureParent(path);
    if (existing === 'directory') {
      if (kind !== 'directory') this.#removeEmptyDirectory(path);
      return;
    }
    this.#unpacked.delete(path);
    if (this.#symlinks.delete(path)) {
      this.#symlinkAttributes.delete(path);
      return;
    }
    if (this.#deferredHardlinks.delete(path)) return;
    this.#target.remove(path);
  }

  #ensureParent(path: string): void {
    const slash = path.lastIndexOf('/');
    if (slash === -1) return;
    const parent = path.slice(0, slash);
    const kind = this.#unpacked.get(parent);
    if (kind === 'directory') return;
    if (kind !== undefined) throw new Error(`cannot unpack '${path}': '${parent}' is not a directory`);
    this.#target.makeParents(parent);
    this.#unpacked.set(parent, 'directory');
    for (const ancestor of ancestorsOf(parent)) {
      if (!this.#unpacked.has(ancestor)) this.#unpacked.set(ancestor, 'directory');
    }
  }

  #removeEmptyDirectory(path: string): void {
    const prefix = `${path}/`;
    for (const other of this.#unpacked.keys()) {
      if (other.startsWith(prefix)) {
        throw new Error(`cannot replace the directory '${path}' with a later entry of the same name: it is not empty`);
      }
    }
    this.#target.removeDirectory(path);
    this.#unpacked.delete(path);
    this.#directoryAttributes.delete(path);
  }

  #directory(path: string, entry: ArchiveEntry): void {
    this.#prepare(path, 'directory');
    if (path !== '' && this.#unpacked.get(path) !== 'directory') {
      this.#target.makeDirectory(path);
      this.#unpacked.set(path, 'directory');
    }
    this.#directoryAttributes.set(path, this.#attributes(path, entry));
    this.#entries++;
  }

  async #file(path: string, entry: ArchiveEntry, content: EntryContent): Promise<void> {
    this.#prepare(path, 'file');
    this.#unpacked.set(path, 'file');
    this.#entries++;
    this.#bytes += content.size;
    await this.#target.writeFile(path, content, this.#attributes(path, entry));
  }

  #symlink(path: string, entry: ArchiveEntry): void {
    this.#prepare(path, 'symlink');
    const target = entry.linkTarget ?? '';
    refuseSymlinkOutside(entry.path, path, target, this.#symlinks);
    this.#unpacked.set(path, 'symlink');
    this.#symlinks.set(path, target);
    this.#symlinkAttributes.set(path, this.#attributes(path, entry));
    this.#entries++;
  }

  #hardlink(path: string, entry: ArchiveEntry): void {
    const target = resolveHardlinkTarget(entry.path, entry.linkTarget ?? '', this.#unpacked, this.#symlinks);
    this.#entries++;
    // A member linked to its own name (some tars write this for repeated files) is already there.
    if (target === path) return;
    this.#prepare(path, 'hardlink');
    this.#unpacked.set(path, 'hardlink');
    // One inode, one set of attributes: a second name has what the first one had.
    const original = this.#originals.get(target);
    if (original) this.#originals.set(path, original);
    // A link to a deferred link is a link to what that one names, so deferred links never chain.
    const inode = this.#deferredHardlinks.get(target) ?? target;
    if (this.#symlinks.has(inode)) {
      this.#deferredHardlinks.set(path, inode);
    } else {
      this.#target.hardlink(inode, path);
    }
  }
}
