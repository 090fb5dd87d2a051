import fs, { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SelinuxContext } from '../appspec/types.js';
import type { OriginalAttributes } from '../archive/original-attributes.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { Logger } from '../log/logger.js';
import { InstallError } from '../report/errors.js';
import { formatCleanupLine, type CleanupEntry } from './cleanup-file.js';
import { DestinationTree } from './destination-tree.js';
import type { Identities } from './identity.js';
import { formatInstallJson } from './install-json.js';
import { changeMade } from './crash-switch.js';
import { InstallJournal } from './journal.js';
import type { JournalRecord } from './journal-records.js';
import { PermissionObjects, setAcls, setContext } from './permission-objects.js';
import { runBounded } from './pool.js';
import { LoopYield } from '../util/loop-yield.js';
import { descriptorPath } from '../util/descriptor-path.js';
import { failedJob, FileJobPool, type FileJob } from '../util/file-jobs/file-job-pool.js';
import type { AttributeOverride } from '../util/file-jobs/file-job.js';
import { attributesOf } from '../util/file-jobs/inode-attributes.js';
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
  /**
   * The bundle's own mode and owner of its files, by absolute source path, where the deployment-archive
   * copy (root's, without setuid/setgid or group/other write) differs: what the installed copies get.
   */
  originals?: ReadonlyMap<string, OriginalAttributes>;
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
 * AWS's agent does. If anything fails, everything is undone (see InstallJournal) and the cleanup file
 * and install.json get their previous content back, so the host is as it was before Install; if the
 * agent is killed, the next start does the same from the journal (recovery.ts).
 *
 * Every destination entry is reached through a DestinationTree (./destination-tree.ts): the folders on
 * the way are walked once, without following any symlink another user could have planted, and their
 * descriptors name the entries from then on. Each file gets its final mode and owner (the bundle's, then
 * the appspec's permissions) through its own descriptor as it is created, so there is no later chmod or
 * chown by path that a file swapped in meanwhile could receive; folders get theirs through the
 * descriptors the tree holds, ACLs and SELinux labels through descriptors checked to be the objects
 * Install made (./permission-objects.ts).
 */
export async function applyPlan(options: ApplyOptions): Promise<ApplyResult> {
  const tree = new DestinationTree();
  try {
    return await applyWithTree(options, tree);
  } finally {
    tree.close();
  }
}

async function applyWithTree(options: ApplyOptions, tree: DestinationTree): Promise<ApplyResult> {
  const { plan, logger } = options;
  const concurrency = options.concurrency ?? 32;
  // Walks every existing destination folder: a symlink Install may not follow refuses it here, before any write.
  const directories = [...parentDirectories(plan)];
  for (const dir of directories) {
    await failWithContext(`opening the destination folder ${dir}`, () => tree.existingDirectory(dir));
  }
  const journal = await InstallJournal.open({
    deploymentDir: options.deploymentDir,
    group: options.groupId,
    deployment: options.deploymentId,
    cleanupFile: options.cleanupFile,
    installJsonFile: options.installJsonFile,
    previousCleanup: options.previousCleanup,
    previousInstallJson: options.previousInstallJson,
    directories,
    tree,
    logger,
  });
  const result: ApplyResult = { removed: 0, directoriesCreated: 0, filesCopied: 0, linksCreated: 0, permissionObjects: 0 };
  const byType = operationsByType(plan.operations);
  const ofType = <Type extends InstallOperation['type']>(type: Type) => byType[type] as Operation<Type>[];
  const mkdirs = ofType('mkdir');
  const copies = ofType('copy');
  // Which chmod and chown are for files (set as they were copied): only asked when there are some.
  let copiedSet: Set<string> | undefined;
  const copied = { has: (path: string) => (copiedSet ??= new Set(copies.map((op) => op.destination))).has(path) };
  const objects = new PermissionObjects(tree);

  let cleanupFd: number | undefined;
  // Unbuffered writes, each path listed before it is created (after, for directories) as in AWS's agent,
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
          tree.mkdir(op.directory);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EEXIST') journal.notCreated(op.directory);
          throw error;
        }
      });
      journal.created(op.directory, true);
      objects.madeDirectory(op.directory);
      record({ kind: 'path', path: op.directory });
      result.directoriesCreated++;
    }

    const needsIdentity = new Set([...ofType('setfacl'), ...ofType('semanage')].map((op) => op.file));
    await copyEntries(copies, { tree, journal, objects, recordAll, result, finalAttributes: finalAttributes(ofType('chmod'), ofType('chown'), options), needsIdentity });

    // Files got their mode and owner as they were created; folders get theirs now. One phase per kind keeps
    // each object's order (chmod, setfacl, semanage, chown) and lets setfacl run once for many files.
    for (const op of ofType('chmod')) {
      if (copied.has(op.file)) continue;
      await failWithContext(`setting mode ${op.mode.toString(8)} on ${op.file}`, () => fs.chmodSync(descriptorPath(objects.directory(op.file)), op.mode));
      changeMade('install');
    }
    await setAcls(ofType('setfacl'), options.tools.setfacl ?? 'setfacl', concurrency, objects);
    for (const op of ofType('semanage')) await setContext(op, options.tools, objects, journal, record);
    for (const op of ofType('chown')) {
      if (!copied.has(op.file)) {
        await changeDirectoryOwner(op, options.identities, objects);
        changeMade('install');
      }
    }
    result.permissionObjects = new Set([...ofType('chmod'), ...ofType('setfacl'), ...ofType('semanage'), ...ofType('chown')].map((op) => op.file)).size;

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
      // AWS's agent ignores the result: the rule may already be gone.
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
 * What each copied file or link ends up with besides the source's own mode, owner and times: the
 * bundle's mode and owner (the deployment-archive copy is root's), then the appspec's chmod and chown,
 * which Install applies as the file is created: chown(2) before chmod(2), so a setuid bit the appspec
 * gives survives a change of owner (AWS's agent ran chmod first, and chown cleared it).
 */
function finalAttributes(
  chmods: readonly Operation<'chmod'>[],
  chowns: readonly Operation<'chown'>[],
  options: ApplyOptions,
): ((op: Operation<'copy'>) => AttributeOverride | undefined) | undefined {
  const modes = new Map(chmods.map((op) => [op.file, op.mode]));
  const owners = new Map(chowns.map((op) => [op.file, op]));
  const originals = options.originals;
  // Nothing to add (the common case of a bundle of root's files without permissions): no lookups per file.
  if (modes.size === 0 && owners.size === 0 && !originals?.size) return undefined;
  return (op) => {
    const original = originals?.get(op.entry.absolutePath);
    const chown = owners.get(op.destination);
    const mode = modes.get(op.destination) ?? original?.mode;
    const uid = chown?.owner !== undefined ? options.identities.uids.get(chown.owner) : original?.uid;
    const gid = chown?.group !== undefined ? options.identities.gids.get(chown.group) : original?.gid;
    if (mode === undefined && uid === undefined && gid === undefined) return undefined;
    const override: AttributeOverride = {};
    if (mode !== undefined) override.mode = mode;
    if (uid !== undefined) override.uid = uid;
    if (gid !== undefined) override.gid = gid;
    return override;
  };
}

/**
 * How, as root, a copy gets its revision owner (only root can give files away): a new file belongs to
 * the agent, or takes its folder's group under setgid; checking that once per folder saves a system call
 * per file on the hot path. `change`: for an entry with stats, whether to chown to them. `keep`: for a
 * file copied with its own attributes, whether its owner must be set even when it is the agent's.
 */
function ownerCheck(tree: DestinationTree): (op: Operation<'copy'>) => { change: boolean; keep: boolean } {
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  const groupInherited = new Map<string, boolean>();
  const inheritsGroup = (destination: string): boolean => {
    const dir = dirname(destination);
    let inherited = groupInherited.get(dir);
    if (inherited === undefined) {
      const stats = tree.stat(dir);
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

interface CopyContext {
  tree: DestinationTree;
  journal: InstallJournal;
  objects: PermissionObjects;
  recordAll: (entries: readonly CleanupEntry[]) => void;
  result: ApplyResult;
  finalAttributes: ((op: Operation<'copy'>) => AttributeOverride | undefined) | undefined;
  /** Destinations that get an ACL or SELinux label later: their copies report the inode they made. */
  needsIdentity: ReadonlySet<string>;
}

/** A job and the destination it creates (its `to` names it by descriptor); not carried to the workers. */
type InstallJob = FileJob & { destination: string };

/**
 * The revision's files and links, like `cp -a` (mode, times and, as root, owner), through a pool of
 * worker threads: with 20,000 small files, one system call after another on one thread was slower than
 * `cp -a`, and asynchronous calls slower still (a thread-pool round trip and a promise per call; the
 * many-files benchmark). Each path is listed in the cleanup file before its copy starts, and recorded in
 * the journal once it exists, so a failure half-way is rolled back exactly. A job names its target by the
 * descriptor of the folder that holds it (DestinationTree.entry).
 */
async function copyEntries(copies: readonly Operation<'copy'>[], context: CopyContext): Promise<void> {
  const { tree, journal, objects, result, finalAttributes, needsIdentity } = context;
  const needsChown = ownerCheck(tree);
  const identifies = needsIdentity.size > 0;
  const pool = new FileJobPool({
    expectedJobs: copies.length,
    preserveOwner: process.getuid?.() === 0,
    onDone: (jobs) => {
      for (const job of jobs) {
        const { destination } = job as InstallJob;
        journal.created(destination, false);
        if (job.kind === 'copy' && job.created) objects.madeFile(destination, job.created);
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
        context.recordAll(chunk.map(({ op }) => ({ kind: 'path', path: op.destination })));
        for (const { op, n } of chunk) {
          if (n !== undefined) await failWithContext(`moving aside ${op.destination} (OVERWRITE)`, () => journal.moveAside(n, op.destination, { mark: true }));
          // Jobs name folders by descriptor: only once none is in flight may the tree close some.
          if (tree.isFull) {
            await pool.flush();
            tree.trim();
          }
          let job: InstallJob;
          try {
            job = copyJob(op, tree.entry(op.destination), needsChown(op), finalAttributes?.(op), identifies && needsIdentity.has(op.destination));
          } catch (error) {
            // Synchronous on purpose: an awaited wrapper per file cost more than the copy's own JavaScript.
            throw contextFor(error, `copying ${op.source} to ${op.destination}`);
          }
          await pool.add(job);
          await loop.maybeYield();
        }
      }
    });
    await pool.flush();
  } catch (error) {
    const job = failedJob(error);
    const to = job && ((job as Partial<InstallJob>).destination ?? job.to);
    // Something was at the path already: not this Install's to remove, even after a crash.
    if (to !== undefined && (error as NodeJS.ErrnoException).code === 'EEXIST') journal.notCreated(to);
    if (!job || to === undefined || error instanceof InstallError) throw error;
    const what = job.kind === 'copy' ? `copying ${job.from} to ${to}` : `creating the link ${to}`;
    // The system error names the descriptor path; say the destination instead.
    const reason = (error as Error).message.replaceAll(job.to, to);
    throw new InstallError(`The deployment failed while ${what}: ${reason}`, undefined, { cause: error });
  } finally {
    await pool.close();
  }
}

/** One file or link from the revision; a link is recreated with its raw target, never followed (aws-codedeploy-agent #152). */
function copyJob(op: Operation<'copy'>, to: string, owner: { change: boolean; keep: boolean }, override: AttributeOverride | undefined, identify: boolean): InstallJob {
  const { entry, destination } = op;
  const stats = entry.stats;
  // The copy's open uses O_EXCL: never write through something that appeared at the destination since the scan.
  // Without stats (a file below a source folder): mode, times and, as root, owner from the file itself.
  if (!stats) {
    const job: InstallJob = { kind: 'copy', from: entry.absolutePath, to, keepOwner: owner.keep, destination };
    if (override) job.override = override;
    if (identify) job.identify = true;
    return job;
  }
  const attributes = { ...attributesOf(stats, owner.change), ...override };
  if (entry.type === 'symlink') return { kind: 'symlink', to, target: entry.linkTarget ?? '', attributes, destination };
  const job: InstallJob = { kind: 'copy', from: entry.absolutePath, to, attributes, destination };
  if (identify) job.identify = true;
  return job;
}

/** Cleanup-file lines written ahead of the copies. */
const RECORD_AHEAD = 256;

/** A folder Install created: its new owner through the descriptor the tree holds. */
async function changeDirectoryOwner(op: Operation<'chown'>, identities: Identities, objects: PermissionObjects): Promise<void> {
  const uid = op.owner === undefined ? -1 : (identities.uids.get(op.owner) ?? -1);
  const gid = op.group === undefined ? -1 : (identities.gids.get(op.group) ?? -1);
  await failWithContext(`changing the owner of ${op.file} to ${op.owner ?? ''}:${op.group ?? ''}`, () => {
    const folder = descriptorPath(objects.directory(op.file));
    const before = fs.statSync(folder);
    fs.chownSync(folder, uid, gid);
    // AWS's agent ran chmod before chown, so `mode: 4755` with an owner lost its setuid bit; keep it.
    if (before.mode & 0o6000) fs.chmodSync(folder, before.mode & 0o7777);
  });
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

/** The plan's operations by type, in plan order: one pass over what may be tens of thousands. */
function operationsByType(operations: readonly InstallOperation[]): Record<InstallOperation['type'], InstallOperation[]> {
  const byType: Record<InstallOperation['type'], InstallOperation[]> = { mkdir: [], copy: [], chmod: [], setfacl: [], semanage: [], chown: [] };
  for (const op of operations) byType[op.type].push(op);
  return byType;
}

/** System errors name the call, not the deployment step; say which file the step was on. */
export async function failWithContext<T>(what: string, action: () => T | Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw contextFor(error, what);
  }
}

function contextFor(error: unknown, what: string): InstallError {
  if (error instanceof InstallError) return error;
  return new InstallError(`The deployment failed while ${what}: ${(error as Error).message}`, undefined, { cause: error });
}
