/**
 * One deployment per group across processes (src/deployment/group-lock.ts): two `deploy`s of one group,
 * `deploy` against the daemon, a holder killed with SIGKILL, two groups side by side, a hook's background
 * child, and a lock file swapped for a symlink.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { makeSpec } from '../doubles/commands-service.js';
import { localRevision, payloadOf, waitForDeployment } from '../agent/harness.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { newWorld, service, useDaemonWorld } from '../helpers/daemon-world.js';
import { DeploymentGroupBusyError, describeThisProcess, lockDeploymentGroup } from '../../src/deployment/group-lock.js';
import { groupLockFile } from '../../src/deployment/layout.js';
import { AGENT_BIN, runCli } from '../helpers/cli.js';
import { hostileUserMissing, useHostileUser } from '../helpers/hostile-user.js';
import { makeTempDir } from '../helpers/tmp.js';

const tmp = makeTempDir('cda-group-lock-');
afterAll(tmp.cleanup);

const root = join(tmp.dir, 'root');
const configFile = join(tmp.dir, 'agent.yml');
writeAgentConfig(configFile, { root_dir: root, log_dir: join(tmp.dir, 'log'), pid_dir: join(tmp.dir, 'pid') });

/** A bundle whose BeforeInstall says it started (touches `started`) and waits until `release` exists. */
function waitingBundle(name: string): { dir: string; started: string; release: string } {
  const dir = join(tmp.dir, name);
  const started = join(tmp.dir, `${name}.started`);
  const release = join(tmp.dir, `${name}.release`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'wait.sh'), `#!/bin/sh\ntouch '${started}'\nfor i in $(seq 1 600); do [ -e '${release}' ] && exit 0; sleep 0.1; done\nexit 1\n`);
  chmodSync(join(dir, 'wait.sh'), 0o755);
  writeFileSync(join(dir, 'appspec.yml'), 'version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: wait.sh\n      timeout: 90\n');
  return { dir, started, release };
}

function startDeploy(bundle: string, group: string) {
  return execa(process.execPath, [AGENT_BIN, 'deploy', '-c', configFile, '-l', bundle, '-g', group], { reject: false, all: true });
}

