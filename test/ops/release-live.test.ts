import { chmodSync, existsSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusFilePath } from '../../src/agent/status-file.js';
import { parseVersionFile } from '../../src/service/agent-version.js';
import { AGENT_VERSION } from '../../src/version.js';
import { makeSpec, TEST_CREDENTIALS, type FakeDeployment } from '../doubles/commands-service.js';
import { service, useDaemonWorld } from '../helpers/daemon-world.js';
import { makeTempDir } from '../helpers/tmp.js';
import {
  endApplication, fastKeys, HOST_IDENTIFIER, isAlive, localRevision, makeGatedBundle, onPremisesConfigText, runStatus,
  safeSnapshot, setConfigKeys, startAgent, SYSTEMD_PATH, waitForInFlight, type GatedBundle, type RunningAgent,
} from './live-agent.js';
import { buildTarball, makeFakeSystemctl, makeUpgradeRelease, runInstall, unpackRelease } from './release.js';

/**
 * Issue 6's "done when": from a release tarball, install.sh installs a working agent that `status`
 * describes correctly while it runs a deployment. Then the unit's story against that agent: ExecStart as
 * systemd runs it, ExecReload (SIGHUP: the log reopened, the configuration re-read) and a stop with
 * KillMode=process (SIGTERM to the agent only) in the middle of a hook.
 *
 * No real systemd and nothing outside a temporary folder: install.sh runs with --root and a recording
 * systemctl. The prefix is a symlink to where --root puts it, so the launcher and /usr/bin links install.sh
 * writes (which name the prefix as seen on the target host) work here as they would on the host.
 */

const isRoot = process.getuid?.() === 0;
let work: { dir: string; cleanup: () => void };
let release: string;
let agent: RunningAgent | undefined;
const bundles: GatedBundle[] = [];

let root: string;
let prefix: string;
let conf: string;
let pidDir: string;
let logFile: string;
let installedBin: string;
let unitText: string;
const installArgs = () => ['--root', root, '--prefix', prefix, '--systemd', 'yes'];
let systemctl: ReturnType<typeof makeFakeSystemctl>;

/** `status` from the installed program, as root or as nobody. */
const status = (args: string[] = [], user: 'root' | 'nobody' = 'root') => runStatus([installedBin, 'status', '-c', conf, ...args], { user });

/** A `Key=value` line of the installed unit's [Service] section. */
function unitSetting(key: string): string {
  const match = new RegExp(`^${key}=(.*)$`, 'm').exec(unitText);
  if (!match) throw new Error(`the unit has no ${key}=`);
  return match[1];
}

/** The EnvironmentFile= install.sh wrote (`KEY=value` lines; comments skipped), as systemd reads it. */
function environmentFile(): Record<string, string> {
  const path = join(root, unitSetting('EnvironmentFile').replace(/^-/, ''));
  const env: Record<string, string> = {};
  if (!existsSync(path)) return env;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]] = match[2];
  }
  return env;
}

function newDeployment(name: string): { bundle: GatedBundle; deployment: FakeDeployment } {
  const bundle = makeGatedBundle(join(work.dir, name), join(work.dir, 'app-dest'));
  bundles.push(bundle);
  const spec = makeSpec({ applicationName: 'shop', deploymentGroupName: 'release-fleet', revision: localRevision(bundle.dir) });
  return { bundle, deployment: service.addDeployment({ hostIdentifier: HOST_IDENTIFIER, spec }) };
}

async function waitForDeployment(deployment: FakeDeployment): Promise<void> {
  await service.waitForDeployment(deployment, 30_000).catch((error: Error) => {
    throw new Error(`${error.message}\nagent output:\n${agent?.output()}`);
  });
}

useDaemonWorld('release-live');
beforeAll(async () => {
  work = makeTempDir('cda-release-live-');
  chmodSync(work.dir, 0o755); // `status` as nobody
  release = unpackRelease(buildTarball(join(work.dir, 'out')), join(work.dir, 'release'));
  root = join(work.dir, 'root');
  prefix = join(work.dir, 'prefix');
  symlinkSync(join(root, prefix), prefix);
  systemctl = makeFakeSystemctl(work.dir);
  const onprem = join(work.dir, 'onprem.yml');
  writeFileSync(onprem, onPremisesConfigText(), { mode: 0o600 });

  const result = await runInstall(release, [...installArgs(), '--region', 'us-east-1', '--on-premises-config', onprem], { PATH: `${systemctl.binDir}:${process.env.PATH}` });
  expect(result.exitCode, String(result.all)).toBe(0);
  expect(systemctl.calls()).toEqual(['daemon-reload', `--root=${root} enable codedeploy-agent`, 'start codedeploy-agent']);

  conf = join(root, 'etc/codedeploy-agent/conf/codedeployagent.yml');
  unitText = readFileSync(join(root, 'etc/systemd/system/codedeploy-agent.service'), 'utf8');
  installedBin = join(root, 'usr/bin/codedeploy-agent');
  // The operator's edits: the log dir and on-premises file under --root, and the double as the endpoint.
  const logDir = join(root, 'var/log/aws/codedeploy-agent');
  setConfigKeys(conf, {
    log_dir: `${logDir}/`,
    on_premises_config_file: join(root, 'etc/codedeploy-agent/conf/codedeploy.onpremises.yml'),
    ...fastKeys(service),
  });
  pidDir = join(prefix, 'state/.pid'); // what install.sh's default configuration names
  logFile = join(logDir, 'codedeploy-agent.log');
});

