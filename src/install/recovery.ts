import { readdirSync, readFileSync, type Dirent } from 'node:fs';
import { readFile, rename, rm, utimes } from 'node:fs/promises';
import fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { installBackupDir, installJournalFile } from '../deployment/layout.js';
import type { Logger } from '../log/logger.js';
import { isProcessIdentity, isRunning, thisProcess, type ProcessIdentity } from '../util/process-identity.js';
import { descriptorPath } from '../util/descriptor-path.js';
import { exists, removeBackup, removeEntry, SAVED_CLEANUP, SAVED_INSTALL_JSON } from './backup.js';
import { changeMade } from './crash-switch.js';
import { DestinationTree, naming } from './destination-tree.js';
import { formatRecords, parseJournal, type JournalRecord } from './journal-records.js';
import { copyPreserving } from './preserving-copy.js';
import { semanageAddArguments } from './selinux.js';
import { findTool } from '../util/find-tool.js';
import { loadExeca, type ToolPaths } from './tools.js';

/**
 * Undoing an Install from its journal (journal.ts): after a failure in the same process, and after a
 * crash, at the next start. One algorithm for both, driven by what the records say and what is on disk
 * now, so it can itself be cut short by a crash and run again: every step is done at most once in
 * effect (a path is removed only if something is there, a backup entry put back only if it is still in
 * the backup), and the one step that is not (copying an entry back across file systems) is announced
 * by a `restoring` record first. docs/decisions.md, "Crash consistency", has the reasoning.
 *
 * Destination entries are reached through a DestinationTree, as Install reaches them: the journal's in
 * the same process, a new one at the next start, which walks the folders again and follows no symlink
 * another user could have planted meanwhile (such a path is a problem reported, never followed).
 */

export interface UndoOutcome {
  /** Paths Install had created that were removed. */
  removed: number;
  /** Paths put back from the backup. */
  restored: number;
  /** What could not be undone, one line each. */
  problems: string[];
}

/** Undoes `records` newest first, then puts back directory times, the cleanup file and install.json. */
export async function undoInstall(
  records: readonly JournalRecord[],
  backupDir: string,
  tools: ToolPaths,
  append: (record: JournalRecord) => void,
  tree: DestinationTree,
): Promise<UndoOutcome> {
  const outcome: UndoOutcome = { removed: 0, restored: 0, problems: [] };
  const moved = new Set<number>();
  const restoring = new Set<number>();
  const notCreated = new Set<string>();
  let removalsEnd = -1;
  records.forEach((record, index) => {
    if (record.t === 'moved') moved.add(record.n);
    else if (record.t === 'restoring') restoring.add(record.n);
    else if (record.t === 'not-created') notCreated.add(record.path);
    else if (record.t === 'removed') removalsEnd = index;
  });
  for (let index = records.length - 1; index >= 0; index--) {
    const record = records[index];
    try {
      switch (record.t) {
        case 'create':
          if (await undoCreate(record, moved, notCreated, tree)) {
            outcome.removed++;
            changeMade('recovery');
          }
          break;
        case 'move': {
          // Complete for certain: marked so, or one of the previous deployment's files once all of them were moved.
          const complete = moved.has(record.n) || index < removalsEnd;
          if (await undoMove(record, complete, restoring.has(record.n), backupDir, append, tree)) {
            outcome.restored++;
            changeMade('recovery');
          }
          break;
        }
        case 'context-added':
          if (tools.semanage) await (await loadExeca()).execa(tools.semanage, ['fcontext', '-d', record.path], { reject: false });
          break;
        case 'context-removed':
          await restoreContext(record, tools);
          break;
        default:
          break;
      }
    } catch (error) {
      outcome.problems.push(describeProblem(record, error));
    }
  }
  const begin = records.find((record) => record.t === 'begin');
  for (const [dir, atime, mtime] of begin?.t === 'begin' ? begin.times : []) {
    try {
      const folder = tree.existingDirectory(dir);
      if (folder !== undefined) await utimes(descriptorPath(folder), atime, mtime);
    } catch {
      // only times: the rollback's result does not depend on them
    }
  }
  const saved = records.find((record) => record.t === 'saved');
  if (begin?.t === 'begin' && saved?.t === 'saved') {
    // Before `saved`, Install had not touched either file.
    for (const [path, wasThere, copy] of [
      [begin.cleanupFile, saved.cleanup, SAVED_CLEANUP],
      [begin.installJsonFile, saved.installJson, SAVED_INSTALL_JSON],
    ] as const) {
      try {
        if (wasThere) await writeFileAtomic(path, await readFile(join(backupDir, copy), 'utf8'));
        else await rm(path, { force: true });
      } catch (error) {
        outcome.problems.push(`could not restore ${path}: ${(error as Error).message}`);
      }
    }
  }
  return outcome;
}