async function waitFor(path: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the deployment group lock', () => {
  useDaemonWorld('group-lock-daemon');
  it('refuses a second deploy of a busy group at once, naming the holder, and lets it in once the first is done', async () => {
    const bundle = waitingBundle('two-deploys');
    const first = startDeploy(bundle.dir, 'web');
    await waitFor(bundle.started);
    const started = Date.now();
    const second = await runCli(['deploy', '-c', configFile, '-l', bundle.dir, '-g', 'web']);
    const tookMs = Date.now() - started;
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`deployment group web is busy: codedeploy-agent deploy .*-g web.* \\(pid ${first.pid}\\) has held it since \\d{4}-\\d\\d-\\d\\dT`));
    // Refused, not queued: well under the time a start of the CLI takes on a loaded machine.
    expect(tookMs).toBeLessThan(15_000);
    writeFileSync(bundle.release, '');
    const done = await first;
    expect(done.exitCode, done.all).toBe(0);
    const third = await runCli(['deploy', '-c', configFile, '-l', bundle.dir, '-g', 'web']);
    expect(third.exitCode, third.all).toBe(0);
  });

  it('is free again at once when its holder is killed with SIGKILL', async () => {
    const bundle = waitingBundle('killed');
    const first = startDeploy(bundle.dir, 'killed-group');
    await waitFor(bundle.started);
    const busy = await runCli(['deploy', '-c', configFile, '-l', bundle.dir, '-g', 'killed-group']);
    expect(busy.stderr).toContain('deployment group killed-group is busy');
    // The whole process group: the agent and the hook it runs (the hook is in a session of its own).
    process.kill(first.pid!, 'SIGKILL');
    await first;
    writeFileSync(bundle.release, '');
    const next = await runCli(['deploy', '-c', configFile, '-l', bundle.dir, '-g', 'killed-group']);
    expect(next.exitCode, next.all).toBe(0);
  });

  it('lets two different groups deploy side by side', async () => {
    const a = waitingBundle('group-a');
    const b = waitingBundle('group-b');
    const first = startDeploy(a.dir, 'group-a');
    const second = startDeploy(b.dir, 'group-b');
    // Both hooks run at the same time: each waits for its release file, so both started means both hold their group.
    await waitFor(a.started);
    await waitFor(b.started);
    writeFileSync(a.release, '');
    writeFileSync(b.release, '');
    const [doneA, doneB] = await Promise.all([first, second]);
    expect(doneA.exitCode, doneA.all).toBe(0);
    expect(doneB.exitCode, doneB.all).toBe(0);
  });

  it('holds between the daemon and a local deploy, both ways', async () => {
    const world = newWorld({}, { iamUser: { arn: 'arn:aws:iam::123456789012:user/group-lock-test' } });
    const localConfig = join(world.dir, 'local.yml');
    writeAgentConfig(localConfig, { root_dir: world.root, log_dir: join(world.dir, 'local-log'), pid_dir: join(world.dir, 'local-pid') });
    const agent = world.start();
    const bundle = waitingBundle('daemon-holds');

    // The daemon holds the group while its command runs: a local deploy is refused, naming the daemon.
    const held = service.addDeployment({
      hostIdentifier: world.hostIdentifier,
      commands: ['DownloadBundle', 'BeforeInstall'],
      spec: makeSpec({ deploymentGroupId: 'shared', revision: localRevision(bundle.dir) }),
    });
    await waitFor(bundle.started);
    const refused = await runCli(['deploy', '-c', localConfig, '-l', bundle.dir, '-g', 'shared']);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`deployment group shared is busy: codedeploy-agent run -c \\S+ \\(pid ${agent.pid}\\)`));
    writeFileSync(bundle.release, '');
    await waitForDeployment(service, held, agent);
    expect(held.status).toBe('Succeeded');

    // A local deploy holds the group: the daemon's command fails at once, naming the local run.
    const local = waitingBundle('local-holds');
    const deploy = execa(process.execPath, [AGENT_BIN, 'deploy', '-c', localConfig, '-l', local.dir, '-g', 'shared'], { reject: false, all: true });
    await waitFor(local.started);
    const blocked = service.addDeployment({
      hostIdentifier: world.hostIdentifier,
      commands: ['DownloadBundle'],
      spec: makeSpec({ deploymentGroupId: 'shared', revision: localRevision(local.dir) }),
    });
    await waitForDeployment(service, blocked, agent);
    expect(blocked.status).toBe('Failed');
    const message = payloadOf(blocked.commands[0].completions[0]).message;
    expect(message).toMatch(new RegExp(`deployment group shared is busy: codedeploy-agent deploy .* \\(pid ${deploy.pid}\\) has held it since`));
    writeFileSync(local.release, '');
    expect((await deploy).exitCode).toBe(0);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('is not kept by a background process a hook started', async () => {
    const dir = join(tmp.dir, 'background');
    mkdirSync(dir, { recursive: true });
    const pidFile = join(tmp.dir, 'background.pid');
    writeFileSync(join(dir, 'start.sh'), `#!/bin/sh\nsleep 60 > /dev/null 2>&1 < /dev/null &\necho $! > '${pidFile}'\n`);
    chmodSync(join(dir, 'start.sh'), 0o755);
    writeFileSync(join(dir, 'appspec.yml'), 'version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: start.sh\n');
    const first = await runCli(['deploy', '-c', configFile, '-l', dir, '-g', 'background']);
    expect(first.exitCode, first.all).toBe(0);
    const sleeper = Number(readFileSync(pidFile, 'utf8'));
    try {
      const lock = await lockDeploymentGroup(root, 'background');
      lock.release();
    } finally {
      process.kill(sleeper, 'SIGKILL');
    }
  });

  it('holds against another open file of this very process, and names its holder', async () => {
    const lock = await lockDeploymentGroup(root, 'in-process', { command: 'test holder' });
    try {
      const refused = await lockDeploymentGroup(root, 'in-process').then(() => undefined, (error: unknown) => error);
      expect(refused).toBeInstanceOf(DeploymentGroupBusyError);
      // The holder is this process: not named (a refusal never names itself), but still refused.
      expect((refused as Error).message).toContain('deployment group in-process is busy');
    } finally {
      lock.release();
    }
    const again = await lockDeploymentGroup(root, 'in-process');
    again.release();
    expect(readFileSync(groupLockFile(root, 'in-process'), 'utf8')).toContain(`"pid":${process.pid}`);
  });

  it('never writes through a symlink planted in place of the lock file, or a file it did not make', async () => {
    const target = join(tmp.dir, 'precious.txt');
    writeFileSync(target, 'precious\n');
    chmodSync(target, 0o600);
    const lockPath = groupLockFile(root, 'planted');
    mkdirSync(join(root, 'deployment-instructions'), { recursive: true });
    symlinkSync(target, lockPath);
    await expect(lockDeploymentGroup(root, 'planted')).rejects.toThrow(/is a symbolic link; the agent never follows one/);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
    expect(lstatSync(target).mode & 0o777).toBe(0o600);
    unlinkSync(lockPath);
    // A hard link to someone's file: two links, refused before anything is written.
    execFileSync('ln', [target, lockPath]);
    await expect(lockDeploymentGroup(root, 'planted')).rejects.toThrow(/2 hard links/);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
  });

  it('describes the holder without the secrets of its command line', () => {
    expect(describeThisProcess(['/usr/bin/node', '/opt/codedeploy-agent/bin/codedeploy-agent.mjs', 'deploy', '-g', 'web'])).toBe('codedeploy-agent deploy -g web');
  });
});

