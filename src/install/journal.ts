import fs from 'node:fs';
import { join } from 'node:path';
import type { SelinuxContext } from '../appspec/types.js';
import { installBackupDir, installJournalFile } from '../deployment/layout.js';
import type { Logger } from '../log/logger.js';
import { InstallError } from '../report/errors.js';
import { thisProcess } from '../util/process-identity.js';
import { changeMade } from './crash-switch.js';
import { naming, type DestinationTree } from './destination-tree.js';
import { formatRecords, type JournalRecord } from './journal-records.js';
import { moveEntry, removeBackup, SAVED_CLEANUP, SAVED_INSTALL_JSON, syncDirectory, writeDurably } from './backup.js';
import { journalBeingRecovered, retireJournal, undoInstall, type UndoOutcome } from './recovery.js';
import type { ToolPaths } from './tools.js';

export interface JournalOpening {
  /** The deployment folder: the journal and the backup folder live in it. */
  deploymentDir: string;
  group: string;
  deployment: string;
  cleanupFile: string;
  installJsonFile: string;
  /** What the two files held before Install (undefined: absent), saved to be put back. */
  previousCleanup: string | undefined;
  previousInstallJson: string | undefined;
  /** Directories whose times Install will change by adding or removing entries; put back on rollback. */
  directories: Iterable<string>;
  /** How Install reaches destination entries; the journal moves and undoes through it too. */
  tree: DestinationTree;
  logger: Logger;
}

/**
 * What Install changes on the host, written down before it is changed, so that a failure half-way in
 * this process, and a `kill -9` at any point, can both put everything back. Nothing is deleted during
 * Install: files the previous deployment left and files OVERWRITE replaces are moved into a backup
 * folder (`install-backup`, beside the journal in the deployment folder); a rollback undoes the
 * records newest first (recovery.ts). The journal and the backup are deleted once Install committed,
 * or once the rollback completed.
 *
 * Write-ahead: every move and every create is written to the journal before it is made, in batches,
 * and each batch is on disk (fdatasync) before its first change is, so a power cut cannot leave a
 * change that no record announces either; later records are written and synced while earlier
 * changes run. A `kill -9` needs no sync at all (the page cache survives the process), only the order
 * of the writes. The records are in docs/decisions.md, "Crash consistency".
 *
 * Destination paths are reached through the DestinationTree (destination-tree.ts): a move aside and its
 * undo work on the very folders Install walked, even if one of them was renamed or replaced by a symlink
 * since; a recovery after a crash walks them again by the same rules.
 */
export class InstallJournal {
  /** What completed, as records: a rollback in this process undoes exactly these. */
  private readonly done: JournalRecord[] = [];
  /** The begin and saved records: a rollback needs the times and the saved files. */
  private readonly start: JournalRecord[] = [];
  private nextEntry = 0;
  private closed = false;

  private constructor(
    private readonly fd: number,
    readonly file: string,
    readonly backupDir: string,
    private readonly logger: Logger,
    private readonly tree: DestinationTree,
  ) {}