/** Removes what a `create` record announced, if it is there and is ours; true when something was removed. */
async function undoCreate(
  record: Extract<JournalRecord, { t: 'create' }>,
  moved: ReadonlySet<number>,
  notCreated: ReadonlySet<string>,
  tree: DestinationTree,
): Promise<boolean> {
  if (notCreated.has(record.path)) return false;
  // Not moved aside yet: what is at the path is still the file that was there before.
  if (record.after !== undefined && !moved.has(record.after)) return false;
  // Its folder is not there: announced, never made.
  const name = entryName(tree, record.path);
  if (name === undefined) return false;
  const stats = await fs.promises.lstat(name).catch(() => undefined);
  if (!stats) return false;
  // Something of the other kind is not what Install made.
  if (stats.isDirectory() !== (record.dir === true)) return false;
  await removeEntry(name).catch((error: unknown) => {
    throw naming(error, name, record.path);
  });
  if (record.dir) tree.forget(record.path);
  return true;
}

/** How the tree names `path`, or undefined when a folder on its way does not exist. */
function entryName(tree: DestinationTree, path: string): string | undefined {
  try {
    return tree.entry(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Puts backup entry `n` back at its path, if it is in the backup; true when it was put back. */
async function undoMove(
  record: Extract<JournalRecord, { t: 'move' }>,
  complete: boolean,
  restoring: boolean,
  backupDir: string,
  append: (record: JournalRecord) => void,
  tree: DestinationTree,
): Promise<boolean> {
  const entry = join(backupDir, String(record.n));
  // A copy across file systems cut short: never named as the entry, so it is only a leftover.
  await rm(`${entry}.part`, { recursive: true, force: true });
  const inBackup = await exists(entry);
  const name = entryName(tree, record.path);
  if (name === undefined) {
    if (inBackup || complete) throw new Error(`the folder ${dirname(record.path)} is gone; ${inBackup ? `the previous version is kept at ${entry}` : 'and so is its backup'}`);
    return false;
  }
  let atPath = await exists(name);
  if (restoring && inBackup && atPath) {
    // A copy back that an earlier recovery had begun and not finished (one file, link or empty folder): start it again.
    await removeEntry(name);
    atPath = false;
  }
  if (inBackup && atPath) {
    if (complete) throw new Error(`${record.path} exists again; its previous version is kept at ${entry}`);
    // A copy across file systems had not removed the original yet: the original never left.
    await rm(entry, { recursive: true, force: true });
    return false;
  }
  if (inBackup) {
    try {
      await rename(entry, name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw naming(error, name, record.path);
      append({ t: 'restoring', n: record.n });
      await copyPreserving(entry, name).catch((copyError: unknown) => {
        throw naming(copyError, name, record.path);
      });
      await removeEntry(entry);
    }
    return true;
  }
  if (!atPath && complete) throw new Error(`${record.path} is gone and so is its backup ${entry}`);
  return false;
}

async function restoreContext(record: Extract<JournalRecord, { t: 'context-removed' }>, tools: ToolPaths): Promise<void> {
  if (!tools.semanage) return;
  if (!record.context) throw new Error('the SELinux rule it had is unknown (no previous install.json); re-add it with semanage fcontext -a');
  const { execa } = await loadExeca();
  const args = semanageAddArguments(record.context, record.path);
  const added = await execa(tools.semanage, args, { reject: false });
  // Already there (put back by an earlier, interrupted recovery): make sure it says the same.
  if (added.exitCode !== 0) await execa(tools.semanage, args.map((arg, index) => (index === 1 ? '-m' : arg)));
  if (tools.restorecon) await execa(tools.restorecon, ['-v', record.path], { reject: false });
}

function describeProblem(record: JournalRecord, error: unknown): string {
  const reason = (error as Error).message;
  switch (record.t) {
    case 'create':
      return `could not remove ${record.path}: ${reason}`;
    case 'move':
      return `could not put back ${record.path}: ${reason}`;
    case 'context-added':
      return `could not remove the SELinux rule for ${record.path}: ${reason}`;
    case 'context-removed':
      return `could not restore the SELinux rule for ${record.path}: ${reason}`;
    default:
      return reason;
  }
}

/**
 * Ends a journal whose Install committed or was undone: the backup goes, then the journal (in that
 * order, so a crash in between finds the journal and finishes the job). With `keepBackup` (something
 * could not be undone) both are renamed `….unfinished-<time>`: kept for the operator, never replayed over
 * a later deployment. Returns where the backup is then.
 */
export async function retireJournal(file: string, backupDir: string, { keepBackup }: { keepBackup: boolean }): Promise<string> {
  if (keepBackup) {
    const suffix = `.unfinished-${Date.now()}`;
    await rename(backupDir, `${backupDir}${suffix}`).catch(ignoreMissing);
    await rename(file, `${installJournalFile(dirname(file))}${suffix}`);
    return `${backupDir}${suffix}`;
  }
  await removeBackup(backupDir);
  await rm(file, { force: true });
  return backupDir;
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}

/** A journal a recovery has claimed: `install-journal.recovering.<pid>.<start>.<boot>` of the recovering process. */
const RECOVERING = '.recovering.';

function claimedName(deploymentDir: string, process: ProcessIdentity): string {
  return `${installJournalFile(deploymentDir)}${RECOVERING}${process.pid}.${process.start}.${process.boot}`;
}

/** The process a journal file belongs to now: the Install's agent, or the recovery that claimed it. */
function journalHolder(file: string, begin: JournalRecord | undefined): ProcessIdentity | undefined {
  const name = basename(file);
  const at = name.indexOf(RECOVERING);
  if (at < 0) return begin?.t === 'begin' ? begin.owner : undefined;
  const [pid, start, ...boot] = name.slice(at + RECOVERING.length).split('.');
  const holder = { pid: Number(pid), start, boot: boot.join('.') };
  return isProcessIdentity(holder) ? holder : undefined;
}

/**
 * Takes a journal for this process to recover, by renaming it to its claimed name: of two agents that
 * start at once (the daemon restarted by systemd, an operator's `deploy`) only one rename succeeds, and
 * a recovery killed half-way leaves a name whose process is gone, for the next start to claim.
 * Undefined when the journal's process runs (an Install or a recovery in progress) or another took it.
 */
async function claimJournal(file: string, begin: JournalRecord | undefined): Promise<string | undefined> {
  const holder = journalHolder(file, begin);
  if (holder && holder.pid !== process.pid && isRunning(holder)) return undefined;
  const claimed = claimedName(dirname(file), thisProcess());
  if (file === claimed) return claimed;
  try {
    await rename(file, claimed);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return claimed;
}

/** Whether a recovery is taking a journal of this deployment folder back (Install must wait for it). */
export function journalBeingRecovered(deploymentDir: string): boolean {
  return listJournals(deploymentDir).some((file) => file.includes(RECOVERING));
}

export interface RecoveryReport {
  file: string;
  group: string;
  deployment: string;
  deploymentDir: string;
  /** Rolled back; rolled forward (Install had committed); or rolled back with problems left. */
  outcome: 'rolled-back' | 'rolled-forward' | 'incomplete';
  removed: number;
  restored: number;
  problems: string[];
}

/**
 * Finishes every interrupted Install under `rootDir` (of `group`, when given) whose agent is no longer
 * running: rolled forward if it had committed, else rolled back. Each outcome is logged.
 */
export async function recoverInstalls(rootDir: string, logger: Logger, options: { group?: string; tools?: ToolPaths } = {}): Promise<RecoveryReport[]> {
  const reports: RecoveryReport[] = [];
  for (const file of findInstallJournals(rootDir, options.group)) {
    const report = await recoverInstall(file, logger, options.tools);
    if (report) reports.push(report);
  }
  return reports;
}

/** `ROOT/<group>/<deployment>/install-journal` files, and those a recovery claimed (see claimJournal). */
export function findInstallJournals(rootDir: string, group?: string): string[] {
  const found: string[] = [];
  const groups = group === undefined ? folders(rootDir) : [group];
  for (const name of groups.sort()) {
    for (const deployment of folders(join(rootDir, name))) found.push(...listJournals(join(rootDir, name, deployment)));
  }
  return found;
}

function folders(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch {
    return [];
  }
}

function listJournals(deploymentDir: string): string[] {
  const active = basename(installJournalFile(deploymentDir));
  let entries: Dirent[];
  try {
    entries = readdirSync(deploymentDir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((entry) => entry.isFile() && (entry.name === active || entry.name.startsWith(`${active}${RECOVERING}`)))
    .map((entry) => join(deploymentDir, entry.name))
    .sort();
}

async function recoverInstall(found: string, logger: Logger, tools: ToolPaths = { semanage: findTool('semanage'), restorecon: findTool('restorecon') }): Promise<RecoveryReport | undefined> {
  const deploymentDir = dirname(found);
  const backupDir = installBackupDir(deploymentDir);
  let text: string;
  try {
    text = readFileSync(found, 'utf8');
  } catch (error) {
    // Claimed and finished by another agent meanwhile.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const { records, skipped } = parseJournal(text);
  const begin = records.find((record) => record.t === 'begin');
  // An Install or a recovery of another agent that is running now (a daemon while `deploy` starts): not ours.
  const file = await claimJournal(found, begin);
  if (!file) return undefined;
  const report: RecoveryReport = {
    file,
    // The folder it was found in, which is what the group's other files are named after.
    group: basename(dirname(deploymentDir)),
    deployment: begin?.t === 'begin' ? begin.deployment : '',
    deploymentDir,
    outcome: 'rolled-back',
    removed: 0,
    restored: 0,
    problems: [],
  };
  const what = `Install of deployment ${report.deployment || deploymentDir}${report.group ? ` (group ${report.group})` : ''}`;
  if (skipped > 0) logger.warn(`${file}: ${skipped} unreadable line(s) skipped (cut short by the crash)`);
  if (records.some((record) => record.t === 'commit')) {
    report.outcome = 'rolled-forward';
    await retireJournal(file, backupDir, { keepBackup: false });
    logger.warn(`The ${what} had completed when the agent stopped; finished it: the new revision stays, its backup ${backupDir} was deleted`);
    return report;
  }
  if (records.some((record) => record.t === 'undone')) {
    await retireJournal(file, backupDir, { keepBackup: false });
    logger.warn(`The ${what} had been rolled back when the agent stopped; deleted its backup ${backupDir}`);
    return report;
  }
  logger.warn(`The ${what} was interrupted (the agent stopped in the middle of it); rolling it back from ${file}`);
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW);
  try {
    const append = (record: JournalRecord) => {
      fs.writeSync(fd, formatRecords([record]));
      fs.fdatasyncSync(fd);
    };
    const tree = new DestinationTree();
    let outcome: UndoOutcome;
    try {
      outcome = await undoInstall(records, backupDir, tools, append, tree);
    } finally {
      tree.close();
    }
    Object.assign(report, outcome);
    if (outcome.problems.length === 0) append({ t: 'undone' });
  } finally {
    fs.closeSync(fd);
  }
  if (report.problems.length > 0) {
    report.outcome = 'incomplete';
    const kept = await retireJournal(file, backupDir, { keepBackup: true });
    logger.error(
      `The ${what} could not be rolled back completely: removed ${report.removed} path(s) it had created and put back ${report.restored} from the backup, but:\n${report.problems.join('\n')}\n` +
        `What could not be put back is kept in ${kept}, with the journal`,
    );
    return report;
  }
  await retireJournal(file, backupDir, { keepBackup: false });
  logger.warn(`Rolled back the ${what}: removed ${report.removed} path(s) it had created, put back ${report.restored} path(s) from the backup, restored the cleanup file and install.json; deleted the backup`);
  return report;
}
