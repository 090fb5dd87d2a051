import fs, { type Stats } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { InstallError } from '../report/errors.js';
import { descriptorPath, descriptorPathsAvailable, O_PATH } from '../util/descriptor-path.js';
import { onlyRootChanges } from '../util/folder-trust.js';
import { describeUser } from '../util/host-accounts.js';

/**
 * Symlink-safe destinations: how Install (root) writes into folders other users own without ever being
 * steered by a symlink one of them plants (the design is in docs/decisions.md, "Symlink-safe destinations").
 *
 * Every destination path is walked from `/`, one component at a time, each opened with
 * O_PATH | O_DIRECTORY | O_NOFOLLOW from the descriptor of the folder above it (through descriptorPath(),
 * Node.js's stand-in for openat(2)). The descriptors are kept, keyed by path, so each folder is walked
 * once per Install; everything Install does to an entry (create, rename aside, unlink, rmdir, chmod,
 * chown, utimes, ACLs) then goes through the descriptor of the folder that holds it, or of the object
 * itself. A folder renamed or replaced by a symlink after it was opened changes nothing: the descriptor
 * still holds the folder the agent checked.
 *
 * A symlink met on the way is followed only when nobody but root can have made it what it is: the link
 * belongs to root (or the agent's own user: a symlink's owner is whoever created it, and nobody can change
 * it) and the folder that holds it belongs to root and is writable by nobody else, or is sticky (others
 * cannot rename or remove root's entries there). So `/var/www/current -> releases/r42` made by an operator
 * in a root-owned `/var/www` is followed, and nothing a user can write into is. Any other symlink refuses
 * the deployment with an UnsafePathError naming the link, its target and its owner; it is never followed,
 * and the last component of a path is never followed at all (it is created with O_EXCL, renamed or removed
 * as the entry it is).
 *
 * Folders the tree opens are remembered by device and inode: opened again (after trim(), or on rollback),
 * a path must lead to the same folder, else Install stops rather than work on another one.
 */

const { O_DIRECTORY, O_NOFOLLOW } = fs.constants;
const DIRECTORY_FLAGS = O_PATH | O_DIRECTORY | O_NOFOLLOW;
const ENTRY_FLAGS = O_PATH | O_NOFOLLOW;
/** A magic link the kernel resolves to this process's root folder; no user can plant or change it. */
const PROCESS_ROOT = '/proc/self/root';
/** As the kernel's own limit on symlinks in one lookup. */
const MAX_LINKS = 40;

/** A destination path goes through a symlink the agent may not follow. */
export class UnsafePathError extends InstallError {
  constructor(
    readonly path: string,
    readonly ownerUid: number,
    message: string,
  ) {
    super(message);
  }
}

interface Identity {
  dev: number;
  ino: number;
}

interface OpenFolder extends Identity {
  fd: number;
}

export class DestinationTree {
  readonly #open = new Map<string, OpenFolder>();
  readonly #seen = new Map<string, Identity>();
  readonly #agentUid = process.geteuid?.() ?? 0;
  /** Folders kept open before trim() is due (see isFull). */
  readonly limit: number;

  constructor(limit = defaultLimit()) {
    if (!descriptorPathsAvailable()) {
      throw new InstallError(
        'The deployment failed because /proc is not mounted: Install reaches destination folders through /proc/<pid>/fd so that no symbolic link another user plants can steer it. Mount /proc, and then try again.',
      );
    }
    this.limit = limit;
  }

  /** The descriptor (O_PATH) of the folder `path`, opened from its parent's; cached until trim() or close(). */
  directory(path: string): number {
    const absolute = normalized(path);
    const cached = this.#open.get(absolute);
    if (cached) return cached.fd;
    // The process's root through /proc rather than by the name `/`: the same folder on any host, and the
    // real one under qemu user emulation too, which (run with -L <sysroot>, as the arm64 test is) hands
    // every absolute path that exists in the sysroot, `/` included, to the sysroot's copy.
    if (absolute === '/') return this.#remember('/', fs.openSync(PROCESS_ROOT, O_PATH | O_DIRECTORY));
    const parentPath = dirname(absolute);
    const parent = this.directory(parentPath);
    return this.#remember(absolute, this.#openChild(parent, parentPath, basename(absolute), { hops: 0 }));
  }

