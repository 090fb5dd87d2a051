import { statSync } from 'node:fs';
import { basename, posix } from 'node:path';
import type { EntryContent } from './archive-entry.js';
import { toArchiveFailure } from './archive-failure.js';
import { BundleBudget, type BundleLimits } from './bundle-limits.js';
import { refuseSymlinksEscapingAfterStrip } from './entry-safety.js';
import { EntryWriter } from './entry-writer.js';
import { HEAD_BYTES, type RevisionDirent, type RevisionFileStats, type RevisionFiles } from './revision-files.js';
import { loneTopDirectory, namesAnAppSpec } from './strip-top-directory.js';
import { DEFAULT_BUNDLE_LIMITS, forEachMember, readArchiveInto, type ArchiveBundleType } from './unpack.js';
import type { UnpackTarget } from './unpack-target.js';
import type { InodeAttributes } from '../util/file-jobs/inode-attributes.js';

/**
 * An archive bundle read the way DownloadBundle unpacks it, without writing a byte: every entry goes
 * through the same entry writer (so the same refusals, the same later-entry-wins rule, the same
 * top-directory rule) into a manifest in memory, which then answers the appspec lookup, the bundle
 * checks and Install's scan as the unpacked folder would (./revision-files.ts). `deploy --dry-run`
 * must write nothing anywhere, not even a temporary folder, so it reads archives this way.
 *
 * Content is read (so a corrupt entry fails here as it would there) but not kept, except the whole
 * text of the files that may be the appspec and the first bytes of scripts (files starting with `#!`):
 * memory grows with the number of entries, not with their size.
 */

interface ManifestEntry {
  kind: 'file' | 'directory' | 'symlink';
  /** Permission bits (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  size: number;
  linkTarget?: string;
  text?: string;
  head?: Buffer;
}

export interface ReadManifestOptions {
  /** The absolute path the revision's files appear under (the archive's own path reads well in messages). */
  root: string;
  /** Archive-relative paths (before the top-directory rule) whose whole text is kept: the appspec's candidates. */
  keepText: (relativePath: string) => boolean;
  /** Apply the top-directory rule (./strip-top-directory.ts), as DownloadBundle does. Default true. */
  stripSingleTopDirectory?: boolean;
  signal?: AbortSignal;
  /** What the bundle may unpack to (./bundle-limits.ts): a bomb is refused here as DownloadBundle refuses it. Default the configuration's defaults. */
  limits?: BundleLimits;
}

/** Largest file whose text is kept: an appspec is a few kilobytes; a bigger "appspec" is not read whole. */
const MAX_KEPT_TEXT = 16 * 1024 * 1024;
const TYPE_BITS = { file: 0o100000, directory: 0o040000, symlink: 0o120000 } as const;

/** Reads an archive into a manifest; fails as unpacking it would (an ArchiveError naming the entry). */
export async function readBundleManifest(bundlePath: string, bundleType: ArchiveBundleType, options: ReadManifestOptions): Promise<BundleManifest> {
  const format = bundleType === 'zip' ? 'zip' : 'tar';
  const target = new ManifestTarget(options.keepText);
  try {
    const budget = new BundleBudget(options.limits ?? DEFAULT_BUNDLE_LIMITS, statSync(bundlePath).size);
    const writer = new EntryWriter(target, { signal: options.signal, budget });
    const written = await readArchiveInto(bundlePath, format, writer);
    // A candidate that was a hard link to a file of another name: its text is read in a second pass.
    if (target.textWanted.size > 0) await target.readWantedText(bundlePath, format);
    let entries = target.entries;
    let strippedTopDirectory: string | undefined;
    if (options.stripSingleTopDirectory ?? true) {
      strippedTopDirectory = topDirectoryToStrip(entries);
      if (strippedTopDirectory !== undefined) {
        refuseSymlinksEscapingAfterStrip(written.symlinks, strippedTopDirectory);
        entries = withoutTopDirectory(entries, strippedTopDirectory);
      }
    }
    return new BundleManifest(options.root, entries, { entries: written.entries, bytes: written.bytes, strippedTopDirectory });
  } catch (error) {
    throw toArchiveFailure(error, `Error extracting ${format} archive`, options.signal);
  }
}

/** The entries the writer would have created, kept in memory. */
class ManifestTarget implements UnpackTarget {
  readonly entries = new Map<string, ManifestEntry>([['', directoryEntry(0o755)]]);
  readonly #umask = process.umask();
  readonly #uid = process.getuid?.() ?? 0;
  readonly #gid = process.getgid?.() ?? 0;
  /** Each file entry by the number of its writeFile call: the archive's file members, in order. */
  readonly #byOrdinal = new Map<ManifestEntry, number>();
  /** File entries whose text a later name (a hard link) needs. */
  readonly textWanted = new Set<ManifestEntry>();

  constructor(private readonly keepText: (relativePath: string) => boolean) {}

