/**
 * A real, booted systemd for tests: a container made from an overlay of this machine's own root, driven from
 * the outside. The development and CI machines run systemd's tools but not systemd itself (PID 1 is
 * something else), so `systemctl`, `journalctl`, `KillMode=` and the unit's hardening can only be checked
 * for real inside such a container. What this relies on, measured on those machines (Debian 12, systemd 252,
 * hybrid cgroups: v1 controllers, a `name=systemd` v1 hierarchy and cgroup2 at /sys/fs/cgroup/unified):
 *
 * - `systemd-nspawn` (package `systemd-container`, installed with --no-install-recommends: the recommended
 *   libnss-mymachines edits /etc/nsswitch.conf) boots `/` bound *non-recursively* and read-only to a folder,
 *   with `--volatile=overlay`: every write inside goes to a tmpfs, the host is never changed. `-D /` itself is
 *   refused, and `--volatile=state` on `/` fails on the mounted /dev; the plain bind avoids both.
 * - The host has no systemd to register with: `--register=no --keep-unit --link-journal=no`, `--console=pipe`
 *   (no terminal), and `systemd.unit=basic.target` so the services the host has enabled (a database) do not
 *   start inside (boot to basic.target takes 0.3-0.6 s, about 3 s otherwise).
 * - No host bus, so `systemctl -M` and `systemd-run -M` do not work: commands run inside with
 *   `nsenter -t <container PID 1 as the host sees it> -a`. PID 1 is the child of nspawn whose `NSpid:` ends
 *   in 1. `systemctl is-system-running` says `running` or `degraded` once it is up.
 * - The container shares the host's network, so doubles on the host's 127.0.0.1 are reachable from inside.
 *   It has its own /tmp (a tmpfs); host folders it must share are passed with `--bind=DIR` (same path inside,
 *   visible both ways). Files the host creates after the boot are not reliably visible through the overlay, so
 *   files go in through nsenter (`writeFile`, `copyIn`) or a bound folder.
 * - Each container gets cgroups of its own (a folder per writable hierarchy, named for this process's pid and a
 *   counter, nspawn adds `payload/` below), so two containers run at once and nothing is left after the folders
 *   are removed, deepest first. Processes a unit leaves behind die with the container's pid namespace.
 * - SIGTERM to systemd-nspawn halts the container cleanly (about 0.6 s); a second one stops it at once.
 * - The container's own services lack CAP_SYS_TIME, CAP_SYS_MODULE, CAP_SYSLOG (nspawn keeps them from its init)
 *   and see /proc/sys read-only, but a command entered with nsenter keeps this process's capabilities: `date -s`
 *   through `exec` would set the real clock. Run only what changes the container's own state.
 *
 * Clean-up never depends on the test finishing well:
 * - the read-only bind of `/` is made inside a private mount namespace (`unshare --mount`) that only nspawn
 *   lives in, so it disappears with nspawn and the host's mount table never holds it;
 * - nspawn runs with a parent-death signal (`setpriv --pdeathsig`): if the test process dies, even by SIGKILL,
 *   the container is halted;
 * - `SystemdContainer.boot` registers the container for an `exit` and SIGINT/SIGTERM/SIGHUP handler that halts
 *   it; `useSystemdContainer` halts it in afterAll (which vitest runs after failures and timeouts too);
 * - cgroup folders and temporary folders left by a test process that died are removed by the next one
 *   (their names carry the dead process's pid).
 * Only processes this helper started are ever signalled, by pid.
 *
 * Tests that cannot have a container (not root, no systemd-nspawn, no writable cgroups, a kernel that refuses
 * nested namespaces) skip with the reason printed; with CI set (`.ci/run`) they fail instead. `npm test` run as
 * root installs systemd-container (test/prerequisites.txt).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll } from 'vitest';
import { missingTool } from './prerequisites.js';

/** The PATH commands get inside the container (what systemd gives services). */
export const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Names of cgroups, machines and temporary folders: `cda-sd-<pid>-<n>`. */
const NAME_PREFIX = 'cda-sd-';

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Text on the command's stdin. */
  input?: string | Buffer;
  /** Variables besides PATH/LANG (the command gets nothing else of the test's environment). */
  env?: Record<string, string>;
  /** Working folder inside the container (default /). */
  cwd?: string;
  /** Kill the command (nsenter, by pid) after this long; default 60 s. */
  timeoutMs?: number;
}

