import { fstatSync, lstatSync, readdirSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, rename, rm, rmdir, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { SelinuxContext } from '../appspec/types.js';
import type { Logger } from '../log/logger.js';
import { descriptorPath } from '../util/descriptor-path.js';
import { onlyRootChanges } from '../util/folder-trust.js';
import { removeTree } from '../util/remove-tree.js';
import { naming, type DestinationTree } from './destination-tree.js';
import { copyPreserving } from './preserving-copy.js';
import { semanageAddArguments } from './selinux.js';
import { loadExeca, type ToolPaths } from './tools.js';

type JournalEntry =
  | { kind: 'moved'; original: string; backup: string }
  | { kind: 'created'; path: string; directory: boolean }
  | { kind: 'context-added'; path: string }
  | { kind: 'context-removed'; path: string; context: SelinuxContext | undefined };

/**
 * What Install changed on the host, in order, so that a failure half-way can put everything back:
 * nothing is deleted during Install (files the previous deployment left and files OVERWRITE replaces
 * are moved into a backup folder under the deployment folder), and the rollback undoes the entries
 * in reverse. The backup is deleted once Install succeeded, or once the rollback completed.
 *
 * Destination paths are reached through the DestinationTree: a rollback undoes what was done to the very
 * folders Install worked in, even if one of them was renamed or replaced by a symlink since.
 */
export class InstallJournal {
  private readonly entries: JournalEntry[] = [];
  private readonly directoryTimes = new Map<string, { atime: number; mtime: number }>();
  private backupDir: Promise<string> | undefined;
  private backupCount = 0;

  constructor(
    private readonly backupParent: string,
    private readonly logger: Logger,
    private readonly tree: DestinationTree,
  ) {}

  /**
   * Directories whose times Install will change by adding or removing entries; put back on rollback.
   * Opening them walks every destination folder that exists before anything is written, so a symlink
   * Install may not follow refuses the deployment here (see DestinationTree).
   */
  rememberDirectoryTimes(directories: Iterable<string>): void {
    for (const dir of directories) {
      const fd = this.tree.existingDirectory(dir);
      if (fd === undefined) continue;
      const stats = fstatSync(fd);
      // Seconds as numbers keep sub-millisecond precision, which Date objects would cut.
      this.directoryTimes.set(dir, { atime: stats.atimeMs / 1000, mtime: stats.mtimeMs / 1000 });
    }
  }

  /** Take `path` out of the way, keeping it to put back. */
  async moveAside(path: string): Promise<void> {
    const backup = join(await this.backupFolder(), String(this.backupCount++));
    const name = this.tree.entry(path);
    await move(name, backup).catch((error: unknown) => {
      throw naming(error, name, path);
    });
    // A folder moved into the backup: its descriptors (and those below it) now name backup folders.
    this.tree.forget(path);
    this.entries.push({ kind: 'moved', original: path, backup });
  }

  created(path: string, directory: boolean): void {
    this.entries.push({ kind: 'created', path, directory });
  }

  contextAdded(path: string): void {
    this.entries.push({ kind: 'context-added', path });
  }

  contextRemoved(path: string, context: SelinuxContext | undefined): void {
    this.entries.push({ kind: 'context-removed', path, context });
  }

  get backupLocation(): Promise<string> | undefined {
    return this.backupDir;
  }

  /** Undo every entry, newest first; returns what could not be undone (empty when the host is as before). */
  async rollback(tools: ToolPaths): Promise<string[]> {
    const problems: string[] = [];
    for (const entry of [...this.entries].reverse()) {
      try {
        await this.undo(entry, tools);
      } catch (error) {
        problems.push(`${describe(entry)}: ${(error as Error).message}`);
      }
    }
    for (const [dir, times] of this.directoryTimes) {
      try {
        await utimes(descriptorPath(this.tree.directory(dir)), times.atime, times.mtime);
      } catch {
        // only times: the rollback's result does not depend on them
      }
    }
    this.entries.length = 0;
    return problems;
  }

  async discardBackups(): Promise<void> {
    if (!this.backupDir) return;
    const dir = await this.backupDir;
    try {
      if (this.othersCouldWriteInto(dir)) await removeTree(dir);
      else await rm(dir, { recursive: true, force: true });
    } catch (error) {
      this.logger.warn(`Could not delete the install backup ${dir}: ${(error as Error).message}`);
    }
  }

  /**
   * Whether a folder moved into the backup can have gained entries since (its owner, or anyone, may write
   * it): the backup is then removed by removeTree, which never follows a symlink swapped in while it runs.
   * Folders are moved only once empty, and the backup folder itself is the agent's alone (mkdtemp: 0700).
   */
  private othersCouldWriteInto(dir: string): boolean {
    const uid = process.geteuid?.() ?? 0;
    return readdirSync(dir, { withFileTypes: true }).some((entry) => entry.isDirectory() && !onlyRootChanges(lstatSync(join(dir, entry.name)), uid));
  }

  private async undo(entry: JournalEntry, tools: ToolPaths): Promise<void> {
    switch (entry.kind) {
      case 'created': {
        const name = this.tree.entry(entry.path);
        const named = (error: unknown) => ignoreMissing(naming(error, name, entry.path) as NodeJS.ErrnoException);
        if (entry.directory) {
          await rmdir(name).catch(named);
          this.tree.forget(entry.path);
        } else {
          await unlink(name).catch(named);
        }
        return;
      }
      case 'moved': {
        const name = this.tree.entry(entry.original);
        if (await exists(name)) throw new Error(`${entry.original} exists again; its previous version is kept at ${entry.backup}`);
        await move(entry.backup, name).catch((error: unknown) => {
          throw naming(error, name, entry.original);
        });
        return;
      }
      case 'context-added':
        if (tools.semanage) await (await loadExeca()).execa(tools.semanage, ['fcontext', '-d', entry.path], { reject: false });
        return;
      case 'context-removed':
        if (!tools.semanage) return;
        if (!entry.context) throw new Error('the SELinux rule it had is unknown (no previous install.json); re-add it with semanage fcontext -a');
        const { execa } = await loadExeca();
        await execa(tools.semanage, semanageAddArguments(entry.context, entry.path));
        if (tools.restorecon) await execa(tools.restorecon, ['-v', entry.path], { reject: false });
        return;
    }
  }

  private backupFolder(): Promise<string> {
    this.backupDir ??= mkdir(this.backupParent, { recursive: true }).then(() => mkdtemp(join(this.backupParent, 'install-backup-')));
    return this.backupDir;
  }
}

/** `rename`, or across file systems a preserving copy then removal of the original. */
async function move(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
  }
  try {
    await copyPreserving(from, to);
  } catch (error) {
    await rm(to, { recursive: true, force: true });
    throw error;
  }
  const stats = await lstat(from);
  if (stats.isDirectory()) await rmdir(from);
  else await unlink(from);
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}

function describe(entry: JournalEntry): string {
  switch (entry.kind) {
    case 'created':
      return `could not remove ${entry.path}`;
    case 'moved':
      return `could not put back ${entry.original}`;
    case 'context-added':
      return `could not remove the SELinux rule for ${entry.path}`;
    case 'context-removed':
      return `could not restore the SELinux rule for ${entry.path}`;
  }
}