afterAll(async () => {
  await agent?.kill();
  for (const bundle of bundles) endApplication(bundle.appPidFile);
  work?.cleanup();
});

describe('the installed agent', () => {
  it('runs a deployment from the release, and status describes it mid-hook and afterwards', async () => {
    // ExecStart as systemd runs it: the unit's command, the environment file, no login environment, cwd /.
    const [execStart, ...execArgs] = unitSetting('ExecStart').split(/\s+/);
    expect(execStart).toBe('/usr/bin/codedeploy-agent');
    const { bundle, deployment } = newDeployment('bundle-1');
    agent = startAgent(join(root, execStart), [...execArgs, '-c', conf], {
      cwd: '/',
      extendEnv: false,
      env: { PATH: SYSTEMD_PATH, ...environmentFile(), AWS_EC2_METADATA_DISABLED: 'true' },
    });
    expect(environmentFile()).toMatchObject({ AWS_REGION: 'us-east-1' });

    await waitForInFlight(service, pidDir, 'AfterInstall', agent);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    let result = await status(['--json']);
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      status: 'running', pid: agent.pid, version: AGENT_VERSION, cliVersion: AGENT_VERSION, state: 'polling',
      hostIdentifier: HOST_IDENTIFIER, region: 'us-east-1', endpoint: expect.stringContaining(service.url),
      pidFile: join(pidDir, 'codedeploy-agent.pid'),
      inFlight: [{ deploymentId: deployment.deploymentId, deploymentGroupName: 'release-fleet', applicationName: 'shop', event: 'AfterInstall', script: 'scripts/wait-for-gate.sh' }],
    });
    expect(report.uptimeSeconds).toBeGreaterThanOrEqual(1);
    expect(report.inFlight[0].elapsedSeconds).toBeGreaterThanOrEqual(1);
    expect(report.lastSuccessfulPollAt).toEqual(expect.any(String));
    expect(report.lastError).toBeUndefined();

    result = await status();
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^The AWS CodeDeploy agent is running as PID ${agent.pid}\\n`));
    expect(result.stdout).toMatch(/\n {2}last error\s+none\n/);
    expect(result.stdout).toMatch(new RegExp(`\\n  ${deployment.deploymentId}\\s+group release-fleet\\s+event AfterInstall\\s+script scripts/wait-for-gate\\.sh\\s+running for \\d+s\\n`));
    if (isRoot) {
      const asNobody = await status(['--json'], 'nobody');
      expect(asNobody.stderr).toBe('');
      expect(asNobody.exitCode).toBe(0);
      expect(JSON.parse(asNobody.stdout)).toMatchObject({ status: 'running', pid: agent.pid, inFlight: [{ event: 'AfterInstall' }] });
    }
    expect(readFileSync(statusFilePath(pidDir), 'utf8')).not.toContain(TEST_CREDENTIALS.secretAccessKey);

    // The agent sends the installed .version as x-amz-codedeploy-agent-version on every call.
    const installedVersion = parseVersionFile(readFileSync(join(prefix, '.version'), 'utf8'));
    expect(installedVersion).toBe(AGENT_VERSION);
    const sent = new Set(service.requests.map((r) => r.headers['x-amz-codedeploy-agent-version']));
    expect([...sent]).toEqual([installedVersion]);

    // An upgrade now waits for the in-flight deployment instead of cutting it; here it gives up and changes nothing.
    const next = makeUpgradeRelease(release, join(work.dir, 'release-9.9.9'), '9.9.9');
    writeFileSync(systemctl.log, '');
    const upgrade = await runInstall(next, [...installArgs(), '--wait-timeout', '1'], { PATH: `${systemctl.binDir}:${process.env.PATH}`, FAKE_SYSTEMD_ACTIVE: 'yes' });
    expect(upgrade.exitCode, String(upgrade.all)).toBe(75);
    expect(upgrade.stderr).toContain(deployment.deploymentId);
    expect(upgrade.stderr).toContain('Nothing was changed');
    expect(readFileSync(join(prefix, '.version'), 'utf8')).toBe(`agent_version: ${AGENT_VERSION}\n`);
    expect(systemctl.calls()).not.toContain('restart codedeploy-agent');

    // After the deployment: its result, nothing in flight.
    bundle.open();
    await waitForDeployment(deployment);
    expect(deployment.status).toBe('Succeeded');
    const lastEvent = deployment.commands.at(-1)!.commandName;
    await service.waitFor(() => safeSnapshot(pidDir)?.recent.some((r) => r.event === lastEvent), 5000, 'the last result in the status file');
    result = await status();
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('In-flight commands: none');
    expect(result.stdout).toMatch(new RegExp(`\\n\\s+\\S+\\s+${deployment.deploymentId}\\s+group \\S+\\s+${lastEvent}\\s+Succeeded\\n?$`));
    expect(readFileSync(join(work.dir, 'app-dest', 'index.html'), 'utf8')).toBe('hello\n');
    expect(readFileSync(logFile, 'utf8')).not.toContain(TEST_CREDENTIALS.secretAccessKey);
  });

  it('ExecReload (SIGHUP) reopens a log file moved away and re-reads the configuration', async () => {
    expect(agent).toBeDefined();
    const moved = `${logFile}.1`;
    renameSync(logFile, moved);
    setConfigKeys(conf, { verbose: 'true', not_a_key_of_ours: '1' });
    const [command, ...args] = unitSetting('ExecReload').replace('$MAINPID', String(agent!.pid)).split(/\s+/);
    expect(command).toBe('/bin/kill');
    await execa(command, args);

    const reloaded = await service.waitFor(() => {
      if (!existsSync(logFile)) return undefined;
      const text = readFileSync(logFile, 'utf8');
      // verbose now: the poll loop's debug lines follow the reload line.
      return /SIGHUP: log files reopened and configuration re-read[\s\S]*\n\S+ DEBUG .*Calling PollHostCommand/.test(text) ? text : undefined;
    }, 10_000, 'the reopened log with debug lines').catch((error: Error) => {
      throw new Error(`${error.message}\nagent output:\n${agent!.output()}`);
    });
    expect(reloaded).toContain(`${conf}: unknown configuration key :not_a_key_of_ours is ignored`);
    expect(readFileSync(moved, 'utf8')).not.toContain('SIGHUP');
    expect(readFileSync(moved, 'utf8')).toContain(`codedeploy-agent ${AGENT_VERSION} starting`);
    const result = await status(['--json']);
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 'running', pid: agent!.pid });
    setConfigKeys(conf, { verbose: 'false' });
  });

  it('stops on SIGTERM to its own process only (KillMode=process): the running hook finishes, the application lives on', async () => {
    expect(agent).toBeDefined();
    expect(unitSetting('KillMode')).toBe('process');
    expect(unitSetting('KillSignal')).toBe('SIGTERM');
    const application = Number(readFileSync(bundles[0].appPidFile, 'utf8'));
    expect(isAlive(application)).toBe(true);

    const { bundle, deployment } = newDeployment('bundle-2');
    await waitForInFlight(service, pidDir, 'AfterInstall', agent!);
    process.kill(agent!.pid, 'SIGTERM');
    await service.waitFor(() => safeSnapshot(pidDir)?.state === 'stopping', 5000, 'state stopping');
    await new Promise((resolve) => setTimeout(resolve, 500));
    let result = await status(['--json']);
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      status: 'running', state: 'stopping', inFlight: [{ deploymentId: deployment.deploymentId, event: 'AfterInstall' }],
    });
    expect(isAlive(agent!.pid)).toBe(true); // waiting for the hook, up to kill_agent_max_wait_time_seconds

    bundle.open();
    expect(await agent!.exited()).toMatchObject({ exitCode: 0 });
    const afterInstall = deployment.commands.find((c) => c.commandName === 'AfterInstall')!;
    expect(afterInstall.completions.map((c) => c.commandStatus)).toEqual(['Succeeded']);
    expect(deployment.commands.find((c) => c.commandName === 'ApplicationStart')!.status).toBe('Pending');
    expect(isAlive(application)).toBe(true);

    result = await status();
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toContain('No AWS CodeDeploy agent running');
    result = await status(['--json'], isRoot ? 'nobody' : 'root');
    expect(result.exitCode).toBe(3);
    expect(JSON.parse(result.stdout)).toMatchObject({
      status: 'not-running',
      previousRun: { pid: agent!.pid, recent: expect.arrayContaining([expect.objectContaining({ deploymentId: deployment.deploymentId, event: 'AfterInstall', status: 'Succeeded' })]) },
    });
    expect(readFileSync(logFile, 'utf8')).toContain('SIGTERM received');
  });
});
