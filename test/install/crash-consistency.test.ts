/**
 * Crash consistency of Install: a real `deploy` (and the daemon) installing a revision over a previous
 * one of 20,000 files is killed with SIGKILL, at exact points (after its n-th change to the host, by a
 * test-only switch in its environment, see src/install/crash-switch.ts) and at random times; the next
 * start must leave the destination exactly the previous tree or exactly the new one (bytes, modes,
 * owners, links, file times), with no journal or backup left and the cleanup file to match, before
 * anything else runs. For a directory and a tgz bundle.
 *
 * What Install does once the revision is unpacked does not depend on the bundle's type, so by default the
 * exact points of one Install (its phases, and the commit) are shared out between the two types, random
 * kills are two for one type and one for the other, a recovery is killed (twice) for the directory bundle
 * only, and the daemon is killed at one exact point: the file runs in about three minutes on an idle
 * 2-core machine. CRASH_KILL_POINTS=<n> runs n exact points for each type instead (every phase, then
 * random counts); CRASH_RANDOM_KILLS=<n> n random kills for each; CRASH_FILES=<n> the size of the
 * revisions. A random kill prints its delay, to replay it.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_BIN } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FakeCommandsService, makeSpec } from '../doubles/commands-service.js';
import { AgentWorld, payloadOf, waitForDeployment, type RunningAgent } from '../agent/harness.js';
import { isAlive } from '../hooks/proc.js';
import { makeTgz, manifest, manifestDifference, writeOutsiderFile, writeRevision, type RevisionCounts } from './crash-fixtures.js';

const FILES = Number(process.env.CRASH_FILES ?? 20_000);
const KILL_POINTS = process.env.CRASH_KILL_POINTS === undefined ? undefined : Number(process.env.CRASH_KILL_POINTS);
const RANDOM_KILLS = process.env.CRASH_RANDOM_KILLS === undefined ? undefined : Number(process.env.CRASH_RANDOM_KILLS);

const tmp = makeTempDir('cda-crash-');
// Some 300,000 files by the end: deleting them takes a while on a busy machine.
afterAll(tmp.cleanup, 600_000);

interface State {
  manifest: string[];
  cleanup: string;
}

/** One group, destination and pair of bundles, driven through `deploy`. */
class DeployWorld {
  readonly root: string;
  readonly dest: string;
  readonly config: string;
  readonly group: string;
  old!: State;
  next!: State;
  bundles!: Record<'v1' | 'v2', string>;
  counts!: Record<'v1' | 'v2', RevisionCounts>;

  constructor(readonly type: 'directory' | 'tgz') {
    const dir = join(tmp.dir, type);
    mkdirSync(dir, { recursive: true });
    this.root = join(dir, 'root');
    this.dest = join(dir, 'dest');
    this.group = `crash-${type}`;
    this.config = join(dir, 'agent.yml');
    writeFileSync(this.config, `:root_dir: ${this.root}\n:log_dir: ${join(dir, 'log')}\n:pid_dir: ${join(dir, 'pid')}\n`);
  }

  /** A revision of nothing but an appspec: a probe's own bundle costs nothing to stage. */
  get probeBundle(): string {
    return join(tmp.dir, this.type, 'probe');
  }

  prepare(): void {
    const dir = join(tmp.dir, this.type);
    mkdirSync(this.probeBundle);
    writeFileSync(join(this.probeBundle, 'appspec.yml'), 'version: 0.0\nos: linux\n');
    // There before any revision: no cleanup file lists it, whichever revision came first.
    mkdirSync(this.dest);
    this.counts = { v1: writeRevision(join(dir, 'v1'), 'v1', this.dest, FILES), v2: writeRevision(join(dir, 'v2'), 'v2', this.dest, FILES) };
    this.bundles = this.type === 'tgz'
      ? { v1: makeTgz(join(dir, 'v1'), join(dir, 'v1.tgz')), v2: makeTgz(join(dir, 'v2'), join(dir, 'v2.tgz')) }
      : { v1: join(dir, 'v1'), v2: join(dir, 'v2') };
  }

