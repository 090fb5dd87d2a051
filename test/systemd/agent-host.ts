import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { ResultPromise } from 'execa';
import { afterAll, beforeAll, expect } from 'vitest';
import { AGENT_VERSION } from '../../src/version.js';
import { FakeCommandsService, makeSpec, type FakeDeployment } from '../doubles/commands-service.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { useSystemdContainer, type ExecResult, type SystemdContainer } from '../helpers/systemd-container.js';
import { HOST_IDENTIFIER, fastKeys, localRevision, makeGatedBundle, onPremisesConfigText, withConfigKeys, type GatedBundle } from '../ops/live-agent.js';
import { buildRelease, makeUpgradeRelease, unpackRelease } from '../ops/release.js';

/**
 * An operator's host for the systemd scenarios: a booted container (test/helpers/systemd-container.ts) where
 * the release is installed as an operator does it (`tar -xzf`, `./install.sh`), with the agent's configuration
 * put in place beforehand (as configuration management does) so that the service, from its first start, talks
 * to the commands-service double on the host's loopback. Bundles and the files hooks write live in the
 * container's shared folder, which the test sees at the same path.
 */

export const UNIT = 'codedeploy-agent';
export const CONF = '/etc/codedeploy-agent/conf/codedeployagent.yml';
export const ONPREM = '/etc/codedeploy-agent/conf/codedeploy.onpremises.yml';
export const ENV_FILE = '/etc/default/codedeploy-agent';
export const PREFIX = '/opt/codedeploy-agent';
export const LOG_DIR = '/var/log/aws/codedeploy-agent';
export const AGENT_LOG = `${LOG_DIR}/codedeploy-agent.log`;
export const DEPLOYMENT_ROOT = `${PREFIX}/deployment-root`;
export const DROPIN_DIR = `/etc/systemd/system/${UNIT}.service.d`;

/** The message of the code-7 completion a restarted agent sends for a lifecycle event it was cut off in. */
export const RESTART_MESSAGE = 'Failed: Failing in-progress lifecycle event after an agent restart.';

/**
 * Unit directives to try on top of the shipped unit, as a drop-in written before the install (how the
 * hardening in systemd/codedeploy-agent.service was measured: docs/decisions.md, "Testing under a real
 * systemd"). Example: CDA_TRY_UNIT_DIRECTIVES='ProtectClock=yes;RestrictRealtime=yes'.
 */
export const TRIED_DIRECTIVES = (process.env.CDA_TRY_UNIT_DIRECTIVES ?? '').split(';').map((d) => d.trim()).filter(Boolean);

function releaseFile(files: string[], format: 'tar' | 'deb'): string {
  const file = files.find((path) => path.endsWith(format === 'tar' ? '.tar.gz' : '.deb'));
  if (!file) throw new Error(`scripts/package.mjs made no ${format} file: ${files.join(', ')}`);
  return file;
}

/**
 * A release file of this machine's architecture (scripts/package.mjs: `tar` or `deb`), built once per test run
 * and shared by the test files: the first to ask builds it while the others wait (a build takes from 20 s to
 * a minute and a half on a busy machine).
 */
