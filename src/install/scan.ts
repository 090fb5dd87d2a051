import { lstatSync, readdirSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { FileMapping, Permission } from '../appspec/types.js';
import { absentAsUndefined, diskFiles, type RevisionFileStats, type RevisionFiles } from '../archive/revision-files.js';
import type { CleanupEntry } from './cleanup-file.js';
import type { EntryStats, EntryType, InstallScan, PathState, SourceEntry, SourceScan } from './types.js';

export interface ScanInput {
  archiveDir: string;
  files: readonly FileMapping[];
  permissions: readonly Permission[];
  cleanupEntries: CleanupEntry[];
  cwd?: string;
  /** Where the revision's files are read: the disk, or an archive read in place (the dry run). */
  revisionFiles?: RevisionFiles;
}

/**
 * Read everything the plan needs: the revision's files and the destination paths they would land on.
 * Synchronous on purpose: these are tens of thousands of tiny metadata calls, several times faster
 * without a thread-pool round trip each, and nothing is written while they run.
 */
export function scanInstall(input: ScanInput): InstallScan {
  const cwd = input.cwd ?? process.cwd();
  const sources = input.files.map((mapping) => scanSource(input.archiveDir, mapping, input.revisionFiles));
  const destination = new Map<string, PathState>();
  const probe = (path: string): PathState | undefined => {
    if (destination.has(path)) return destination.get(path);
    const state = probePath(path);
    if (state) destination.set(path, state);
    return state;
  };

  for (const source of sources) probeTargets(source, cwd, probe);
  for (const permission of input.permissions) probe(resolve(cwd, permission.object));

  const cleanupChildren = new Map<string, string[]>();
  for (const entry of input.cleanupEntries) {
    if (entry.kind !== 'path') continue;
    const path = resolve(cwd, entry.path);
    if (probe(path)?.type === 'directory' && !cleanupChildren.has(path)) {
      cleanupChildren.set(path, childrenOf(path));
    }
  }
  return { cwd, sources, destination, cleanupEntries: input.cleanupEntries, cleanupChildren };
}

/** The files of one `files` entry, links recorded as links and never descended (§10.20). */
export function scanSource(archiveDir: string, mapping: FileMapping, files: RevisionFiles = diskFiles): SourceScan {
  // `File.join` semantics: `/` is the archive itself, `/bin` is `<archive>/bin`.
  // Without its trailing slash: `link/` would make lstat follow the link this scan must not follow.
  const sourcePath = join(archiveDir, mapping.source).replace(/(?<=.)\/+$/, '');
  const scan: SourceScan = { mapping, sourcePath, entries: [] };
  if (isOutside(archiveDir, sourcePath, files)) return { ...scan, problem: 'outside' };
  const stats = files.lstat(sourcePath);
  if (!stats) return { ...scan, problem: 'missing' };
  walk(sourcePath, '', stats, scan.entries, files);
  return scan;
}

function walk(absolutePath: string, relativePath: string, stats: RevisionFileStats, entries: SourceEntry[], files: RevisionFiles): void {
  const type = typeOf(stats);
  const entry: SourceEntry = { relativePath, absolutePath, type, stats: statsOf(stats) };
  if (type === 'symlink') entry.linkTarget = files.readlink(absolutePath);
  entries.push(entry);
  if (type === 'directory') walkChildren(absolutePath, relativePath, entries, files);
}

/** Below a folder the types come from readdir; only links are lstat'ed (their copies need owner and times). */
function walkChildren(absolutePath: string, relativePath: string, entries: SourceEntry[], files: RevisionFiles): void {
  // Names from readdir hold no '/': concatenation, which costs a fraction of join's normalising.
  const prefix = absolutePath.endsWith('/') ? absolutePath : `${absolutePath}/`;
  for (const child of files.readdir(absolutePath)) {
    const childPath = prefix + child.name;
    const childRelative = relativePath === '' ? child.name : `${relativePath}/${child.name}`;
    if (child.isSymbolicLink()) {
      walk(childPath, childRelative, files.lstat(childPath) as RevisionFileStats, entries, files);
      continue;
    }
    const type: EntryType = child.isDirectory() ? 'directory' : child.isFile() ? 'file' : 'other';
    entries.push({ relativePath: childRelative, absolutePath: childPath, type });
    if (type === 'directory') walkChildren(childPath, childRelative, entries, files);
  }
}

function statsOf(stats: RevisionFileStats): EntryStats {
  return { mode: stats.mode, uid: stats.uid, gid: stats.gid, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs };
}

/**
 * The destination paths the plan will ask about: each target and all its ancestors. Below a target directory that does not exist nothing can exist, so its subtree is skipped.
 */
function probeTargets(source: SourceScan, cwd: string, probe: (path: string) => PathState | undefined): void {
  const root = source.entries[0];
  if (!root) return;
  const rootTarget =
    root.type === 'directory' ? resolve(cwd, source.mapping.destination) : resolve(cwd, source.mapping.destination, basename(source.sourcePath));
  // Every ancestor, not just up to the first existing one: the previous deployment's cleanup may remove
  // that one (a folder it created), and the plan must then know which folders above it exist.
  for (let parent = dirname(rootTarget); parent !== '/'; parent = dirname(parent)) probe(parent);
  let skipBelow: string | undefined;
  for (const entry of source.entries) {
    if (skipBelow !== undefined && entry.relativePath.startsWith(skipBelow)) continue;
    const target = entry.relativePath === '' ? rootTarget : join(rootTarget, entry.relativePath);
    const state = probe(target);
    if (entry.type === 'directory' && state?.resolved !== 'directory') {
      if (entry.relativePath === '') return;
      skipBelow = `${entry.relativePath}/`;
    }
  }
}

/*
 * The destination is read by path here, to plan: another user may change it meanwhile, and a folder
 * gone or replaced by a file between two looks reads as missing. Install itself goes by descriptor and
 * checks everything again as it works (./destination-tree.ts).
 */

function probePath(path: string): PathState | undefined {
  const stats = absentAsUndefined(() => lstatSync(path, { throwIfNoEntry: false }));
  if (!stats) return undefined;
  const type = typeOf(stats);
  if (type !== 'symlink') return { type, resolved: type };
  const target = absentAsUndefined(() => statSync(path, { throwIfNoEntry: false }));
  return { type, resolved: target ? typeOf(target) : undefined };
}

function childrenOf(path: string): string[] {
  return (absentAsUndefined(() => readdirSync(path)) ?? []).map((name) => join(path, name));
}

/**
 * A source must stay inside the revision, also through links in its parent folders: an appspec could
 * otherwise install `/etc/shadow` from `../../../etc/shadow` or through a link to `/`.
 */
function isOutside(archiveDir: string, sourcePath: string, files: RevisionFiles): boolean {
  if (escapes(relative(archiveDir, sourcePath))) return true;
  if (resolve(sourcePath) === resolve(archiveDir)) return false;
  let realParent: string;
  try {
    realParent = files.realpath(dirname(sourcePath));
  } catch {
    return false; // a missing parent is reported as a missing source
  }
  return escapes(relative(files.realpath(archiveDir), realParent));
}

function escapes(relativePath: string): boolean {
  return relativePath === '..' || relativePath.startsWith(`..${sep}`) || isAbsolute(relativePath);
}

function typeOf(stats: RevisionFileStats | Stats): EntryType {
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isDirectory()) return 'directory';
  if (stats.isFile()) return 'file';
  return 'other';
}