  deploy(version: 'v1' | 'v2' | 'probe', env: Record<string, string> = {}, events?: string) {
    const [bundle, type] = version === 'probe' ? [this.probeBundle, 'directory'] : [this.bundles[version], this.type];
    const args = ['deploy', '-c', this.config, '-l', bundle, '-t', type, '-g', this.group, ...(events ? ['-e', events] : [])];
    return execa(process.execPath, [AGENT_BIN, ...args], { reject: false, all: true, env: { CODEDEPLOY_AGENT_TEST_CRASH: '', CRASH_PROBE: '', ...env } });
  }

  /** Returns how long its Install took, in ms. */
  async deployCleanly(version: 'v1' | 'v2'): Promise<number> {
    const result = await this.deploy(version);
    expect(result.exitCode, result.all).toBe(0);
    const took = /^Install: succeeded in ([\d.]+) (ms|s)$/m.exec(result.stdout ?? '');
    return took ? Number(took[1]) * (took[2] === 's' ? 1000 : 1) : 0;
  }

  state(): State {
    return { manifest: manifest(this.dest), cleanup: readFileSync(join(this.instructions, `${this.group}-cleanup`), 'utf8') };
  }

  get instructions(): string {
    return join(this.root, 'deployment-instructions');
  }

  /** install.json names the revision's files in their deployment's folder: the same revision's differs per deployment. */
  installJson(): string {
    return readFileSync(join(this.instructions, `${this.group}-install.json`), 'utf8');
  }

  /** v1 installed, plus the operator's own local.conf that v2 replaces. */
  async backToOld(): Promise<void> {
    await this.deployCleanly('v1');
    writeOutsiderFile(this.dest);
  }

  /**
   * The next start after a kill: a `deploy` whose first event (ApplicationStop, from the last
   * successful revision) records that it ran and fails, so the deployment ends before it changes
   * anything; the destination is then what the start left. Its own revision is an empty one (a local
   * run fetches it before ApplicationStop). Returns what it printed.
   */
  async probe(env: Record<string, string> = {}): Promise<string> {
    const probeFile = join(tmp.dir, `${this.type}-probe`);
    const result = await this.deploy('probe', { CRASH_PROBE: probeFile, ...env }, 'ApplicationStop,DownloadBundle,Install');
    if (env.CODEDEPLOY_AGENT_TEST_CRASH) return result.all ?? '';
    expect(result.exitCode, result.all).toBe(1);
    expect(result.all).toContain('ApplicationStop failed');
    expect(readFileSync(probeFile, 'utf8')).toMatch(/^ApplicationStop v[12]\n$/);
    return result.all ?? '';
  }

  /** Old or new, exactly; nothing of the journal left; install.json as before the kill, if old. Returns which. */
  expectOldOrNew(context: string, installJsonBefore: string): 'old' | 'new' {
    const now = this.state();
    expect(journalsLeft(this.root), context).toEqual([]);
    if (now.manifest.length === this.old.manifest.length && now.manifest.every((line, i) => line === this.old.manifest[i])) {
      expect(now.cleanup, context).toBe(this.old.cleanup);
      expect(this.installJson(), context).toBe(installJsonBefore);
      return 'old';
    }
    const same = now.manifest.length === this.next.manifest.length && now.manifest.every((line, i) => line === this.next.manifest[i]);
    expect(same, `${context}: neither the old tree nor the new one; against the old: ${manifestDifference(now.manifest, this.old.manifest)}\nagainst the new: ${manifestDifference(now.manifest, this.next.manifest)}`).toBe(true);
    expect(now.cleanup, context).toBe(this.next.cleanup);
    expect(this.installJson(), context).not.toBe(installJsonBefore);
    return 'new';
  }
}

