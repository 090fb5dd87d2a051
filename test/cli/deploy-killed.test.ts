/**
 * A `deploy` killed with SIGKILL in the middle of a hook: the hook's process group runs on as an
 * orphan, and the next `deploy` on the same deployment root stops it (TERM, grace, KILL) before any
 * hook runs, saying so; an application the hook started in a session of its own keeps running.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { AGENT_BIN, runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { isAlive, waitFor, waitForOwnRecord } from '../hooks/proc.js';
import { FakeCommandsService, makeSpec } from '../doubles/commands-service.js';
import { AgentWorld, localRevision, waitForDeployment } from '../agent/harness.js';

const tmp = makeTempDir('cda-deploy-killed-');
const groups: number[] = [];
afterAll(() => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  tmp.cleanup();
});

const root = join(tmp.dir, 'root');
const logDir = join(tmp.dir, 'log');
const configFile = join(tmp.dir, 'agent.yml');
writeFileSync(configFile, `:root_dir: ${root}\n:log_dir: ${logDir}\n:pid_dir: ${join(tmp.dir, 'pid')}\n:hook_kill_grace_seconds: 1\n`);

const pidFile = join(tmp.dir, 'hook.pids');
const recordFile = join(tmp.dir, 'record.txt');

/** A revision whose ApplicationStart leaves a group member and a setsid application, and whose ApplicationStop says whether that member still runs. */
function makeBundle(name: string): string {
  const dir = join(tmp.dir, name);
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  writeFileSync(join(dir, 'index.html'), `${name}\n`);
  const script = (file: string, body: string) => {
    writeFileSync(join(dir, 'scripts', file), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, 'scripts', file), 0o755);
  };
  script('start.sh', `${waitForOwnRecord(root)}\nsetsid sleep 300 < /dev/null > /dev/null 2>&1 &\napp=$!\nsleep 300 &\necho "$$ $! $app" > '${pidFile}'\nwait`);
  script('stop.sh', `m=$(cut -d' ' -f2 '${pidFile}')\nstate=$(cut -d' ' -f3 /proc/$m/stat 2>/dev/null)\nif [ -n "$state" ] && [ "$state" != Z ]; then echo "ApplicationStop ${name}: leftover alive" >> '${recordFile}'; else echo "ApplicationStop ${name}: leftover gone" >> '${recordFile}'; fi`);
  writeFileSync(
    join(dir, 'appspec.yml'),
    `version: 0.0\nos: linux\nfiles:\n  - source: index.html\n    destination: ${join(tmp.dir, 'dest')}\nhooks:\n  ApplicationStop:\n    - location: scripts/stop.sh\n  ApplicationStart:\n    - location: scripts/start.sh\n      timeout: 600\n`,
  );
  return dir;
}

describe('deploy after a deploy was killed', () => {
  it('stops the hook the killed deploy left running before any hook runs, and logs it', async () => {
    const first = execa(process.execPath, [AGENT_BIN, 'deploy', '-c', configFile, '-l', makeBundle('v1'), '-g', 'group-killed'], { reject: false });
    expect(await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim().split(' ').length === 3, 30_000)).toBe(true);
    const [shell, member, app] = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    groups.push(shell, app);
    first.kill('SIGKILL');
    await first;
    expect(isAlive(shell) && isAlive(member) && isAlive(app)).toBe(true);
    expect(readdirSync(join(root, 'running-hooks'))).toHaveLength(1);

    const second = await runCli(['deploy', '-c', configFile, '-l', makeBundle('v2'), '-g', 'group-killed', '-e', 'ApplicationStop,DownloadBundle,Install']);
    expect(second.exitCode, second.all).toBe(0);
    // ApplicationStop (the previous revision's script) found the leftover already gone.
    expect(readFileSync(recordFile, 'utf8')).toBe('ApplicationStop v1: leftover gone\n');
    expect(isAlive(shell) || isAlive(member)).toBe(false);
    expect(isAlive(app)).toBe(true);
    expect(readdirSync(join(root, 'running-hooks'))).toEqual([]);
    const log = readFileSync(join(logDir, 'codedeploy-local.log'), 'utf8');
    expect(log).toMatch(/The hook scripts\/start\.sh of ApplicationStart \(deployment d-\S+, group group-killed, process group \d+\), started by agent pid \d+ which stopped without ending it, is still running; stopping it/);
    expect(log).toMatch(/stopped after SIGTERM/);
    expect(second.stdout).toContain('Stopped 1 hook(s) left running by an agent that was killed');
  });

  it('a daemon that is running stops the leftover of a killed deploy before it runs a hook of that group', async () => {
    const service = await FakeCommandsService.start({ longPollMs: 300 });
    const world = new AgentWorld('cda-deploy-killed-daemon-');
    try {
      world.useIamUser('arn:aws:iam::123456789012:user/deploy-killed');
      world.writeConfig(service.url, { hook_kill_grace_seconds: 1 });
      const group = 'a1b2c3d4-0000-4000-8000-0000killed01';
      const agent = world.start();
      await agent.waitForLog('Host identifier');

      const groupPids = join(world.dir, 'group.pids');
      const bundle = join(world.dir, 'local-bundle');
      mkdirSync(join(bundle, 'scripts'), { recursive: true });
      writeFileSync(join(bundle, 'scripts', 'start.sh'), `#!/bin/sh\n${waitForOwnRecord(world.root)}\nsleep 300 &\necho "$$ $!" > '${groupPids}'\nwait\n`);
      chmodSync(join(bundle, 'scripts', 'start.sh'), 0o755);
      writeFileSync(join(bundle, 'appspec.yml'), 'version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: scripts/start.sh\n      timeout: 600\n');
      const local = execa(process.execPath, [AGENT_BIN, 'deploy', '-c', world.configFile, '-l', bundle, '-g', group], { reject: false });
      expect(await waitFor(() => existsSync(groupPids) && readFileSync(groupPids, 'utf8').trim().split(' ').length === 2, 30_000)).toBe(true);
      const [shell, member] = readFileSync(groupPids, 'utf8').trim().split(' ').map(Number);
      groups.push(shell);
      local.kill('SIGKILL');
      await local;
      expect(isAlive(shell) && isAlive(member)).toBe(true);

      // The daemon (which was running all along) gets a deployment of that group: its first hook sees the leftover gone.
      const checked = join(world.dir, 'checked.txt');
      const daemonBundle = world.makeBundle({
        label: 'daemon',
        hooks: { BeforeInstall: { body: `state=$(cut -d' ' -f3 /proc/${member}/stat 2>/dev/null)\nif [ -n "$state" ] && [ "$state" != Z ]; then echo alive > '${checked}'; else echo gone > '${checked}'; fi` } },
      });
      const deployment = service.addDeployment({
        hostIdentifier: world.hostIdentifier,
        spec: makeSpec({ deploymentGroupId: group, revision: localRevision(daemonBundle) }),
        commands: ['DownloadBundle', 'BeforeInstall'],
      });
      await waitForDeployment(service, deployment, agent);
      expect(deployment.status, agent.log).toBe('Succeeded');
      expect(readFileSync(checked, 'utf8'), agent.log).toBe('gone\n');
      expect(agent.log).toMatch(/The hook scripts\/start\.sh of ApplicationStart \(deployment d-\S+-local, group a1b2c3d4-0000-4000-8000-0000killed01, process group \d+\), started by agent pid \d+ which stopped without ending it, is still running; stopping it/);
      expect((await agent.stop()).exitCode).toBe(0);
    } finally {
      await world.cleanup();
      await service.close();
    }
  });
});