describe.skipIf(hostileUserMissing())('the deployment group lock against a local user', () => {
  const mallory = useHostileUser('lock', tmp.dir);

  it('never writes through a symlink a user races into place of the lock file', async () => {
    const victim = join(tmp.dir, 'victim-lock.txt');
    writeFileSync(victim, 'must not change\n', { mode: 0o600 });
    const instructions = join(root, 'deployment-instructions');
    mkdirSync(instructions, { recursive: true });
    // A misconfigured host: the user may write the folder of the lock files.
    chownSync(instructions, mallory.uid, mallory.gid);
    const lockPath = groupLockFile(root, 'raced');
    mallory.race(`rm -f '${lockPath}'; ln -s '${victim}' '${lockPath}' 2>/dev/null; rm -f '${lockPath}'; : > '${lockPath}'`, 180);
    // The race is under way once the user's own files appear there.
    const started = Date.now() + 20_000;
    while (!(existsSync(lockPath) && lstatSync(lockPath).uid === mallory.uid)) {
      if (Date.now() > started) throw new Error('the user\'s race did not start');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const dir = join(tmp.dir, 'raced-bundle');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'appspec.yml'), 'version: 0.0\nos: linux\n');
    let refusals = 0;
    // On a loaded machine the user's loop gets little CPU: keep deploying (up to a minute) until it has won once.
    const deadline = Date.now() + 60_000;
    for (let round = 0; (round < 8 || refusals === 0) && Date.now() < deadline; round++) {
      const result = await runCli(['deploy', '-c', configFile, '-l', dir, '-g', 'raced']);
      if (result.exitCode !== 0) {
        refusals++;
        // Every refusal is one of the lock's: a symlink, or a file that is not the agent's.
        expect(result.stderr).toMatch(/the lock file .* (is a symbolic link|is owned by uid|is not a plain file)|was not found|ENOENT/);
      }
    }
    await mallory.stopRaces();
    expect(readFileSync(victim, 'utf8')).toBe('must not change\n');
    expect(statSync(victim).mode & 0o7777).toBe(0o600);
    expect(statSync(victim).uid).toBe(0);
    // The race was real: the user's files kept the agent from taking the lock at least once.
    expect(refusals).toBeGreaterThan(0);
    chownSync(instructions, 0, 0);
  }, 150_000);
});
