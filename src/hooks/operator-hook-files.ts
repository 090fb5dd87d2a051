import { lstatSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { ownershipProblem } from '../util/folder-trust.js';

/**
 * Which operator hooks exist and may run: the executables an operator puts in `:operator_hooks_dir:`
 * (default /etc/codedeploy-agent/hooks.d) to run around every deployment and lifecycle event. For each
 * point (`pre-event`…) the file of that name runs first, then the files of `<point>.d/` in byte order of
 * their names, so packages and configuration tools can drop in hooks of their own.
 *
 * The agent runs them as root, so a hook is only as safe as every folder on its way: a file, `*.d` folder
 * or hooks folder (after following symlinks) must belong to root (or the agent's own user) and be
 * writable by nobody else, and so must every folder above them, except that a sticky folder such as /tmp
 * may be writable by all (nobody but root can rename root's entries in it). Anything else is refused.
 * Not executable means "disabled" (as git and run-parts treat hooks): skipped, with a note.
 */
export const OPERATOR_HOOK_POINTS = ['pre-deployment', 'post-deployment', 'pre-event', 'post-event'] as const;
export type OperatorHookPoint = (typeof OPERATOR_HOOK_POINTS)[number];

export interface HookProblem {
  path: string;
  reason: string;
}

export interface PointHooks {
  /** Absolute paths, in the order they run. */
  run: string[];
  /** Present but not trusted: a pre- point fails, a post- point logs it. */
  refused: HookProblem[];
  /** Present but not run on purpose (not executable, editor or package-manager leftovers). */
  skipped: HookProblem[];
}

export type OperatorHookScan = Record<OperatorHookPoint, PointHooks>;

/** Leftovers of editors and package managers in a `.d` folder, never run (nor hidden files). */
const LEFTOVER = /(~|\.(swp|bak|orig|disabled|dpkg-(old|new|dist|tmp|bak)|rpm(new|save|orig)|ucf-(old|new|dist)))$/;

/** Checks a path as the agent would reach it: through symlinks, and every folder above the real path. */
class TrustChecker {
  private readonly folders = new Map<string, string | undefined>();
  constructor(private readonly agentUid: number) {}

  problem(path: string): string | undefined {
    let real: string;
    let stats: Stats;
    try {
      real = realpathSync(path);
      stats = statSync(real);
    } catch (error) {
      return `${path} cannot be resolved: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
    }
    const own = ownershipProblem(real === path ? path : `${path} (→ ${real})`, stats, this.agentUid, false);
    return own ?? this.folderProblem(dirname(real));
  }

  private folderProblem(folder: string): string | undefined {
    if (this.folders.has(folder)) return this.folders.get(folder);
    let problem: string | undefined;
    try {
      problem = ownershipProblem(folder, statSync(folder), this.agentUid, true);
    } catch (error) {
      problem = `${folder} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
    }
    if (problem === undefined && dirname(folder) !== folder) problem = this.folderProblem(dirname(folder));
    this.folders.set(folder, problem);
    return problem;
  }
}

function emptyPoint(): PointHooks {
  return { run: [], refused: [], skipped: [] };
}

function isExecutableFile(stats: Stats): boolean {
  return (stats.mode & 0o111) !== 0;
}

/**
 * Looks at one hook file: refused (untrusted or not a file), skipped (not executable) or to run.
 * `folderProblem` is set when the folder holding it is untrusted already.
 */
function classify(path: string, trust: TrustChecker, point: PointHooks, folderProblem: string | undefined): void {
  if (folderProblem) {
    point.refused.push({ path, reason: folderProblem });
    return;
  }
  const problem = trust.problem(path);
  if (problem) {
    point.refused.push({ path, reason: problem });
    return;
  }
  const stats = statSync(path);
  if (!stats.isFile()) {
    point.refused.push({ path, reason: `${path} is not a regular file` });
  } else if (!isExecutableFile(stats)) {
    point.skipped.push({ path, reason: `${path} is not executable (chmod +x it to enable it)` });
  } else {
    point.run.push(path);
  }
}

/**
 * Scans the hooks folder. Undefined when it does not exist (the usual case: no operator hooks, and
 * nothing about deployments changes). Never throws for what it finds; problems are in `refused`.
 */
export function scanOperatorHooks(dir: string, agentUid: number = process.getuid?.() ?? 0): OperatorHookScan | undefined {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    const scan = Object.fromEntries(OPERATOR_HOOK_POINTS.map((p) => [p, emptyPoint()])) as OperatorHookScan;
    // Unreadable or not a folder: every pre- point fails with the reason rather than silently skipping.
    for (const point of OPERATOR_HOOK_POINTS) scan[point].refused.push({ path: dir, reason: `the operator hooks folder ${dir} cannot be read: ${code ?? (error as Error).message}` });
    return scan;
  }
  const trust = new TrustChecker(agentUid);
  // The folder's own problem is only reported against hooks that are actually in it.
  const dirProblem = trust.problem(dir);
  const present = new Set(entries);
  const scan = {} as OperatorHookScan;
  for (const pointName of OPERATOR_HOOK_POINTS) {
    const point = emptyPoint();
    scan[pointName] = point;
    if (present.has(pointName)) classify(join(dir, pointName), trust, point, dirProblem);
    const dropIns = `${pointName}.d`;
    if (!present.has(dropIns)) continue;
    const folder = join(dir, dropIns);
    let names: string[];
    try {
      if (!statSync(folder).isDirectory()) {
        point.refused.push({ path: folder, reason: `${folder} is not a folder` });
        continue;
      }
      names = readdirSync(folder);
    } catch (error) {
      point.refused.push({ path: folder, reason: `${folder} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
      continue;
    }
    const folderProblem = dirProblem ?? trust.problem(folder);
    // Byte order, whatever the locale: `10-lb` before `20-notify`, as run-parts and systemd order drop-ins.
    for (const name of names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
      const path = join(folder, name);
      if (name.startsWith('.') || LEFTOVER.test(name)) {
        point.skipped.push({ path, reason: `${path} is a hidden file or an editor or package-manager leftover` });
        continue;
      }
      let stats: Stats;
      try {
        stats = lstatSync(path);
      } catch {
        continue; // removed while we looked
      }
      if (stats.isDirectory()) {
        point.skipped.push({ path, reason: `${path} is a folder (hooks in ${folder} are files)` });
        continue;
      }
      classify(path, trust, point, folderProblem);
    }
  }
  return scan;
}

/** Whether a point has anything to run or to refuse (a refused pre- hook still fails its event). */
export function pointHasHooks(scan: OperatorHookScan | undefined, point: OperatorHookPoint): boolean {
  return scan !== undefined && (scan[point].run.length > 0 || scan[point].refused.length > 0);
}