  /** Like directory(), or undefined when a component of the path does not exist. */
  existingDirectory(path: string): number | undefined {
    try {
      return this.directory(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** What names the entry `path` inside the folder that holds it: for creating, renaming, unlinking it. */
  entry(path: string): string {
    // Once per file Install copies: slicing and one lookup (cache keys are normalised, and the plan's
    // paths already are), not path.dirname, path.basename and a walk.
    const slash = path.lastIndexOf('/');
    const folder = slash <= 0 ? '/' : path.slice(0, slash);
    const fd = this.#open.get(folder)?.fd ?? this.directory(folder);
    return descriptorPath(fd, path.slice(slash + 1));
  }

  /** lstat of the entry itself, or undefined when it does not exist. */
  lstat(path: string): Stats | undefined {
    return fs.lstatSync(this.entry(path), { throwIfNoEntry: false });
  }

  /** The entry's own descriptor (O_PATH, never through a symlink); the caller closes it. */
  openEntry(path: string): number {
    return fs.openSync(this.entry(path), ENTRY_FLAGS);
  }

  /** Creates the folder `path` (mode 0777 less the umask, as mkdir(1)) and keeps its descriptor. */
  mkdir(path: string): number {
    const absolute = normalized(path);
    this.#seen.delete(absolute);
    const parent = this.directory(dirname(absolute));
    const name = descriptorPath(parent, basename(absolute));
    let fd: number;
    try {
      fs.mkdirSync(name);
      fd = fs.openSync(name, DIRECTORY_FLAGS);
    } catch (error) {
      throw naming(error, name, absolute);
    }
    // The folder that holds it may be another user's: what is there now must be the folder just made.
    if (fs.fstatSync(fd).uid !== this.#agentUid) {
      fs.closeSync(fd);
      throw new InstallError(`The deployment failed because the folder ${absolute} that Install had just created was replaced by someone else's`);
    }
    return this.#remember(absolute, fd);
  }

  /** fstat of the folder `path`. */
  stat(path: string): Stats {
    return fs.fstatSync(this.directory(path));
  }

  /** The path moved away or was removed: drop what the tree knew about it and below. */
  forget(path: string): void {
    const absolute = normalized(path);
    // Nothing at or below a path was ever opened unless the path itself was (a walk opens every folder on
    // its way): files, most of what Install moves aside, cost one lookup.
    if (!this.#seen.has(absolute)) return;
    const below = `${absolute}/`;
    for (const [key, open] of this.#open) {
      if (key === absolute || key.startsWith(below)) {
        fs.closeSync(open.fd);
        this.#open.delete(key);
      }
    }
    for (const key of this.#seen.keys()) if (key === absolute || key.startsWith(below)) this.#seen.delete(key);
  }

  /** Whether trim() is due: the caller makes sure no job in flight still names a descriptor first. */
  get isFull(): boolean {
    return this.#open.size > this.limit;
  }

  /** Closes every folder's descriptor; they are opened again (and checked to be the same folders) on use. */
  trim(): void {
    for (const open of this.#open.values()) fs.closeSync(open.fd);
    this.#open.clear();
  }

  close(): void {
    this.trim();
    this.#seen.clear();
  }

  #remember(path: string, fd: number): number {
    const { dev, ino } = fs.fstatSync(fd);
    const seen = this.#seen.get(path);
    if (seen && (seen.dev !== dev || seen.ino !== ino)) {
      fs.closeSync(fd);
      throw new InstallError(`The deployment failed because the folder ${path} was moved or replaced while Install was running`);
    }
    this.#seen.set(path, { dev, ino });
    this.#open.set(path, { fd, dev, ino });
    return fd;
  }

  /** Opens `name` in the folder `parent` (at `parentPath`) as a folder, following only a trusted symlink. */
  #openChild(parent: number, parentPath: string, name: string, count: { hops: number }): number {
    const path = parentPath === '/' ? `/${name}` : `${parentPath}/${name}`;
    // ENOTDIR is a symlink (O_NOFOLLOW) or not a folder; a folder by the time lstat looks was swapped
    // back meanwhile: opened again, a few times, rather than reported as what it is not.
    for (let attempt = 0; ; attempt++) {
      try {
        return fs.openSync(descriptorPath(parent, name), DIRECTORY_FLAGS);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOTDIR') throw named(error, path);
      }
      const stats = fs.lstatSync(descriptorPath(parent, name), { throwIfNoEntry: false });
      if (!stats) throw named(Object.assign(new Error('no such file or directory'), { code: 'ENOENT' }), path);
      if (stats.isDirectory() && attempt < 3) continue;
      if (!stats.isSymbolicLink()) throw named(Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }), path);
      const target = fs.readlinkSync(descriptorPath(parent, name));
      this.#refuseUntrustedLink(path, target, stats, fs.fstatSync(parent), parentPath);
      if (++count.hops > MAX_LINKS) throw named(Object.assign(new Error('too many levels of symbolic links'), { code: 'ELOOP' }), path);
      // The link and its folder are root's alone: what was read is still what it says.
      return this.#walkTarget(parent, parentPath, target, count);
    }
  }

  /** Follows a trusted link's target from the folder holding the link, component by component, by the same rules. */
  #walkTarget(parent: number, parentPath: string, target: string, count: { hops: number }): number {
    let current = target.startsWith('/') ? this.directory('/') : parent;
    let currentPath = target.startsWith('/') ? '/' : parentPath;
    // Descriptors opened here for the folders on the way are the walk's own; the cached ones are not closed.
    let owned = false;
    try {
      for (const component of target.split('/')) {
        if (component === '' || component === '.') continue;
        const next =
          component === '..' ? fs.openSync(descriptorPath(current, '..'), DIRECTORY_FLAGS) : this.#openChild(current, currentPath, component, count);
        if (owned) fs.closeSync(current);
        current = next;
        owned = true;
        currentPath = component === '..' ? dirname(currentPath) : currentPath === '/' ? `/${component}` : `${currentPath}/${component}`;
      }
    } catch (error) {
      if (owned) fs.closeSync(current);
      throw error;
    }
    // A link to its own folder ('.'): a descriptor of the caller's own would be closed twice.
    return owned ? current : fs.openSync(descriptorPath(current), DIRECTORY_FLAGS);
  }

  #refuseUntrustedLink(path: string, target: string, link: Stats, folder: Stats, folderPath: string): void {
    const fix =
      'The agent runs as root and follows a symbolic link on the way to a destination only when the link and the folder that holds it are root\'s and nobody else can write that folder. Make the destination a real folder, or make the link and its folder root\'s (not writable by group or others), and then try again.';
    if (link.uid !== 0 && link.uid !== this.#agentUid) {
      throw new UnsafePathError(
        path,
        link.uid,
        `The deployment failed because ${path} is a symbolic link (to ${target}) that belongs to ${describeUser(link.uid)}, who may have planted it; it was not followed. ${fix}`,
      );
    }
    if (!onlyRootChanges(folder, this.#agentUid)) {
      const who = folder.uid !== 0 && folder.uid !== this.#agentUid ? `belongs to ${describeUser(folder.uid)}` : `is writable by ${folder.mode & 0o002 ? 'everyone' : `its group (gid ${folder.gid})`}`;
      throw new UnsafePathError(
        path,
        folder.uid,
        `The deployment failed because ${path} is a symbolic link (to ${target}) in ${folderPath}, which ${who} (mode ${(folder.mode & 0o7777).toString(8).padStart(4, '0')}): another user can replace the link, so it was not followed. ${fix}`,
      );
    }
  }
}

/** `path` absolute and normalised; Install's paths already are (the plan resolves them), so mostly a check. */
function normalized(path: string): string {
  const plain = path.startsWith('/') && !path.includes('//') && !path.includes('/.') && (path.length === 1 || !path.endsWith('/'));
  return plain ? path : resolve(path);
}

/**
 * `error` (a system error about the descriptor path `entry`) saying `path` instead: messages are for
 * people, who know the destination, not the descriptor Install reached it by.
 */
export function naming(error: unknown, entry: string, path: string): unknown {
  if (!(error instanceof Error) || !error.message.includes(entry)) return error;
  error.message = error.message.replaceAll(entry, path);
  const system = error as NodeJS.ErrnoException & { dest?: string };
  if (system.path === entry) system.path = path;
  if (system.dest === entry) system.dest = path;
  return error;
}

/** A system error that names the destination path rather than /proc/<pid>/fd/<n>/<name>. */
function named(error: unknown, path: string): Error {
  const original = error as NodeJS.ErrnoException;
  const code = original.code ?? 'EIO';
  const reason = original.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '[^']*'$/, '');
  return Object.assign(new Error(`${code}: ${reason}, ${path}`), { code, errno: original.errno, syscall: original.syscall, path });
}

/**
 * Folders kept open at once: a quarter of the descriptor limit (Node.js raises the soft limit to the hard
 * one at start; systemd's default hard limit is 524288), at least 256.
 */
function defaultLimit(): number {
  let soft = 1024;
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((entry) => entry.startsWith('Max open files'));
    const value = Number(line?.split(/\s{2,}/)[1]);
    if (Number.isFinite(value) && value > 0) soft = value;
  } catch {
    // the default above
  }
  return Math.max(256, Math.floor(soft / 4));
}
