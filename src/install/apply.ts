import fs, { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { chmod, lchown, lstat, realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SelinuxContext } from '../appspec/types.js';
import { writeFileAtomic } from '../deployment/atomic-write.js';
import type { Logger } from '../log/logger.js';
import { InstallError } from '../report/errors.js';
import { completeAcl } from './acl.js';
import { formatCleanupLine, type CleanupEntry } from './cleanup-file.js';
import type { Identities } from './identity.js';
import { formatInstallJson } from './install-json.js';
import { changeMade } from './crash-switch.js';
import { InstallJournal } from './journal.js';
import type { JournalRecord } from './journal-records.js';
import { runBounded } from './pool.js';
import { LoopYield } from '../archive/loop-yield.js';
import { failedJob, FileJobPool, type FileJob } from '../util/file-jobs/file-job-pool.js';
import { attributesOf } from '../util/file-jobs/inode-attributes.js';
import { semanageAddArguments } from './selinux.js';
import { loadExeca, type ToolPaths } from './tools.js';
import type { InstallOperation, InstallPlan, RemovalOperation } from './types.js';

type Operation<Type extends InstallOperation['type']> = Extract<InstallOperation, { type: Type }>;

export interface ApplyOptions {
  plan: InstallPlan;
  identities: Identities;
  /** Tools the plan needs, plus semanage when available (to remove the previous deployment's rules). */
  tools: ToolPaths;
  cleanupFile: string;
  installJsonFile: string;
  /** What the two files held before Install (undefined: absent), put back if Install fails. */
  previousCleanup: string | undefined;
  previousInstallJson: string | undefined;
  /** The deployment folder: Install's journal and the backup of moved-aside files go in it. */
  deploymentDir: string;
  groupId: string;
  deploymentId: string;
  /** SELinux rules the previous deployment set, by file, to re-add if Install fails. */
  previousContexts: ReadonlyMap<string, SelinuxContext>;
  logger: Logger;
  concurrency?: number;
}

export interface ApplyResult {
  removed: number;
  directoriesCreated: number;
  filesCopied: number;
  linksCreated: number;
  permissionObjects: number;
}

/**
 * Carry out a checked plan: remove the previous deployment's files, write install.json, create the
 * directories, copy the files, set permissions, recording each created path in the cleanup file as
 * the anchor does. If anything fails, everything is undone (see InstallJournal) and the cleanup file
 * and install.json get their previous content back, so the host is as it was before Install; if the
 * agent is killed, the next start does the same from the journal (recovery.ts).
 */
export async function applyPlan(options: ApplyOptions): Promise<ApplyResult> {
  const { plan, logger } = options;
  const concurrency = options.concurrency ?? 32;
  const journal = InstallJournal.open({
    deploymentDir: options.deploymentDir,
    group: options.groupId,
    deployment: options.deploymentId,
    cleanupFile: options.cleanupFile,
    installJsonFile: options.installJsonFile,
    previousCleanup: options.previousCleanup,
    previousInstallJson: options.previousInstallJson,
    directories: parentDirectories(plan),
    logger,
  });
  const result: ApplyResult = { removed: 0, directoriesCreated: 0, filesCopied: 0, linksCreated: 0, permissionObjects: 0 };
  const mkdirs = plan.operations.filter((op): op is Operation<'mkdir'> => op.type === 'mkdir');
  const copies = plan.operations.filter((op): op is Operation<'copy'> => op.type === 'copy');

  let cleanupFd: number | undefined;
  // Unbuffered writes, each path listed before it is created (after, for directories) as in the anchor,
  // so that after a crash the next deployment still removes what this one left.
  const recordAll = (entries: readonly CleanupEntry[]) => {
    if (cleanupFd !== undefined) writeSync(cleanupFd, entries.map(formatCleanupLine).join(''));
  };
  const record = (entry: CleanupEntry) => recordAll([entry]);

  try {
    result.removed = await removePrevious(plan.removals, journal, options, concurrency);
    journal.removalsDone();

    await writeFileAtomic(options.installJsonFile, formatInstallJson(plan.operations));
    cleanupFd = openSync(options.cleanupFile, 'w', 0o644);

    // Directories first, in plan order (parents before children), so the copies can run in parallel.
    // Synchronous: a thread-pool round trip each cost more than the mkdir itself.
    await journal.intend(mkdirs.map((op) => ({ t: 'create', path: op.directory, dir: true })));
    for (const op of mkdirs) {
      await failWithContext(`creating the directory ${op.directory}`, () => {
        try {
          fs.mkdirSync(op.directory);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EEXIST') journal.notCreated(op.directory);
          throw error;
        }
      });
      journal.created(op.directory, true);
      record({ kind: 'path', path: op.directory });
      result.directoriesCreated++;
    }

    await copyEntries(copies, journal, recordAll, result);

    // One phase per kind keeps each object's order (chmod, setfacl, semanage, chown) and lets setfacl run
    // once for many files: objects are independent of each other.
    const ofType = <Type extends InstallOperation['type']>(type: Type) =>
      plan.operations.filter((op): op is Operation<Type> => op.type === type);
    await runBounded(ofType('chmod'), concurrency, async (op) => {
      await failWithContext(`setting mode ${op.mode.toString(8)} on ${op.file}`, () => chmod(op.file, op.mode));
      changeMade('install');
    });
    await setAcls(ofType('setfacl'), options.tools.setfacl ?? 'setfacl', concurrency);
    for (const op of ofType('semanage')) await setContext(op, options, journal, record);
    await runBounded(ofType('chown'), concurrency, (op) => changeOwner(op, options.identities));
    result.permissionObjects = new Set(plan.operations.flatMap((op) => (op.type === 'mkdir' || op.type === 'copy' ? [] : [op.file]))).size;

    fsyncSync(cleanupFd);
    closeSync(cleanupFd);
    cleanupFd = undefined;
    await journal.commit();
  } catch (error) {
    if (cleanupFd !== undefined) closeSync(cleanupFd);
    throw await rollBack(error, journal, options);
  }
  await journal.discard();
  return result;
}

/**
 * The previous deployment's files: links and files in parallel, then directories children first. Each
 * move is announced in the journal before it is made (see announcedBatches).
 */
async function removePrevious(
  removals: readonly RemovalOperation[],
  journal: InstallJournal,
  options: ApplyOptions,
  concurrency: number,
): Promise<number> {
  const leaves = removals.filter((op) => op.type === 'remove' && op.entryType !== 'directory').map((op) => ({ path: op.path, n: journal.entry() }));
  await announcedBatches(journal, leaves, ({ path, n }) => [{ t: 'move', n, path }], (batch) =>
    runBounded(batch, concurrency, ({ path, n }) => failWithContext(`removing ${path} (previous deployment)`, () => journal.moveAside(n, path))),
  );
  const directories = new Map<RemovalOperation, number>();
  for (const op of removals) if (op.type === 'remove' && op.entryType === 'directory') directories.set(op, journal.entry());
  await journal.intend([...directories].map(([op, n]) => ({ t: 'move', n, path: op.path })));
  for (const op of removals) {
    if (op.type === 'semanage-delete') {
      if (!options.tools.semanage) {
        options.logger.warn(`semanage is not installed; the SELinux rule the previous deployment set for ${op.path} is left in place`);
        continue;
      }
      // The anchor ignores the result: the rule may already be gone.
      const removing = journal.contextRemoving(op.path, options.previousContexts.get(op.path));
      const { execa } = await loadExeca();
      const deleted = await execa(options.tools.semanage, ['fcontext', '-d', op.path], { reject: false });
      if (deleted.exitCode === 0) removing.deleted();
    } else {
      const n = directories.get(op);
      if (n !== undefined) await failWithContext(`removing ${op.path} (previous deployment)`, () => journal.moveAside(n, op.path));
    }
  }
  return removals.filter((op) => op.type === 'remove').length;
}

/** Records announced (and synced) at a time: a few fdatasyncs per 10,000 changes, each hidden behind the changes before it. */
const JOURNAL_BATCH = 2048;

/**
 * Runs `items` in batches, each announced in the journal and on disk before its first change is made;
 * the next batch is announced and synced while this one runs, so the syncs cost almost no time.
 */
async function announcedBatches<T>(
  journal: InstallJournal,
  items: readonly T[],
  announce: (item: T) => JournalRecord[],
  run: (batch: readonly T[]) => Promise<void>,
): Promise<void> {
  const batches: T[][] = [];
  for (let start = 0; start < items.length; start += JOURNAL_BATCH) batches.push(items.slice(start, start + JOURNAL_BATCH));
  const announceBatch = (index: number): Promise<void> | undefined => {
    if (index >= batches.length) return undefined;
    const synced = journal.intend(batches[index].flatMap(announce));
    // Awaited before the batch runs; until then a failure must not count as unhandled.
    synced.catch(() => undefined);
    return synced;
  };
  let synced = announceBatch(0);
  for (let index = 0; index < batches.length; index++) {
    await synced;
    synced = announceBatch(index + 1);
    await run(batches[index]);
  }
}

/**
 * How, as root, a copy gets its revision owner (only root can give files away): a new file belongs to
 * the agent, or takes its folder's group under setgid; checking that once per folder saves a system call
 * per file on the hot path. `change`: for an entry with stats, whether to chown to them. `keep`: for a
 * file copied with its own attributes, whether its owner must be set even when it is the agent's.
 */
function ownerCheck(): (op: Operation<'copy'>) => { change: boolean; keep: boolean } {
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  const groupInherited = new Map<string, boolean>();
  const inheritsGroup = (destination: string): boolean => {
    const dir = dirname(destination);
    let inherited = groupInherited.get(dir);
    if (inherited === undefined) {
      const stats = fs.statSync(dir);
      inherited = (stats.mode & 0o2000) !== 0 && stats.gid !== gid;
      groupInherited.set(dir, inherited);
    }
    return inherited;
  };
  return ({ entry, destination }) => {
    if (uid !== 0) return { change: false, keep: false };
    const stats = entry.stats;
    if (stats && (stats.uid !== uid || stats.gid !== gid)) return { change: true, keep: true };
    const inherited = inheritsGroup(destination);
    return { change: inherited, keep: inherited };
  };
}

/**
 * The revision's files and links, like `cp -a` (mode, times and, as root, owner), through a pool of
 * worker threads: with 20,000 small files, one system call after another on one thread was slower than
 * `cp -a`, and asynchronous calls slower still (a thread-pool round trip and a promise per call; the
 * many-files benchmark). Each path is listed in the cleanup file before its copy starts, and recorded in
 * the journal once it exists, so a failure half-way is rolled back exactly.
 */
async function copyEntries(
  copies: readonly Operation<'copy'>[],
  journal: InstallJournal,
  recordAll: (entries: readonly CleanupEntry[]) => void,
  result: ApplyResult,
): Promise<void> {
  const needsChown = ownerCheck();
  const pool = new FileJobPool({
    expectedJobs: copies.length,
    preserveOwner: process.getuid?.() === 0,
    onDone: (jobs) => {
      for (const job of jobs) {
        journal.created(job.to, false);
        if (job.kind === 'symlink') result.linksCreated++;
        else result.filesCopied++;
      }
    },
  });
  const loop = new LoopYield();
  // A file OVERWRITE replaces is moved aside first, as backup entry `n`; its copy is announced as
  // coming only after that move, which the `moved` record then confirms.
  const items = copies.map((op) => ({ op, n: op.replaces ? journal.entry() : undefined }));
  const announce = ({ op, n }: (typeof items)[number]): JournalRecord[] =>
    n === undefined ? [{ t: 'create', path: op.destination }] : [{ t: 'move', n, path: op.destination }, { t: 'create', path: op.destination, after: n }];
  try {
    await announcedBatches(journal, items, announce, async (batch) => {
      for (let start = 0; start < batch.length; start += RECORD_AHEAD) {
        // Writing the next lines ahead keeps "listed before copied" at a fraction of the system calls of one
        // write per file.
        const chunk = batch.slice(start, start + RECORD_AHEAD);
        recordAll(chunk.map(({ op }) => ({ kind: 'path', path: op.destination })));
        for (const { op, n } of chunk) {
          if (n !== undefined) await failWithContext(`moving aside ${op.destination} (OVERWRITE)`, () => journal.moveAside(n, op.destination, { mark: true }));
          await pool.add(copyJob(op, needsChown(op)));
          await loop.maybeYield();
        }
      }
    });
    await pool.flush();
  } catch (error) {
    const job = failedJob(error);
    // Something was at the path already: not this Install's to remove, even after a crash.
    if (job && (error as NodeJS.ErrnoException).code === 'EEXIST') journal.notCreated(job.to);
    if (!job || error instanceof InstallError) throw error;
    const what = job.kind === 'copy' ? `copying ${job.from} to ${job.to}` : `creating the link ${job.to}`;
    throw new InstallError(`The deployment failed while ${what}: ${(error as Error).message}`, undefined, { cause: error });
  } finally {
    await pool.close();
  }
}

/** One file or link from the revision; a link is recreated with its raw target, never followed (§10.20). */
function copyJob(op: Operation<'copy'>, owner: { change: boolean; keep: boolean }): FileJob {
  const { entry, destination } = op;
  const stats = entry.stats;
  // The copy's open uses O_EXCL: never write through something that appeared at the destination since the scan.
  // Without stats (a file below a source folder): mode, times and, as root, owner from the file itself.
  if (!stats) return { kind: 'copy', from: entry.absolutePath, to: destination, keepOwner: owner.keep };
  const attributes = attributesOf(stats, owner.change);
  if (entry.type === 'symlink') return { kind: 'symlink', to: destination, target: entry.linkTarget ?? '', attributes };
  return { kind: 'copy', from: entry.absolutePath, to: destination, attributes };
}

/**
 * `setfacl --set` for every file, with the base entries completed from each file's mode (§5.4). Files
 * that end up with the same ACL share one setfacl run; if a run fails, its files are retried one by one
 * so the error names the object, as the anchor's message does.
 */
async function setAcls(ops: readonly Operation<'setfacl'>[], setfacl: string, concurrency: number): Promise<void> {
  const filesByAcl = new Map<string, string[]>();
  const completed = await Promise.all(
    ops.map(async (op) => completeAcl(op.acl, (await stat(op.file)).mode).join(',')),
  );
  ops.forEach((op, index) => {
    const files = filesByAcl.get(completed[index]) ?? [];
    filesByAcl.set(completed[index], files);
    files.push(op.file);
  });
  const batches: { acl: string; files: string[] }[] = [];
  for (const [acl, files] of filesByAcl) {
    for (let start = 0; start < files.length; start += SETFACL_BATCH) batches.push({ acl, files: files.slice(start, start + SETFACL_BATCH) });
  }
  const { execa } = await loadExeca();
  await runBounded(batches, Math.min(concurrency, 8), async ({ acl, files }) => {
    const together = await execa(setfacl, ['--set', acl, '--', ...files], { reject: false });
    if (together.exitCode === 0) return;
    for (const file of files) {
      const alone = await execa(setfacl, ['--set', acl, '--', file], { reject: false });
      if (alone.exitCode !== 0) {
        throw new InstallError(
          `The deployment failed because of a problem with the acls permission settings in the application specification file for this object: ${file}. Failed command: setfacl --set ${acl} ${file}. Exit code: ${alone.exitCode ?? alone.signal}${detail(alone.stderr)}`,
        );
      }
    }
  });
}

/** Cleanup-file lines written ahead of the copies. */
const RECORD_AHEAD = 256;

/** Files per setfacl run: far below the argument-size limit even with long paths. */
const SETFACL_BATCH = 200;

async function setContext(op: Operation<'semanage'>, options: ApplyOptions, journal: InstallJournal, record: (entry: CleanupEntry) => void): Promise<void> {
  const object = await realpath(op.file);
  const args = semanageAddArguments(op.context, object);
  await runContextCommand(options.tools.semanage ?? 'semanage', 'semanage', args);
  journal.contextAdded(object);
  await runContextCommand(options.tools.restorecon ?? 'restorecon', 'restorecon', ['-v', object]);
  record({ kind: 'semanage', path: object });
}

async function changeOwner(op: Operation<'chown'>, identities: Identities): Promise<void> {
  const uid = op.owner === undefined ? -1 : (identities.uids.get(op.owner) ?? -1);
  const gid = op.group === undefined ? -1 : (identities.gids.get(op.group) ?? -1);
  await failWithContext(`changing the owner of ${op.file} to ${op.owner ?? ''}:${op.group ?? ''}`, async () => {
    const before = await lstat(op.file);
    await lchown(op.file, uid, gid);
    // The anchor ran chmod before chown, so `mode: 4755` with an owner lost its setuid bit; keep it.
    if (!op.link && before.mode & 0o6000) await chmod(op.file, before.mode & 0o7777);
  });
  changeMade('install');
}

async function runContextCommand(executable: string, name: string, args: string[]): Promise<void> {
  const { execa } = await loadExeca();
  const result = await execa(executable, args, { reject: false });
  if (result.exitCode !== 0) {
    throw new InstallError(
      `The deployment failed because the application specification file contains an error in the settings for the context parameter. Update the permissions section of the AppSpec file, and then try again. Failed command: ${[name, ...args].join(' ')}. Exit code: ${result.exitCode ?? result.signal}${detail(result.stderr)}`,
    );
  }
}

/** Undo everything and say what happened, and whether the host is back as it was. */
async function rollBack(error: unknown, journal: InstallJournal, options: ApplyOptions): Promise<InstallError> {
  const { problems, kept } = await journal.rollback(options.tools);
  const reason = error instanceof Error ? error.message : String(error);
  if (problems.length === 0) {
    options.logger.warn(`Install failed and was rolled back; the host is as it was before Install: ${reason}`);
    return new InstallError(`${reason}\nEverything Install had changed was undone.`, undefined, { cause: error });
  }
  const message = `${reason}\nInstall could not undo everything it had changed:\n${problems.join('\n')}\nPrevious files are kept in ${kept}.`;
  options.logger.error(message);
  return new InstallError(message, undefined, { cause: error });
}

function* parentDirectories(plan: InstallPlan): Iterable<string> {
  const seen = new Set<string>();
  const paths = [
    ...plan.removals.filter((op) => op.type === 'remove').map((op) => op.path),
    ...plan.operations.map((op) => (op.type === 'mkdir' ? op.directory : op.type === 'copy' ? op.destination : undefined)),
  ];
  for (const path of paths) {
    if (path === undefined) continue;
    const parent = dirname(path);
    if (seen.has(parent)) continue;
    seen.add(parent);
    yield parent;
  }
}

/** System errors name the call, not the deployment step; say which file the step was on. */
async function failWithContext<T>(what: string, action: () => T | Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    if (error instanceof InstallError) throw error;
    const reason = (error as Error).message;
    throw new InstallError(`The deployment failed while ${what}: ${reason}`, undefined, { cause: error });
  }
}

function detail(stderr: string | undefined): string {
  const text = stderr?.trim();
  return text ? ` (${text})` : '';
}