/** install-journal files and install-backup folders anywhere under the root. */
function journalsLeft(root: string): string[] {
  const left: string[] = [];
  for (const group of readdirSync(root, { withFileTypes: true })) {
    if (!group.isDirectory()) continue;
    for (const deployment of readdirSync(join(root, group.name), { withFileTypes: true })) {
      if (!deployment.isDirectory()) continue;
      // Claimed (`.recovering.…`) and kept (`.unfinished-…`) ones too.
      for (const name of readdirSync(join(root, group.name, deployment.name))) {
        if (name.startsWith('install-journal') || name.startsWith('install-backup')) left.push(`${group.name}/${deployment.name}/${name}`);
      }
    }
  }
  return left;
}

/**
 * Exact points of the Install of v2 over v1, counted in the changes Install makes, in order: moving v1
 * aside (files, then folders), creating v2's folders, then its files (and moving aside the file OVERWRITE
 * replaces), the folders' permissions (set after the copies), and the commit. By default the first three go to
 * the directory bundle and the rest to the tgz (see the top of the file); with CRASH_KILL_POINTS, each
 * type gets that many: the first change, every phase, random counts, the commit.
 */
function killPoints(counts: Record<'v1' | 'v2', RevisionCounts>, type: 'directory' | 'tgz'): (number | 'commit')[] {
  const removals = counts.v1.files + counts.v1.directories;
  const creates = counts.v2.directories + counts.v2.files + 1;
  const phases = [
    Math.round(removals / 2),
    removals - 2,
    removals + Math.round(counts.v2.directories / 2),
    removals + Math.round(creates / 2),
    removals + creates + Math.round(counts.v2.folderPermissions / 2),
  ];
  if (KILL_POINTS === undefined) return type === 'directory' ? phases.slice(0, 3) : [...phases.slice(3), 'commit'];
  const points = [1, ...phases].slice(0, Math.max(0, KILL_POINTS - 1));
  for (let extra = points.length; extra < KILL_POINTS - 1; extra++) points.push(1 + Math.floor(Math.random() * (removals + creates)));
  return [...points.sort((a, b) => a - b), 'commit'];
}

for (const type of ['directory', 'tgz'] as const) {
  describe(`deploy killed during Install (${type} bundle, over ${FILES.toLocaleString('en-US')} files)`, () => {
    const world = new DeployWorld(type);
    let installMs = 0;

    beforeAll(async () => {
      world.prepare();
      await world.deployCleanly('v1');
      writeOutsiderFile(world.dest);
      world.old = world.state();
      installMs = await world.deployCleanly('v2');
      world.next = world.state();
      await world.backToOld();
      expect(world.state()).toEqual(world.old);
    }, 600_000);

    it('leaves the old tree or the new one after the next start, killed after an exact number of changes', async () => {
      for (const point of killPoints(world.counts, type)) {
        const before = world.installJson();
        const killed = await world.deploy('v2', { CODEDEPLOY_AGENT_TEST_CRASH: `install:${point}` });
        expect(killed.signal, `kill point ${point} was not reached:\n${killed.all}`).toBe('SIGKILL');
        expect(journalsLeft(world.root).length, `kill point ${point}`).toBeGreaterThan(0);
        const said = await world.probe();
        const outcome = world.expectOldOrNew(`killed after change ${point}`, before);
        if (point === 'commit') {
          expect(outcome).toBe('new');
          expect(said).toContain('it had completed; the new revision stays');
          // The finished Install counts as the group's last successful one: ApplicationStop ran v2's script.
          expect(readFileSync(join(tmp.dir, `${type}-probe`), 'utf8')).toBe('ApplicationStop v2\n');
        } else {
          expect(outcome, `killed after change ${point}`).toBe('old');
          expect(said).toMatch(/Rolled back the interrupted Install of deployment d-\S+ \(group crash-\S+\): removed \d+ path\(s\) it had created, put back \d+ from its backup/);
        }
        if (outcome === 'new') await world.backToOld();
      }
    }, 1_800_000);

    const randomKills = RANDOM_KILLS ?? (type === 'directory' ? 2 : 1);
    const recoveryKilled = RANDOM_KILLS !== undefined || type === 'directory';
    it(`leaves the old tree or the new one after the next start, killed at random times${recoveryKilled ? ', and when the recovery itself is killed' : ''}`, async () => {
      for (let kill = 0; kill < randomKills; kill++) {
        const before = world.installJson();
        const running = world.deploy('v2');
        // Once Install has begun (its journal exists), a random moment within how long an Install takes.
        const began = Date.now();
        while (journalsLeft(world.root).length === 0 && Date.now() - began < 120_000 && running.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 20));
        const delay = Math.floor(Math.random() * installMs);
        console.log(`${type}: random kill ${kill + 1} at ${delay} ms into Install (of about ${installMs} ms)`);
        await new Promise((resolve) => setTimeout(resolve, delay));
        running.kill('SIGKILL');
        await running;
        await world.probe();
        if (world.expectOldOrNew(`killed ${delay} ms into Install`, before) === 'new') await world.backToOld();
      }
      if (!recoveryKilled) return;

      // A recovery killed half-way is taken up again by the next start.
      const removals = world.counts.v1.files + world.counts.v1.directories;
      const before = world.installJson();
      const killed = await world.deploy('v2', { CODEDEPLOY_AGENT_TEST_CRASH: `install:${removals + Math.round(world.counts.v2.files / 2)}` });
      expect(killed.signal).toBe('SIGKILL');
      for (const step of [Math.round(world.counts.v2.files / 4), 3]) {
        await world.probe({ CODEDEPLOY_AGENT_TEST_CRASH: `recovery:${step}` });
        expect(journalsLeft(world.root).length, `recovery killed after step ${step}`).toBeGreaterThan(0);
      }
      await world.probe();
      expect(world.expectOldOrNew('recovery killed twice', before)).toBe('old');
    }, 1_800_000);
  });
}