  /** Fills in the text of the entries in textWanted from a second read of the archive. */
  async readWantedText(bundlePath: string, format: 'tar' | 'zip'): Promise<void> {
    const wanted = new Map([...this.textWanted].map((entry) => [this.#byOrdinal.get(entry) as number, entry]));
    let ordinal = 0;
    await forEachMember(bundlePath, format, async (member, content) => {
      if (member.kind !== 'file') return;
      const entry = wanted.get(ordinal++);
      if (entry !== undefined && content !== undefined && content.size <= MAX_KEPT_TEXT) entry.text = (await content.readAll()).toString('utf8');
    });
  }

  makeDirectory(path: string): void {
    this.entries.set(path, directoryEntry(0o700));
  }

  makeParents(path: string): void {
    for (let parent = path; parent !== '.' && parent !== '' && !this.entries.has(parent); parent = posix.dirname(parent)) {
      this.entries.set(parent, directoryEntry(0o755 & ~this.#umask));
    }
  }

  async writeFile(path: string, content: EntryContent, attributes: InodeAttributes): Promise<void> {
    const entry: ManifestEntry = { ...this.#owned(attributes), kind: 'file', size: content.size };
    this.#byOrdinal.set(entry, this.#byOrdinal.size);
    if (this.keepText(path) && content.size <= MAX_KEPT_TEXT) {
      const data = await content.readAll();
      entry.text = data.toString('utf8');
      entry.head = data.subarray(0, HEAD_BYTES);
    } else {
      let head: Buffer | undefined;
      for await (const chunk of content.chunks()) head ??= chunk.subarray(0, HEAD_BYTES);
      if (head !== undefined && head[0] === 0x23 && head[1] === 0x21) entry.head = Buffer.from(head);
    }
    this.entries.set(path, entry);
  }

  remove(path: string): void {
    this.entries.delete(path);
  }

  removeDirectory(path: string): void {
    this.entries.delete(path);
  }

  hardlink(existing: string, path: string): void {
    const entry = this.entries.get(existing);
    if (!entry) return;
    this.entries.set(path, entry);
    if (entry.kind === 'file' && entry.text === undefined && this.keepText(path)) this.textWanted.add(entry);
  }

  symlink(path: string, target: string, attributes: InodeAttributes): void {
    this.entries.set(path, { ...this.#owned(attributes), mode: 0o777, kind: 'symlink', size: target.length, linkTarget: target });
  }

  restoreDirectory(path: string, attributes: InodeAttributes): void {
    const entry = this.entries.get(path);
    if (entry?.kind === 'directory') Object.assign(entry, this.#owned(attributes));
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}

  #owned(attributes: InodeAttributes): Pick<ManifestEntry, 'mode' | 'uid' | 'gid' | 'mtimeMs'> {
    return {
      mode: attributes.mode & 0o7777,
      uid: attributes.uid ?? this.#uid,
      gid: attributes.gid ?? this.#gid,
      mtimeMs: attributes.mtime === undefined ? Date.now() : attributes.mtime * 1000,
    };
  }
}

function directoryEntry(mode: number): ManifestEntry {
  return { kind: 'directory', mode, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, mtimeMs: Date.now(), size: 0 };
}

function topDirectoryToStrip(entries: ReadonlyMap<string, ManifestEntry>): string | undefined {
  const top = [...entries].filter(([path]) => path !== '' && !path.includes('/'));
  const name = loneTopDirectory(top.map(([path, entry]) => ({ name: path, isDirectory: () => entry.kind === 'directory' })));
  if (name === undefined) return undefined;
  const prefix = `${name}/`;
  const inner = [...entries.keys()].filter((path) => path.startsWith(prefix) && !path.slice(prefix.length).includes('/')).map((path) => path.slice(prefix.length));
  return namesAnAppSpec(inner) ? name : undefined;
}

/** The top directory's content one level up; the top directory itself becomes the archive folder. */
function withoutTopDirectory(entries: ReadonlyMap<string, ManifestEntry>, top: string): Map<string, ManifestEntry> {
  const prefix = `${top}/`;
  const moved = new Map<string, ManifestEntry>([['', entries.get(top) as ManifestEntry]]);
  for (const [path, entry] of entries) if (path.startsWith(prefix)) moved.set(path.slice(prefix.length), entry);
  return moved;
}

function fsError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: ${syscall} '${path}'`);
  error.code = code;
  error.syscall = syscall;
  error.path = path;
  return error;
}

/** Linux gives up after 40 links in one lookup. */
const MAX_LINK_HOPS = 40;

/** The revision as the manifest holds it, answering as the unpacked folder would (./revision-files.ts). */
export class BundleManifest implements RevisionFiles {
  readonly #entries: ReadonlyMap<string, ManifestEntry>;
  #children: Map<string, string[]> | undefined;

  constructor(
    /** The absolute path the files appear under. */
    readonly root: string,
    entries: ReadonlyMap<string, ManifestEntry>,
    /** Entries and bytes read from the archive; the top directory moved up, if the rule applied. */
    readonly summary: { entries: number; bytes: number; strippedTopDirectory?: string },
  ) {
    this.#entries = entries;
  }

  lstat(path: string): RevisionFileStats | undefined {
    const found = this.#lookup(path, false);
    return typeof found === 'string' ? statsOf(this.#entries.get(found) as ManifestEntry) : undefined;
  }

  stat(path: string): RevisionFileStats | undefined {
    const found = this.#lookup(path, true);
    return typeof found === 'string' ? statsOf(this.#entries.get(found) as ManifestEntry) : undefined;
  }

  readdir(path: string): RevisionDirent[] {
    const found = this.#found(path, true, 'scandir');
    if (this.#entries.get(found)?.kind !== 'directory') throw fsError('ENOTDIR', 'scandir', path);
    const prefix = found === '' ? '' : `${found}/`;
    return (this.#childIndex().get(found) ?? []).map((name) => {
      const kind = (this.#entries.get(prefix + name) as ManifestEntry).kind;
      return { name, isFile: () => kind === 'file', isDirectory: () => kind === 'directory', isSymbolicLink: () => kind === 'symlink' };
    });
  }

  readlink(path: string): string {
    const target = this.#entries.get(this.#found(path, false, 'readlink'))?.linkTarget;
    if (target === undefined) throw fsError('EINVAL', 'readlink', path);
    return target;
  }

  realpath(path: string): string {
    const found = this.#found(path, true, 'realpath');
    return found === '' ? this.root : `${this.root}/${found}`;
  }

  readText(path: string): string {
    const entry = this.#entries.get(this.#found(path, true, 'open')) as ManifestEntry;
    if (entry.kind !== 'file') throw fsError('EISDIR', 'open', path);
    if (entry.text === undefined) throw new Error(`${path}: the dry run kept only the appspec's text from the archive`);
    return entry.text;
  }

  readHead(path: string, length: number): Buffer {
    const found = this.#lookup(path, true);
    return (typeof found === 'string' ? this.#entries.get(found)?.head?.subarray(0, length) : undefined) ?? Buffer.alloc(0);
  }

  /** The archive-relative path `path` names, or throws the error the file system would. */
  #found(path: string, followLast: boolean, syscall: string): string {
    const found = this.#lookup(path, followLast);
    if (typeof found !== 'string') throw fsError(found.error, syscall, path);
    return found;
  }

  /**
   * The archive-relative path `path` names (links followed, the last one only when asked), or why
   * it names nothing: ENOENT, or ENOTDIR when a component on the way is not a directory.
   */
  #lookup(path: string, followLast: boolean): string | { error: 'ENOENT' | 'ENOTDIR' } {
    const normal = posix.normalize(path).replace(/(?<=.)\/+$/, '');
    let relative: string;
    if (normal === this.root) relative = '';
    else if (normal.startsWith(`${this.root}/`)) relative = normal.slice(this.root.length + 1);
    else return { error: 'ENOENT' };
    const pending = relative === '' ? [] : relative.split('/').reverse();
    const resolved: string[] = [];
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.pop() as string;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        // Above the archive folder is not part of the revision.
        if (resolved.length === 0) return { error: 'ENOENT' };
        resolved.pop();
        continue;
      }
      const parent = resolved.join('/');
      if (this.#entries.get(parent)?.kind !== 'directory') return { error: 'ENOTDIR' };
      const here = parent === '' ? part : `${parent}/${part}`;
      const entry = this.#entries.get(here);
      if (entry === undefined) return { error: 'ENOENT' };
      if (entry.kind === 'symlink' && (pending.length > 0 || followLast)) {
        if (++hops > MAX_LINK_HOPS) throw fsError('ELOOP', 'stat', path);
        // Never absolute: the entry writer refuses such links.
        if ((entry.linkTarget as string).startsWith('/')) return { error: 'ENOENT' };
        for (const component of (entry.linkTarget as string).split('/').reverse()) pending.push(component);
        continue;
      }
      resolved.push(part);
    }
    return resolved.join('/');
  }

  #childIndex(): Map<string, string[]> {
    if (this.#children) return this.#children;
    const children = new Map<string, string[]>();
    for (const path of this.#entries.keys()) {
      if (path === '') continue;
      const slash = path.lastIndexOf('/');
      const parent = slash === -1 ? '' : path.slice(0, slash);
      const list = children.get(parent) ?? [];
      list.push(slash === -1 ? path : path.slice(slash + 1));
      children.set(parent, list);
    }
    this.#children = children;
    return children;
  }
}

function statsOf(entry: ManifestEntry): RevisionFileStats {
  return {
    mode: TYPE_BITS[entry.kind] | entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    atimeMs: entry.mtimeMs,
    mtimeMs: entry.mtimeMs,
    isFile: () => entry.kind === 'file',
    isDirectory: () => entry.kind === 'directory',
    isSymbolicLink: () => entry.kind === 'symlink',
  };
}

/** Paths (archive-relative, before the top-directory rule) that may hold the appspec named `name`. */
export function appspecCandidates(name: string | undefined): (relativePath: string) => boolean {
  const names = new Set([name, 'appspec.yml', 'appspec.yaml'].filter((candidate): candidate is string => candidate !== undefined).map((candidate) => basename(candidate)));
  // At the top, or one level down (a wrapped bundle, or the nested appspec the lookup's hint names).
  return (relativePath) => names.has(basename(relativePath)) && relativePath.split('/').length <= (name?.includes('/') ? name.split('/').length + 1 : 2);
}