  /**
   * Starts the journal of one Install, before anything is changed: the `begin` record (whose Install,
   * which directory times to put back), then a copy of the cleanup file and install.json in the backup
   * folder, all on disk before this returns.
   */
  static async open(opening: JournalOpening): Promise<InstallJournal> {
    const file = installJournalFile(opening.deploymentDir);
    const backupDir = installBackupDir(opening.deploymentDir);
    if (journalBeingRecovered(opening.deploymentDir)) {
      throw new InstallError(`Another agent process is rolling back an interrupted Install of this deployment (${opening.deploymentDir}); deploy again once it is done`);
    }
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new InstallError(`An earlier Install of this deployment was interrupted and is not undone yet (${file}); restart the agent to undo it, then deploy again`);
      }
      throw error;
    }
    const journal = new InstallJournal(fd, file, backupDir, opening.logger, opening.tree);
    try {
      const times: [string, number, number][] = [];
      for (const dir of opening.directories) {
        const folder = opening.tree.existingDirectory(dir);
        if (folder === undefined) continue;
        const stats = fs.fstatSync(folder);
        // Seconds as numbers keep sub-millisecond precision, which Date objects would cut.
        times.push([dir, stats.atimeMs / 1000, stats.mtimeMs / 1000]);
      }
      journal.begin({ t: 'begin', v: 1, group: opening.group, deployment: opening.deployment, owner: thisProcess(), cleanupFile: opening.cleanupFile, installJsonFile: opening.installJsonFile, times });
      // No journal names this folder yet if it is here: a leftover of a journal already retired.
      await removeBackup(backupDir);
      fs.mkdirSync(backupDir, { mode: 0o700 });
      if (opening.previousCleanup !== undefined) writeDurably(join(backupDir, SAVED_CLEANUP), opening.previousCleanup);
      if (opening.previousInstallJson !== undefined) writeDurably(join(backupDir, SAVED_INSTALL_JSON), opening.previousInstallJson);
      syncDirectory(backupDir);
      journal.begin({ t: 'saved', cleanup: opening.previousCleanup !== undefined, installJson: opening.previousInstallJson !== undefined });
      fs.fdatasyncSync(fd);
      syncDirectory(opening.deploymentDir);
    } catch (error) {
      journal.close();
      fs.rmSync(backupDir, { recursive: true, force: true });
      fs.rmSync(file, { force: true });
      throw error;
    }
    return journal;
  }

  /** The number of the next backup entry, for a move to announce. */
  entry(): number {
    return this.nextEntry++;
  }

  /**
   * Writes records ahead of the changes they announce; resolves once they are on disk. The sync runs in
   * the thread pool, so the caller can go on with changes announced earlier meanwhile.
   */
  intend(records: readonly JournalRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    this.write(records);
    return new Promise((resolve, reject) => fs.fdatasync(this.fd, (error) => (error ? reject(error) : resolve())));
  }

  /**
   * Moves `path` to backup entry `n`, which an `intend`ed `move` record announced. `mark`: write `moved`
   * once it is complete (an OVERWRITE move, whose path gets a new file next).
   */
  async moveAside(n: number, path: string, { mark = false } = {}): Promise<void> {
    const name = this.tree.entry(path);
    await moveEntry(name, this.entryPath(n)).catch((error: unknown) => {
      throw naming(error, name, path);
    });
    // A folder moved into the backup: its descriptors (and those below it) now name backup folders.
    this.tree.forget(path);
    this.done.push({ t: 'move', n, path }, { t: 'moved', n });
    if (mark) this.write([{ t: 'moved', n }]);
    changeMade('install');
  }

  /** Every move of the previous deployment's files is complete. */
  removalsDone(): void {
    this.write([{ t: 'removed' }]);
    this.done.push({ t: 'removed' });
  }

  created(path: string, directory: boolean): void {
    this.done.push(directory ? { t: 'create', path, dir: true } : { t: 'create', path });
    changeMade('install');
  }

  /** A create that failed because something was there: a recovery must not remove it. */
  notCreated(path: string): void {
    this.write([{ t: 'not-created', path }]);
  }

  contextAdded(path: string): void {
    const record: JournalRecord = { t: 'context-added', path };
    this.write([record]);
    this.done.push(record);
    changeMade('install');
  }

  /** Before the previous deployment's rule for `path` is deleted; `deleted()` once it is. */
  contextRemoving(path: string, context: SelinuxContext | undefined): { deleted: () => void } {
    const record: JournalRecord = context ? { t: 'context-removed', path, context } : { t: 'context-removed', path };
    this.write([record]);
    return { deleted: () => this.done.push(record) };
  }

  /** Install is complete: from now on a crash is finished forward. On disk before this returns. */
  async commit(): Promise<void> {
    this.write([{ t: 'commit' }]);
    await new Promise<void>((resolve, reject) => fs.fdatasync(this.fd, (error) => (error ? reject(error) : resolve())));
    changeMade('install', 'commit');
  }

  /** After the commit: the backup and the journal go. */
  async discard(): Promise<void> {
    this.close();
    try {
      await retireJournal(this.file, this.backupDir, { keepBackup: false });
    } catch (error) {
      this.logger.warn(`Could not delete the install backup ${this.backupDir}: ${(error as Error).message}`);
    }
  }

  /**
   * Undoes everything that completed, newest first, and puts the cleanup file and install.json back;
   * the journal is then retired. What could not be undone is returned, with where its backup is kept.
   */
  async rollback(tools: ToolPaths): Promise<UndoOutcome & { kept: string }> {
    const records = [...this.start, ...this.done];
    const outcome = await undoInstall(records, this.backupDir, tools, (record) => this.write([record]), this.tree);
    // Said before the backup goes, so a crash in between is not taken for an Install to undo again.
    if (outcome.problems.length === 0) this.write([{ t: 'undone' }]);
    this.close();
    const kept = await retireJournal(this.file, this.backupDir, { keepBackup: outcome.problems.length > 0 });
    return { ...outcome, kept };
  }

  private begin(record: JournalRecord): void {
    this.write([record]);
    this.start.push(record);
  }

  private entryPath(n: number): string {
    return join(this.backupDir, String(n));
  }

  private write(records: readonly JournalRecord[]): void {
    if (this.closed) throw new Error(`the install journal ${this.file} is closed`);
    const bytes = Buffer.from(formatRecords(records));
    let written = 0;
    while (written < bytes.length) written += fs.writeSync(this.fd, bytes, written, bytes.length - written);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}