describe(`the daemon killed during Install (over ${FILES.toLocaleString('en-US')} files)`, () => {
  let service: FakeCommandsService;
  let world: AgentWorld;
  const bundles = { v1: '', v2: '' };
  const dest = join(tmp.dir, 'daemon-dest');
  let counts: Record<'v1' | 'v2', RevisionCounts>;

  beforeAll(async () => {
    service = await FakeCommandsService.start({ longPollMs: 300 });
    world = new AgentWorld('cda-crash-daemon-');
    world.useIamUser('arn:aws:iam::123456789012:user/crash-daemon');
    world.writeConfig(service.url);
    bundles.v1 = join(tmp.dir, 'daemon-v1');
    bundles.v2 = join(tmp.dir, 'daemon-v2');
    counts = { v1: writeRevision(bundles.v1, 'v1', dest, FILES), v2: writeRevision(bundles.v2, 'v2', dest, FILES) };
    mkdirSync(dest);
  }, 600_000);
  afterAll(async () => {
    await world?.cleanup();
    await service?.close();
  }, 600_000);

  const spec = (version: 'v1' | 'v2') =>
    makeSpec({ deploymentGroupId: 'crash-daemon', revision: { RevisionType: 'Local Directory', LocalRevision: { Location: bundles[version], BundleType: 'directory' } } });

  /** Returns how long its Install took (from its first log line to its last), in ms. */
  async function deployCleanly(version: 'v1' | 'v2'): Promise<number> {
    const agent = world.start();
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: spec(version), commands: ['DownloadBundle', 'Install'] });
    await agent.waitForLog('Install: ', 300_000);
    const began = Date.now();
    await agent.waitForLog('Install: removed ', 300_000);
    const took = Date.now() - began;
    await waitForDeployment(service, deployment, agent, 300_000);
    expect(deployment.status, agent.log).toBe('Succeeded');
    expect((await agent.stop()).exitCode).toBe(0);
    return took;
  }

  /** The command worker the daemon started for the deployment (it says so in its log). */
  async function workerOf(agent: RunningAgent): Promise<number> {
    await agent.waitForLog(/Started the command worker \(pid \d+\)/, 300_000);
    return Number([...agent.log.matchAll(/Started the command worker \(pid (\d+)\)/g)].at(-1)![1]);
  }

  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((line, i) => line === b[i]);

  it('rolls the interrupted Install back before it polls again, and fails its command with code 7', async () => {
    await deployCleanly('v1');
    writeOutsiderFile(dest);
    const old = manifest(dest);
    const backToOld = async () => {
      await deployCleanly('v1');
      writeOutsiderFile(dest);
      expect(same(manifest(dest), old)).toBe(true);
    };
    const removals = counts.v1.files + counts.v1.directories;
    // The deploy tests kill at random; the daemon only with CRASH_RANDOM_KILLS, which needs the new tree to compare with.
    const crashes = [`install:${removals + Math.round(counts.v2.files / 3)}`, ...Array<string>(RANDOM_KILLS ?? 0).fill('random')];
    let installMs = 0;
    let next: string[] = [];
    if (RANDOM_KILLS) {
      installMs = await deployCleanly('v2');
      next = manifest(dest);
      await backToOld();
    }
    for (const crash of crashes) {
      // The Install runs in the daemon's command worker: the crash switch kills the worker, and the test the
      // daemon with it (the whole agent killed), before the daemon can report the worker's death.
      const agent = world.start({ env: crash === 'random' ? {} : { CODEDEPLOY_AGENT_TEST_CRASH: crash } });
      const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: spec('v2'), commands: ['DownloadBundle', 'Install'] });
      if (crash !== 'random') {
        const worker = await workerOf(agent);
        while (isAlive(worker)) await new Promise((resolve) => setTimeout(resolve, 1));
        agent.signal('SIGKILL');
      } else {
        // Once Install has begun changing the host (its journal exists), a random moment within how long an Install takes.
        await agent.waitForLog('Install: ', 300_000);
        const began = Date.now();
        while (journalsLeft(world.root).length === 0 && Date.now() - began < 120_000) await new Promise((resolve) => setTimeout(resolve, 20));
        const delay = Math.floor(Math.random() * installMs);
        console.log(`daemon: random kill at ${delay} ms into Install (of about ${installMs} ms)`);
        await new Promise((resolve) => setTimeout(resolve, delay));
        const worker = await workerOf(agent);
        process.kill(worker, 'SIGKILL');
        agent.signal('SIGKILL');
      }
      const exit = await agent.waitForExit(300_000);
      expect(exit.signal, agent.log).toBe('SIGKILL');

      const restarted = world.start();
      await waitForDeployment(service, deployment, restarted, 300_000);
      expect(journalsLeft(world.root)).toEqual([]);
      const install = deployment.commands[1];
      const now = manifest(dest);
      if (install.completions[0]?.commandStatus === 'Succeeded') {
        // The random kill came after Install had finished and said so: the new revision, whole.
        expect(same(now, next), manifestDifference(now, next)).toBe(true);
        expect((await restarted.stop()).exitCode).toBe(0);
        await backToOld();
        continue;
      }
      expect(install.completions.map((c) => [c.commandStatus, payloadOf(c).error_code])).toEqual([['Failed', 7]]);
      const log = restarted.log;
      if (same(now, next)) {
        // Killed after the commit: finished forward.
        expect(log).toMatch(/had completed when the agent stopped; finished it/);
        expect((await restarted.stop()).exitCode).toBe(0);
        await backToOld();
        continue;
      }
      expect(same(now, old), manifestDifference(now, old)).toBe(true);
      const rolledBack = log.search(/Rolled back the Install of deployment \S+ \(group crash-daemon\): removed \d+ path\(s\) it had created, put back \d+ path\(s\) from the backup/);
      expect(rolledBack, log).toBeGreaterThanOrEqual(0);
      // Before the agent asked the service for anything.
      expect(rolledBack).toBeLessThan(log.indexOf('Host identifier'));
      expect((await restarted.stop()).exitCode).toBe(0);
    }
  }, 1_800_000);
});