export async function sharedRelease(format: 'tar' | 'deb'): Promise<string> {
  const runDir = process.env.CDA_TEST_RUN_DIR;
  if (!runDir) return releaseFile(buildRelease(mkdtempSync(join(tmpdir(), 'cda-systemd-release-')), [format]), format);
  const dir = join(runDir, `systemd-release-${format}`);
  const built = join(dir, 'built');
  const failed = join(dir, 'failed');
  try {
    mkdirSync(dir); // whoever makes the folder builds
  } catch {
    const deadline = Date.now() + 600_000;
    while (!existsSync(built)) {
      if (existsSync(failed)) throw new Error(`building the ${format} release failed in another test file: ${readFileSync(failed, 'utf8')}`);
      if (Date.now() > deadline) throw new Error(`the ${format} release was not built within 10 minutes`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    return readFileSync(built, 'utf8');
  }
  try {
    const file = releaseFile(buildRelease(dir, [format]), format);
    writeFileSync(built, file);
    return file;
  } catch (error) {
    writeFileSync(failed, (error as Error).message);
    throw error;
  }
}

/**
 * The .deb with other versions (upgrades): the same files, the control file's Version and the .version the
 * agent reports changed, built uncompressed into `outDir` (quick; dpkg does not mind). Returns version → file.
 */
export function newerDebs(deb: string, versions: string[], outDir: string): Record<string, string> {
  const tmp = mkdtempSync(join(tmpdir(), 'cda-systemd-deb-'));
  try {
    const tree = join(tmp, 'tree');
    execFileSync('dpkg-deb', ['-R', deb, tree]);
    const control = join(tree, 'DEBIAN', 'control');
    const original = readFileSync(control, 'utf8');
    const files: Record<string, string> = {};
    for (const version of versions) {
      writeFileSync(control, original.replace(/^Version: (\d+:)?[^-\n]+(-\w+)$/m, `Version: $1${version}$2`));
      writeFileSync(join(tree, PREFIX.slice(1), '.version'), `agent_version: ${version}\n`);
      files[version] = join(outDir, basename(deb).replace(/_[^_]+_/, `_${version}-1_`));
      execFileSync('dpkg-deb', ['--root-owner-group', '-Znone', '--build', tree, files[version]], { stdio: ['ignore', 'ignore', 'inherit'] });
    }
    return files;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export class AgentHost {
  private bundleCounter = 0;

  constructor(readonly container: SystemdContainer, readonly service: FakeCommandsService) {}

  /** The folder both the test and the container see. */
  get shared(): string {
    return this.container.shared;
  }

  /**
   * What configuration management puts in place before the package: codedeployagent.yml (the shipped
   * default with `keys`, pointing at the double), the on-premises identity (installed by install.sh), and the
   * service's environment file (no instance metadata; moto's checksum settings).
   */
  async prepare(keys: Record<string, string> = {}): Promise<void> {
    const defaults = readFileSync(join(REPO_ROOT, 'conf', 'codedeployagent.yml'), 'utf8');
    await this.container.writeFile(CONF, withConfigKeys(defaults, { ...fastKeys(this.service), ...keys }));
    await this.container.writeFile(join(this.shared, 'onprem.yml'), onPremisesConfigText(), 0o600);
    await this.container.writeFile(ENV_FILE, [
      'AWS_REGION=us-east-1',
      'AWS_EC2_METADATA_DISABLED=true',
      'AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED',
      'AWS_RESPONSE_CHECKSUM_VALIDATION=WHEN_REQUIRED',
      '',
    ].join('\n'));
    if (TRIED_DIRECTIVES.length > 0) {
      await this.container.writeFile(join(DROPIN_DIR, '50-tried.conf'), `[Service]\n${TRIED_DIRECTIVES.join('\n')}\n`);
    }
  }

  /** The agent version sent with the latest request to the double (read from the installed .version at start). */
  versionSent(): unknown {
    return this.service.requests.at(-1)?.headers['x-amz-codedeploy-agent-version'];
  }

  /** Unpacks a release tarball into the shared folder; returns the release folder (the same path inside). */
  unpack(tarball: string): string {
    return unpackRelease(tarball, join(this.shared, 'releases'));
  }

  /** A copy of `release` that says it is `version` (an upgrade), in the shared folder. */
  upgradeRelease(release: string, version: string): string {
    return makeUpgradeRelease(release, join(this.shared, 'upgrades', `codedeploy-agent-${version}`), version);
  }

  /** `./install.sh ARGS` from the release folder, as root with `node` on PATH; never throws. */
  install(release: string, args: string[] = []): Promise<ExecResult> {
    return this.container.exec(['./install.sh', '--on-premises-config', join(this.shared, 'onprem.yml'), ...args], {
      cwd: release,
      env: this.installEnv(),
      timeoutMs: 120_000,
    });
  }

  /** The same, for an install the test watches while it waits (an upgrade during a deployment). */
  startInstall(release: string, args: string[] = []) {
    return this.container.spawnInside(['./install.sh', ...args], { cwd: release, env: this.installEnv(), timeoutMs: 120_000 });
  }

  /** `dpkg -i PACKAGE`, for an install the test watches while it waits. */
  startDpkgInstall(deb: string) {
    return this.container.spawnInside(['dpkg', '-i', deb], { env: this.installEnv(), timeoutMs: 180_000 });
  }

  /** install.sh and the packages' scripts check for an in-flight deployment every second, not every five. */
  private installEnv(): Record<string, string> {
    return { CODEDEPLOY_INSTALL_POLL_SECONDS: '1', DEBIAN_FRONTEND: 'noninteractive' };
  }

  /** `dpkg ARGS` inside (never throws). */
  dpkg(...args: string[]): Promise<ExecResult> {
    return this.container.exec(['dpkg', ...args], { env: this.installEnv(), timeoutMs: 180_000 });
  }

  /** `codedeploy-agent status --json` inside, parsed (with its exit code). */
  async status(): Promise<{ exitCode: number; report: Record<string, unknown> }> {
    const result = await this.container.exec(['codedeploy-agent', 'status', '--json']);
    let report: Record<string, unknown> = {};
    try {
      report = JSON.parse(result.stdout) as Record<string, unknown>;
    } catch {
      report = { unparsed: result.stdout + result.stderr };
    }
    return { exitCode: result.exitCode, report };
  }

  /** The service's main pid as systemd knows it (0 when not running). */
  async mainPid(): Promise<number> {
    return Number(await this.container.property(UNIT, 'MainPID'));
  }

  async activeState(): Promise<string> {
    return (await this.container.systemctl('is-active', UNIT)).stdout.trim();
  }

  /** Until the service is active with a main pid other than `not`, and `status` says it polls. */
  async waitForPolling(timeoutMs = 30_000, not = 0): Promise<number> {
    return this.container.waitFor(async () => {
      const pid = await this.mainPid();
      if (pid === 0 || pid === not) return undefined;
      const { report } = await this.status();
      return report.status === 'running' && report.state === 'polling' && report.pid === pid ? pid : undefined;
    }, timeoutMs, 'the agent to run and poll', () => this.diagnostics());
  }

  /** Until `status` shows `event` running a script (the hook has started). */
  async waitForHook(event: string, timeoutMs = 30_000): Promise<void> {
    await this.container.waitFor(async () => {
      const inFlight = (await this.status()).report.inFlight as { event: string; script?: string }[] | undefined;
      return inFlight?.some((command) => command.event === event && command.script);
    }, timeoutMs, `${event} to run its hook`, () => this.diagnostics());
  }

  async waitForDeployment(deployment: FakeDeployment, timeoutMs = 30_000): Promise<void> {
    await this.service.waitForDeployment(deployment, timeoutMs).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await this.diagnostics()}`);
    });
  }

  /** The agent's lines in the journal (`journalctl -u codedeploy-agent -o cat`). */
  journal(...args: string[]): Promise<string> {
    return this.container.journal('-u', UNIT, '-o', 'cat', ...args);
  }

  /** What to print when something times out: the unit's state and the end of its journal. */
  async diagnostics(): Promise<string> {
    const status = await this.container.systemctl('status', UNIT);
    const journal = await this.container.journal('-u', UNIT, '-n', '60', '-o', 'short-precise');
    return `systemctl status ${UNIT}:\n${status.stdout}${status.stderr}\njournal:\n${journal}`;
  }

  /**
   * A deployment of a bundle in the shared folder whose AfterInstall hook waits for its gate (`open()`), whose
   * ApplicationStart leaves an application (`sleep`) running in the background, and whose files go to
   * /srv/<name> inside the container.
   */
  newGatedDeployment(options: { commands?: readonly string[] } = {}): { bundle: GatedBundle; deployment: FakeDeployment } {
    this.bundleCounter += 1;
    const name = `bundle-${this.bundleCounter}`;
    const bundle = makeGatedBundle(join(this.shared, name), `/srv/${name}`);
    const spec = makeSpec({ applicationName: 'shop', deploymentGroupName: 'systemd-fleet', revision: localRevision(bundle.dir) });
    return { bundle, deployment: this.service.addDeployment({ hostIdentifier: HOST_IDENTIFIER, spec, commands: options.commands }) };
  }

  /**
   * An upgrade (`start`: install.sh or dpkg) begun while a lifecycle event runs: it must say it waits for the
   * deployment, naming it, within `waitMs`, and leave the running agent alone (same main pid, active, the
   * installed .version unchanged) while the hook runs; then the event is let finish and the upgrade must end
   * well. Returns its result, the deployment and the agent's pid before.
   */
  async upgradeDuringEvent(start: () => ResultPromise, waitMs: number): Promise<{ stdout: string; deployment: FakeDeployment; before: number }> {
    const { bundle, deployment } = this.newGatedDeployment();
    await this.waitForHook('AfterInstall');
    const before = await this.mainPid();

    const upgrade = start();
    let output = '';
    upgrade.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    await this.container.waitFor(async () => output.includes('Waiting for the in-flight deployment to finish'), waitMs, 'the upgrade to wait', async () => output);
    expect(output).toContain(deployment.deploymentId);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // Nothing changed while the hook runs.
    expect(await this.mainPid()).toBe(before);
    expect(await this.activeState()).toBe('active');
    expect(await this.container.readFile(`${PREFIX}/.version`)).toBe(`agent_version: ${AGENT_VERSION}\n`);

    bundle.open();
    const result = await upgrade;
    expect(result.exitCode, `${String(result.stdout)}${String(result.stderr)}`).toBe(0);
    return { stdout: String(result.stdout), deployment, before };
  }

  /** The pid (inside the container) of the application a gated bundle's ApplicationStart left running. */
  applicationPid(bundle: GatedBundle): number {
    expect(existsSync(bundle.appPidFile), `${bundle.appPidFile}: ApplicationStart did not run`).toBe(true);
    return Number(readFileSync(bundle.appPidFile, 'utf8').trim());
  }

  /** Is `pid` (in the container's pid namespace) a live process, not a zombie? */
  async alive(pid: number): Promise<boolean> {
    const result = await this.container.exec(['sh', '-c', 'state=$(ps -o stat= -p "$1") && [ "${state#Z}" = "$state" ]', 'sh', String(pid)]);
    return result.exitCode === 0;
  }

  /** Processes inside whose command line mentions the agent (`ps -eo pid,args`), for "nothing left running". */
  async agentProcesses(): Promise<string[]> {
    const result = await this.container.exec(['ps', '-eo', 'pid=,args=']);
    return result.stdout.split('\n').filter((line) => /codedeploy-agent|codedeploy-local/.test(line) && !/\bps -eo\b/.test(line));
  }
}

export let service: FakeCommandsService;
export let host: AgentHost;

/**
 * The set-up every systemd test file shares: a booted container, the commands-service double and an
 * AgentHost prepared in it (`keys` over the fast test settings; a function when they are known only in an
 * earlier `beforeAll`, such as moto's endpoint). The file's own `beforeAll` (the install) runs after this
 * one; the double is closed and the container halted after the file's last test. Call it inside the
 * file's `describe`; `service` and `host` are live bindings, the returned box holds the container.
 */
export function useAgentHost(keys: Record<string, string> | (() => Record<string, string>) = {}): { readonly container: SystemdContainer } {
  const box = useSystemdContainer();
  beforeAll(async () => {
    service = await FakeCommandsService.start({ longPollMs: 300 });
    host = new AgentHost(box.container, service);
    await host.prepare(typeof keys === 'function' ? keys() : keys);
  }, 60_000);
  afterAll(async () => {
    await service?.close();
  });
  return box;
}