// ---------------------------------------------------------------------------------------------------------
// Can this machine run one?

/** The cgroup hierarchies a container must be placed in: cgroup2 alone, or the hybrid pair. */
function cgroupHierarchies(): string[] {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return ['/sys/fs/cgroup'];
  return ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified'].filter((dir) => existsSync(join(dir, 'cgroup.procs')));
}

let cachedReason: string | undefined | null = null;

/** Why no container can be had here besides a missing command, or undefined when one can. */
function unavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root (the container needs root: run the tests as root)';
  const hierarchies = cgroupHierarchies();
  if (hierarchies.length === 0) return 'no cgroup hierarchy to place a container in under /sys/fs/cgroup';
  const probe = join(hierarchies[0], `${NAME_PREFIX}probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
  } catch (error) {
    return `cannot create a cgroup in ${hierarchies[0]} (${(error as Error).message})`;
  }
  const nested = spawnSync('unshare', ['--mount', '--pid', '--uts', '--ipc', '--fork', 'true'], { encoding: 'utf8' });
  if (nested.status !== 0) return `the kernel refuses nested namespaces (unshare: ${(nested.stderr || nested.error?.message || '').trim()})`;
  return undefined;
}

/**
 * Undefined when a container can be booted here; otherwise the reason, printed once. Under CI (what `.ci/run`
 * runs) a missing container is an error: CI must run these tests, never skip them. The commands come from
 * test/prerequisites.txt (systemd-nspawn; nsenter, unshare and setpriv are util-linux's).
 */
export function systemdContainerUnavailable(): string | undefined {
  if (cachedReason === null) {
    cachedReason = missingTool('systemd-nspawn') ?? missingTool('setpriv');
    if (cachedReason === undefined) {
      cachedReason = unavailableReason();
      if (cachedReason !== undefined) {
        if (process.env.CI) throw new Error(`No systemd container on this CI machine: ${cachedReason}. CI never skips the systemd tests.`);
        console.warn(`skipped: the systemd tests: ${cachedReason}`);
      }
    }
  }
  return cachedReason;
}

// ---------------------------------------------------------------------------------------------------------
// Leftovers of test processes that died, and the handlers that make that rare.

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid in `cda-sd-<pid>-...`, or undefined. */
function ownerOf(name: string): number | undefined {
  const match = new RegExp(`^${NAME_PREFIX}(\\d+)-`).exec(name);
  return match ? Number(match[1]) : undefined;
}

/** Every folder below `dir` (deepest first), then `dir`; empty cgroups go, busy ones stay (rmdir refuses). */
function removeCgroupTree(dir: string): boolean {
  let entries: string[];
  try {
    entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return !existsSync(dir);
  }
  for (const entry of entries) removeCgroupTree(join(dir, entry));
  try {
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

/** Paths mounted at or below `dir` in this process's mount namespace. */
function mountsBelow(dir: string): string[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  return text.split('\n').map((line) => line.split(' ')[4]).filter((point) => point && (point === dir || point.startsWith(`${dir}/`)));
}

let swept = false;

/**
 * Removes cgroups and temporary folders of earlier test processes that are gone (their pid is dead); once per
 * process unless `again`.
 */
export function sweepLeftovers(again = false): void {
  if (swept && !again) return;
  swept = true;
  for (const hierarchy of cgroupHierarchies()) {
    for (const name of safeReaddir(hierarchy)) {
      const owner = ownerOf(name);
      if (owner !== undefined && !pidAlive(owner)) removeCgroupTree(join(hierarchy, name));
    }
  }
  for (const name of safeReaddir(tmpdir())) {
    const owner = ownerOf(name);
    const dir = join(tmpdir(), name);
    if (owner !== undefined && !pidAlive(owner) && mountsBelow(dir).length === 0) rmSync(dir, { recursive: true, force: true });
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const live = new Set<SystemdContainer>();
let handlersInstalled = false;

/** Halts every live container at once (synchronous: SIGTERM to each nspawn this process started). */
function haltAllNow(): void {
  for (const container of live) container.signalNspawn('SIGTERM');
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', haltAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      haltAllNow();
      process.off(signal, onSignal);
      // Nobody else handles it: die of it, as without this handler.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The container.

let counter = 0;

export interface BootOptions {
  /** Host folders bound into the container at the same path, read-write both ways. */
  binds?: string[];
  /** How long the boot may take until `systemctl is-system-running` answers; default 60 s. */
  timeoutMs?: number;
}

export class SystemdContainer {
  /** A host folder bound at the same path inside: files the test and the container both write. */
  readonly shared: string;
  /** PID 1 of the container as the host sees it. */
  pid = 0;
  private output = '';
  private readonly exited: Promise<void>;
  private halted = false;

  private constructor(
    readonly name: string,
    private readonly work: string,
    private readonly cgroups: string[],
    private readonly nspawn: ChildProcess,
  ) {
    this.shared = join(work, 'shared');
    this.exited = new Promise((resolve) => {
      if (nspawn.exitCode !== null || nspawn.signalCode !== null) resolve();
      else nspawn.once('exit', () => resolve());
    });
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString('utf8')).slice(-20_000);
    };
    nspawn.stdout?.on('data', keep);
    nspawn.stderr?.on('data', keep);
  }

  /** Boots a container and waits until its systemd is up. Halt it with `halt()` (or use `useSystemdContainer`). */
  static async boot(options: BootOptions = {}): Promise<SystemdContainer> {
    const reason = systemdContainerUnavailable();
    if (reason !== undefined) throw new Error(`no systemd container: ${reason}`);
    sweepLeftovers();
    installExitHandlers();
    counter += 1;
    const name = `${NAME_PREFIX}${process.pid}-${counter}`;
    const work = mkdtempSync(join(tmpdir(), `${name}-`));
    const rootfs = join(work, 'rootfs');
    mkdirSync(rootfs);
    mkdirSync(join(work, 'shared'), { mode: 0o755 });
    const cgroups = cgroupHierarchies().map((hierarchy) => join(hierarchy, name));
    for (const cgroup of cgroups) mkdirSync(cgroup);

    const binds = [join(work, 'shared'), ...(options.binds ?? [])].map((dir) => `--bind=${dir}`);
    // Runs as one process from setpriv to nspawn (each execs the next), so the pid is nspawn's.
    const script = [
      'set -e',
      'for procs in $CDA_CGROUP_PROCS; do echo $$ > "$procs"; done',
      'mount --bind / "$CDA_ROOTFS"',
      'mount -o remount,bind,ro "$CDA_ROOTFS"',
      'exec systemd-nspawn -D "$CDA_ROOTFS" --machine="$CDA_MACHINE" --volatile=overlay --register=no --keep-unit \\',
      '  --link-journal=no --console=pipe "$@" -b systemd.unit=basic.target',
    ].join('\n');
    const nspawn = spawn(
      'setpriv',
      ['--pdeathsig', 'SIGTERM', '--', 'unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', ...binds],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: CONTAINER_PATH,
          CDA_ROOTFS: rootfs,
          CDA_MACHINE: name,
          CDA_CGROUP_PROCS: cgroups.map((cgroup) => join(cgroup, 'cgroup.procs')).join(' '),
        },
      },
    );
    const container = new SystemdContainer(name, work, cgroups, nspawn);
    live.add(container);
    try {
      await container.waitUntilUp(options.timeoutMs ?? 60_000);
    } catch (error) {
      await container.halt();
      throw error;
    }
    return container;
  }

  private async waitUntilUp(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const fail = (what: string) => new Error(`${what}; systemd-nspawn said:\n${this.output}`);
    while (this.pid === 0) {
      if (this.nspawn.exitCode !== null || this.nspawn.signalCode !== null) throw fail('systemd-nspawn exited during the boot');
      if (Date.now() > deadline) throw fail('the container did not start in time');
      this.pid = this.findInit();
      if (this.pid === 0) await sleep(50);
    }
    let state = '';
    for (;;) {
      const result = await this.exec(['systemctl', 'is-system-running'], { timeoutMs: 10_000 });
      state = result.stdout.trim();
      if (state === 'running' || state === 'degraded') return;
      if (Date.now() > deadline) throw fail(`the container's systemd did not come up (is-system-running: ${state || result.stderr.trim()})`);
      await sleep(100);
    }
  }

  /** The container's PID 1: the child of nspawn whose pid in its own namespace is 1. */
  private findInit(): number {
    const nspawnPid = this.nspawn.pid;
    if (nspawnPid === undefined) return 0;
    let children: number[] = [];
    try {
      for (const task of readdirSync(`/proc/${nspawnPid}/task`)) {
        const text = readFileSync(`/proc/${nspawnPid}/task/${task}/children`, 'utf8').trim();
        if (text) children.push(...text.split(/\s+/).map(Number));
      }
    } catch {
      // A kernel without /proc/PID/task/TID/children: look for processes whose parent is nspawn.
      children = safeReaddir('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
        try {
          return Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) === nspawnPid;
        } catch {
          return false;
        }
      });
    }
    for (const child of children) {
      try {
        const status = readFileSync(`/proc/${child}/status`, 'utf8');
        const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1].trim().split(/\s+/) ?? [];
        const comm = readFileSync(`/proc/${child}/comm`, 'utf8').trim();
        if (nspid.length > 1 && nspid.at(-1) === '1' && comm === 'systemd') return child;
      } catch {
        // gone, or not started yet
      }
    }
    return 0;
  }

  /** Runs a command inside the container (all its namespaces), with a clean environment; never throws on exit codes. */
  async exec(argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    const child = this.spawnInside(argv, options);
    const result = await child;
    return {
      exitCode: result.exitCode ?? (result.timedOut ? 124 : -1),
      stdout: String(result.stdout ?? ''),
      stderr: String(result.stderr ?? '') + (result.timedOut ? `\n(killed after ${options.timeoutMs ?? 60_000} ms)` : ''),
    };
  }

  /** Like `exec`, for a command the test watches while it runs (`systemctl stop` that waits for a hook). */
  spawnInside(argv: string[], options: ExecOptions = {}): ResultPromise {
    if (this.pid === 0 || this.halted) throw new Error(`the container ${this.name} is not running`);
    const env = [`PATH=${CONTAINER_PATH}`, 'LANG=C.UTF-8', 'SYSTEMD_PAGER=', 'SYSTEMD_COLORS=0', 'TERM=dumb',
      ...Object.entries(options.env ?? {}).map(([key, value]) => `${key}=${value}`)];
    const inner = options.cwd ? ['sh', '-c', 'cd "$1" && shift && exec "$@"', 'sh', options.cwd, ...argv] : argv;
    return execa('nsenter', ['-t', String(this.pid), '-a', '--', 'env', '-i', ...env, ...inner], {
      reject: false,
      extendEnv: false,
      env: { PATH: CONTAINER_PATH },
      input: options.input,
      stdin: options.input === undefined ? 'ignore' : undefined,
      timeout: options.timeoutMs ?? 60_000,
      killSignal: 'SIGKILL',
      stripFinalNewline: false,
    });
  }

  /** `sh -c SCRIPT` inside; throws with the output when it exits non-zero. */
  async sh(script: string, options: ExecOptions = {}): Promise<string> {
    const result = await this.exec(['sh', '-c', script], options);
    if (result.exitCode !== 0) throw new Error(`in the container, \`${script}\` exited ${result.exitCode}:\n${result.stdout}${result.stderr}`);
    return result.stdout;
  }

  /** `systemctl ARGS` inside (never throws). */
  systemctl(...args: string[]): Promise<ExecResult> {
    return this.exec(['systemctl', '--no-pager', ...args]);
  }

  /** A unit property (`systemctl show -p NAME --value`). */
  async property(unit: string, name: string): Promise<string> {
    return (await this.exec(['systemctl', 'show', '-p', name, '--value', unit])).stdout.trim();
  }

  /** The journal: `journalctl --no-pager ARGS` (e.g. `-u unit -o cat`). */
  async journal(...args: string[]): Promise<string> {
    return (await this.exec(['journalctl', '--no-pager', ...args])).stdout;
  }

  /** Writes a file inside (folders made as needed) as the container sees the path. */
  async writeFile(path: string, content: string | Buffer, mode = 0o644): Promise<void> {
    const check = await this.exec(['sh', '-c', 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"', 'sh', path, mode.toString(8)], { input: content });
    if (check.exitCode !== 0) throw new Error(`cannot write ${path} in the container: ${check.stderr}`);
  }

  /** A file inside, as text. */
  async readFile(path: string): Promise<string> {
    const result = await this.exec(['cat', '--', path]);
    if (result.exitCode !== 0) throw new Error(`cannot read ${path} in the container: ${result.stderr}`);
    return result.stdout;
  }

  /** Does the path exist inside (`test -e`, or -L for a link)? */
  async exists(path: string): Promise<boolean> {
    return (await this.exec(['sh', '-c', 'test -e "$1" || test -L "$1"', 'sh', path])).exitCode === 0;
  }

  /** Copies a host file or folder into `targetDir` inside (created), keeping its name, modes and times. */
  async copyIn(hostPath: string, targetDir: string): Promise<string> {
    const archive = execa('tar', ['-C', dirname(hostPath), '-cf', '-', basename(hostPath)], { encoding: 'buffer', reject: false });
    const { stdout, exitCode, stderr } = await archive;
    if (exitCode !== 0) throw new Error(`tar of ${hostPath} failed: ${String(stderr)}`);
    const result = await this.exec(['sh', '-c', 'mkdir -p "$1" && tar -C "$1" -xf -', 'sh', targetDir], { input: Buffer.from(stdout as Uint8Array) });
    if (result.exitCode !== 0) throw new Error(`cannot unpack ${hostPath} into ${targetDir} in the container: ${result.stderr}`);
    return join(targetDir, basename(hostPath));
  }

  /** Polls `probe` (every 100 ms) until it returns something truthy; rejects after `timeoutMs` with `describe()`. */
  async waitFor<T>(probe: () => Promise<T | undefined | null | false>, timeoutMs: number, what: string, describe?: () => Promise<string>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value) return value;
      if (Date.now() > deadline) {
        const detail = describe ? `\n${await describe().catch((error: Error) => error.message)}` : '';
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
      }
      await sleep(100);
    }
  }

  /** Sends `signal` to the nspawn process this helper started (synchronous; for the exit handlers too). */
  signalNspawn(signal: NodeJS.Signals): void {
    const pid = this.nspawn.pid;
    if (pid === undefined || this.nspawn.exitCode !== null || this.nspawn.signalCode !== null) return;
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }

  /**
   * Halts the container (SIGTERM to nspawn; a second SIGTERM, then SIGKILL if it lingers), removes its
   * cgroups deepest first and its temporary folder. Safe to call twice.
   */
  async halt(): Promise<void> {
    if (this.halted) return;
    this.halted = true;
    const steps: [NodeJS.Signals, number][] = [['SIGTERM', 10_000], ['SIGTERM', 5_000], ['SIGKILL', 5_000]];
    for (const [signal, waitMs] of steps) {
      this.signalNspawn(signal);
      if (await Promise.race([this.exited.then(() => true), sleep(waitMs).then(() => false)])) break;
    }
    live.delete(this);
    // The pid namespace's last processes may take a moment to be reaped before the cgroups are empty.
    const deadline = Date.now() + 10_000;
    while (!this.cgroups.every((cgroup) => removeCgroupTree(cgroup)) && Date.now() < deadline) await sleep(100);
    const busy = this.cgroups.filter((cgroup) => existsSync(cgroup));
    if (busy.length > 0) console.warn(`systemd container ${this.name}: cgroups still busy, left for the next run to remove: ${busy.join(', ')}`);
    // The bind of / lived in nspawn's own mount namespace; never remove a folder that still has a mount below it.
    const mounted = mountsBelow(this.work);
    if (mounted.length === 0) rmSync(this.work, { recursive: true, force: true });
    else console.warn(`systemd container ${this.name}: ${mounted.join(', ')} still mounted; ${this.work} left in place`);
  }

  /** The systemd-nspawn process this helper started. */
  get nspawnPid(): number | undefined {
    return this.nspawn.pid;
  }

  /** What systemd-nspawn printed (the container's console), for failure messages. */
  get console(): string {
    return this.output;
  }
}

/** Boots a container for the enclosing describe block (beforeAll) and halts it afterwards (afterAll). */
export function useSystemdContainer(options: BootOptions = {}): { readonly container: SystemdContainer } {
  let container: SystemdContainer | undefined;
  beforeAll(async () => {
    container = await SystemdContainer.boot(options);
  }, 90_000);
  afterAll(async () => {
    await container?.halt();
  }, 60_000);
  return {
    get container(): SystemdContainer {
      if (!container) throw new Error('the systemd container is not booted (beforeAll failed?)');
      return container;
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Exposed for the helper's own test: the folder a container lives in and whether it exists. */
export function containerLeftovers(name: string): { cgroups: string[]; folders: string[] } {
  return {
    cgroups: cgroupHierarchies().map((hierarchy) => join(hierarchy, name)).filter((dir) => existsSync(dir)),
    folders: safeReaddir(tmpdir()).filter((entry) => entry.startsWith(`${name}-`)).map((entry) => join(tmpdir(), entry))
      .filter((dir) => statSync(dir, { throwIfNoEntry: false })?.isDirectory()),
  };
}
