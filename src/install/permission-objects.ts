import fs from 'node:fs';
import { InstallError } from '../report/errors.js';
import { descriptorPath, O_PATH } from '../util/descriptor-path.js';
import type { InodeIdentity } from '../util/file-jobs/file-job.js';
import { completeAcl } from './acl.js';
import type { CleanupEntry } from './cleanup-file.js';
import type { DestinationTree } from './destination-tree.js';
import type { InstallJournal } from './journal.js';
import { runBounded } from './pool.js';
import { semanageAddArguments } from './selinux.js';
import { loadExeca, type ToolPaths } from './tools.js';
import type { InstallOperation } from './types.js';

type Operation<Type extends InstallOperation['type']> = Extract<InstallOperation, { type: Type }>;

/**
 * The objects Install gives ACLs and SELinux labels after creating them: the files it copied and the
 * folders it made. `setfacl`, `semanage` and `restorecon` take paths, and a path in a folder another user
 * owns may name something else by the time a tool looks it up (a file swapped for a symlink to
 * /etc/shadow, or for another file Install wrote there). So each object is opened here by descriptor
 * (O_PATH, never through a symlink) and checked to be the very inode Install created (device and inode
 * numbers, reported by the copy that made it); setfacl then gets that descriptor as its own fd 3, 4, ...
 * and works on `/proc/self/fd/3`, which can name nothing else.
 */
export class PermissionObjects {
  readonly #files = new Map<string, InodeIdentity>();
  readonly #directories = new Set<string>();

  constructor(private readonly tree: DestinationTree) {}

  madeDirectory(path: string): void {
    this.#directories.add(path);
  }

  madeFile(path: string, identity: InodeIdentity): void {
    this.#files.set(path, identity);
  }

  /** The descriptor of a folder Install made (the tree's own: do not close it). */
  directory(path: string): number {
    if (!this.#directories.has(path)) throw notMade(path);
    return this.tree.directory(path);
  }

  /** A new O_PATH descriptor of the object Install made at `path`; the caller closes it. */
  open(path: string): number {
    if (this.#directories.has(path)) return fs.openSync(descriptorPath(this.tree.directory(path)), O_PATH);
    const expected = this.#files.get(path);
    if (!expected) throw notMade(path);
    const fd = this.tree.openEntry(path);
    const { dev, ino } = fs.fstatSync(fd);
    if (dev !== expected.dev || ino !== expected.ino) {
      fs.closeSync(fd);
      throw new InstallError(`The deployment failed because ${path}, which Install had just copied, was replaced by something else before its permissions were set`);
    }
    return fd;
  }
}

function notMade(path: string): InstallError {
  return new InstallError(`The deployment failed because the permissions section names ${path}, which this Install did not create`);
}

/** Files per setfacl run: each is one of its descriptors, far below any descriptor or argument limit. */
const SETFACL_BATCH = 200;
/** setfacl's descriptors start after stdin, stdout and stderr. */
const FIRST_FD = 3;

/**
 * `setfacl --set` for every object, with the base entries completed from each object's mode (§5.4).
 * Objects that end up with the same ACL share one setfacl run; if a run fails, its objects are retried one
 * by one so the error names the object, as AWS's agent's message does.
 */
export async function setAcls(ops: readonly Operation<'setfacl'>[], setfacl: string, concurrency: number, objects: PermissionObjects): Promise<void> {
  // Without ACLs, execa is never loaded: once loaded it stays in the process's heap for good (about 0.5 MiB).
  if (ops.length === 0) return;
  const filesByAcl = new Map<string, string[]>();
  for (const op of ops) {
    const fd = objects.open(op.file);
    let acl: string;
    try {
      acl = completeAcl(op.acl, fs.fstatSync(fd).mode).join(',');
    } finally {
      fs.closeSync(fd);
    }
    const files = filesByAcl.get(acl) ?? [];
    filesByAcl.set(acl, files);
    files.push(op.file);
  }
  const batches: { acl: string; files: string[] }[] = [];
  for (const [acl, files] of filesByAcl) {
    for (let start = 0; start < files.length; start += SETFACL_BATCH) batches.push({ acl, files: files.slice(start, start + SETFACL_BATCH) });
  }
  const { execa } = await loadExeca();
  const run = (acl: string, fds: readonly number[]) =>
    execa(setfacl, ['--set', acl, '--', ...fds.map((_, index) => `/proc/self/fd/${FIRST_FD + index}`)], {
      // execa passes any descriptor number through; its types list only 3 to 9.
      stdio: ['ignore', 'pipe', 'pipe', ...fds] as unknown as ['ignore', 'pipe', 'pipe'],
      reject: false,
    });
  await runBounded(batches, Math.min(concurrency, 8), async ({ acl, files }) => {
    // Opened (and checked) again just before setfacl runs, and held until it is done.
    const fds: number[] = [];
    try {
      for (const file of files) fds.push(objects.open(file));
      if ((await run(acl, fds)).exitCode === 0) return;
      for (const [index, file] of files.entries()) {
        const alone = await run(acl, [fds[index]]);
        if (alone.exitCode !== 0) {
          const stderr = alone.stderr?.replaceAll(`/proc/self/fd/${FIRST_FD}`, file);
          throw new InstallError(
            `The deployment failed because of a problem with the acls permission settings in the application specification file for this object: ${file}. Failed command: setfacl --set ${acl} ${file}. Exit code: ${alone.exitCode ?? alone.signal}${detail(stderr)}`,
          );
        }
      }
    } finally {
      for (const fd of fds) fs.closeSync(fd);
    }
  });
}

/**
 * `semanage fcontext -a` and `restorecon` for one object. The SELinux rule is for a path, so it is given
 * the path the kernel has for the object Install made (read from its descriptor), not the appspec's
 * text. restorecon then looks that path up again: if another user swaps a folder on it meanwhile,
 * restorecon resolves the swap and gives whatever it reaches the label the policy has for where that
 * really is, which it could be given anyway; it can never give it the label of this rule.
 */
export async function setContext(op: Operation<'semanage'>, tools: ToolPaths, objects: PermissionObjects, journal: InstallJournal, record: (entry: CleanupEntry) => void): Promise<void> {
  const fd = objects.open(op.file);
  let object: string;
  try {
    object = fs.readlinkSync(descriptorPath(fd));
  } finally {
    fs.closeSync(fd);
  }
  if (object.endsWith(' (deleted)')) throw new InstallError(`The deployment failed because ${op.file} was removed before its SELinux context was set`);
  const args = semanageAddArguments(op.context, object);
  await runContextCommand(tools.semanage ?? 'semanage', 'semanage', args);
  journal.contextAdded(object);
  await runContextCommand(tools.restorecon ?? 'restorecon', 'restorecon', ['-v', object]);
  record({ kind: 'semanage', path: object });
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

function detail(stderr: string | undefined): string {
  const text = stderr?.trim();
  return text ? ` (${text})` : '';
}
