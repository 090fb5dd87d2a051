/**
 * Crash recovery and shutdown (docs/compatibility.md, "Crash recovery"): SIGKILL during a hook, SIGTERM during a hook (with
 * and without enough time), a second SIGTERM, and completions that outlive the process (the outbox).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeSpec } from '../doubles/commands-service.js';
import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
import { expectAllRequestsAuthenticated, expectCompletedOnce, localRevision, payloadOf, waitForDeployment } from './harness.js';
import { isAlive, waitForOwnRecord } from '../hooks/proc.js';

const RESTART_MESSAGE = 'Failed: Failing in-progress lifecycle event after an agent restart.';

/** Process groups of hooks the tests made, killed at the end if still there. */
const hookGroups: number[] = [];

useDaemonWorld('shutdown');
afterEach(() => {
  for (const pgid of hookGroups.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A BeforeInstall hook that records its process group, starts a background child in it, and sleeps. */
function slowBundle(label: string, seconds: number): { bundle: string; pidFile: string } {
  const pidFile = join(world.dir, `${label}.pids`);
  const bundle = world.makeBundle({
    label,
    hooks: {
      BeforeInstall: { body: `sleep ${seconds} &\necho "$$ $!" > '${pidFile}'\nwait\necho finished >> '${pidFile}.done'` },
      AfterInstall: {},
    },
  });
  return { bundle, pidFile };
}

async function hookPids(pidFile: string): Promise<{ shell: number; child: number }> {
  const deadline = Date.now() + 10_000;
  while (!existsSync(pidFile) || readFileSync(pidFile, 'utf8').trim().split(' ').length < 2) {
    if (Date.now() > deadline) throw new Error(`${pidFile} was not written`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const [shell, child] = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
  hookGroups.push(shell);
  return { shell, child };
}



const COMMANDS = ['DownloadBundle', 'BeforeInstall', 'Install', 'AfterInstall'];

describe('crash recovery', () => {
  it('completes the command a SIGKILL cut short as Failed with code 7 after the restart, exactly once', async () => {
    newWorld();
    const { bundle, pidFile } = slowBundle('killed', 30);
    let agent = world.start();
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: COMMANDS });
    const { shell } = await hookPids(pidFile);
    agent.signal('SIGKILL');
    await agent.waitForExit();
    expect(existsSync(join(world.root, 'ongoing-deployment', deployment.deploymentId))).toBe(true);
    try {
      process.kill(-shell, 'SIGKILL'); // the hook, if the command worker has not stopped it yet (test/agent/command-worker.test.ts)
    } catch {
      // already stopped
    }

    agent = world.start();
    await waitForDeployment(service, deployment, agent);
    const before = deployment.commands[1];
    expect(before.commandName).toBe('BeforeInstall');
    expect(before.completions.map((c) => [c.commandStatus, payloadOf(c)])).toEqual([
      ['Failed', { error_code: 7, script_name: '', message: RESTART_MESSAGE, log: '' }],
    ]);
    expect(deployment.status).toBe('Failed');
    expectCompletedOnce(deployment);
    expect(existsSync(join(world.root, 'ongoing-deployment', deployment.deploymentId))).toBe(false);
    expect((await agent.stop()).exitCode).toBe(0);
    // Nothing more arrives later (a second, different result would be a bug).
    expect(before.completions).toHaveLength(1);
  });

  it('stops the hook a SIGKILL left running before it polls again, and leaves alone an application the hook started in its own session', async () => {
    newWorld({ hook_kill_grace_seconds: 1 });
    const pidFile = join(world.dir, 'orphan.pids');
    const bundle = world.makeBundle({
      label: 'orphan',
      hooks: {
        BeforeInstall: { body: `${waitForOwnRecord(world.root)}\nsetsid sleep 300 < /dev/null > /dev/null 2>&1 &\napp=$!\nsleep 300 &\necho "$$ $! $app" > '${pidFile}'\nwait` },
        AfterInstall: {},
      },
    });
    let agent = world.start();
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: COMMANDS });
    // Generous: download and the hook's start are slow on a loaded machine.
    const deadline = Date.now() + 60_000;
    while (!existsSync(pidFile) || readFileSync(pidFile, 'utf8').trim().split(' ').length < 3) {
      if (Date.now() > deadline) throw new Error(`the hook did not start:\n${agent.log}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const [shell, member, app] = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    hookGroups.push(shell, app);
    // The whole agent killed (the OOM killer, `systemctl kill -s KILL`): its command worker, which runs the
    // hook and would stop it if only the daemon died, then the daemon before it can react.
    const worker = [...agent.log.matchAll(/Started the command worker \(pid (\d+)\)/g)].map((m) => Number(m[1])).at(-1);
    expect(worker, agent.log).toBeDefined();
    process.kill(worker!, 'SIGKILL');
    agent.signal('SIGKILL');
    await agent.waitForExit();
    // The orphan runs on without its agent.
    expect(isAlive(shell) && isAlive(member) && isAlive(app)).toBe(true);

    agent = world.start();
    await waitForDeployment(service, deployment, agent, 60_000);
    expect(isAlive(shell)).toBe(false);
    expect(isAlive(member)).toBe(false);
    expect(isAlive(app)).toBe(true);
    const log = agent.log;
    const stopping = log.search(/The hook scripts\/BeforeInstall\.sh of BeforeInstall \(deployment \S+, group \S+, process group \d+\), started by agent pid \d+ which stopped without ending it, is still running; stopping it/);
    expect(stopping, log).toBeGreaterThanOrEqual(0);
    expect(log).toContain('of BeforeInstall');
    expect(log).toMatch(/The hook scripts\/BeforeInstall\.sh .* stopped after SIGTERM/);
    // Before the agent asked the service for anything.
    expect(stopping).toBeLessThan(log.indexOf('Host identifier'));
    expect(deployment.commands[1].completions.map((c) => [c.commandStatus, payloadOf(c).error_code])).toEqual([['Failed', 7]]);
    expect(existsSync(join(world.root, 'running-hooks')) ? readdirSync(join(world.root, 'running-hooks')) : []).toEqual([]);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('delivers the decided result, not code 7, when killed while the completion was still undelivered', async () => {
    newWorld();
    const bundle = world.makeBundle({ label: 'decided', hooks: { BeforeInstall: {} } });
    let agent = world.start();
    service.injectFault('PutHostCommandComplete', 'server-error', 1000);
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['DownloadBundle', 'BeforeInstall'] });
    await agent.waitForLog(/PutHostCommandComplete for .* failed/);
    agent.signal('SIGKILL');
    await agent.waitForExit();
    service.clearFaults();

    agent = world.start();
    await waitForDeployment(service, deployment, agent);
    expect(deployment.status).toBe('Succeeded');
    expectCompletedOnce(deployment);
    expect(deployment.commands[0].completions[0].commandStatus).toBe('Succeeded');
    expect((await agent.stop()).exitCode).toBe(0);
  });
});

describe('shutdown', () => {
  it('SIGTERM during a hook: stops polling, waits for the hook, completes it, exits 0', async () => {
    newWorld();
    const { bundle, pidFile } = slowBundle('graceful', 1.5);
    const agent = world.start();
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: COMMANDS });
    await hookPids(pidFile);
    const polls = () => service.requestsFor('PollHostCommand').filter((r) => (r.body as { HostIdentifier: string }).HostIdentifier === world.hostIdentifier).length;
    agent.signal('SIGTERM');
    await agent.waitForLog('SIGTERM received');
    const pollsAtSignal = polls();
    const exit = await agent.waitForExit();
    expect(exit.exitCode, agent.log).toBe(0);
    expect(existsSync(`${pidFile}.done`)).toBe(true);
    const [download, before, install] = deployment.commands;
    expect(download.completions.map((c) => c.commandStatus)).toEqual(['Succeeded']);
    expect(before.completions.map((c) => c.commandStatus)).toEqual(['Succeeded']);
    // No new command was taken after the signal.
    expect(install.status).toBe('Pending');
    expect(polls()).toBeLessThanOrEqual(pollsAtSignal);
    expect(existsSync(join(world.pidDir, 'codedeploy-agent.pid'))).toBe(false);
    expectAllRequestsAuthenticated(service);
    deployment.status = 'Failed'; // retire it
  });

  it('SIGTERM with a hook longer than kill_agent_max_wait_time_seconds: kills its process group, reports Failed, exits 0', async () => {
    newWorld({ kill_agent_max_wait_time_seconds: 1 });
    const { bundle, pidFile } = slowBundle('overdue', 60);
    const agent = world.start();
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: COMMANDS });
    const { shell, child } = await hookPids(pidFile);
    const signalledAt = Date.now();
    agent.signal('SIGTERM');
    const exit = await agent.waitForExit();
    expect(exit.exitCode, agent.log).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(8_000);
    expect(isAlive(shell)).toBe(false);
    expect(isAlive(child)).toBe(false);
    const before = deployment.commands[1];
    expect(before.completions).toHaveLength(1);
    expect(before.completions[0].commandStatus).toBe('Failed');
    expect(payloadOf(before.completions[0])).toMatchObject({
      error_code: 4,
      script_name: 'scripts/BeforeInstall.sh',
      message: 'Script at specified location: scripts/BeforeInstall.sh was stopped because the agent is shutting down',
    });
    expect(deployment.status).toBe('Failed');
    expectCompletedOnce(deployment);
    // Not left for crash recovery: the next start reports nothing more.
    expect(existsSync(join(world.root, 'ongoing-deployment', deployment.deploymentId))).toBe(false);
  });

  it('a second SIGTERM stops waiting for the hook', async () => {
    newWorld({ kill_agent_max_wait_time_seconds: 600 });
    const { bundle, pidFile } = slowBundle('hurried', 60);
    const agent = world.start();
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: COMMANDS });
    const { shell } = await hookPids(pidFile);
    agent.signal('SIGTERM');
    await agent.waitForLog('SIGTERM received');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(isAlive(shell)).toBe(true);
    const secondAt = Date.now();
    agent.signal('SIGTERM');
    const exit = await agent.waitForExit();
    expect(exit.exitCode, agent.log).toBe(0);
    expect(Date.now() - secondAt).toBeLessThan(6_000);
    expect(isAlive(shell)).toBe(false);
    expect(deployment.commands[1].completions.map((c) => c.commandStatus)).toEqual(['Failed']);
    expectCompletedOnce(deployment);
  });
});

describe('the completion outbox', () => {
  it('keeps a completion that cannot be delivered across a restart and delivers it once', async () => {
    newWorld({ kill_agent_max_wait_time_seconds: 1 });
    const bundle = world.makeBundle({ label: 'outbox', hooks: {} });
    let agent = world.start();
    service.injectFault('PutHostCommandComplete', 'server-error', 1000);
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['DownloadBundle', 'Install'] });
    await agent.waitForLog(/PutHostCommandComplete for .* failed/);
    const exit = await agent.stop();
    expect(exit.exitCode, agent.log).toBe(0);
    expect(agent.log).toContain('will be delivered at the next start');
    expect(deployment.commands[0].completions).toEqual([]);
    service.clearFaults();

    agent = world.start();
    await waitForDeployment(service, deployment, agent);
    expect(deployment.status).toBe('Succeeded');
    expectCompletedOnce(deployment);
    expect(agent.log).toMatch(/Delivering the result of .* decided at/);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('stops promptly on SIGTERM while an undelivered result is being retried at start-up', async () => {
    newWorld({ kill_agent_max_wait_time_seconds: 1 });
    const bundle = world.makeBundle({ label: 'startup', hooks: {} });
    let agent = world.start();
    service.injectFault('PutHostCommandComplete', 'server-error', 1000);
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['DownloadBundle'] });
    await agent.waitForLog(/PutHostCommandComplete for .* failed/);
    agent.signal('SIGKILL');
    await agent.waitForExit();

    agent = world.start();
    await agent.waitForLog(/Delivering the result of/);
    await agent.waitForLog(/PutHostCommandComplete for .* failed/);
    const signalledAt = Date.now();
    const exit = await agent.stop();
    expect(exit.exitCode, agent.log).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(5_000);
    service.clearFaults();

    agent = world.start();
    await waitForDeployment(service, deployment, agent);
    expectCompletedOnce(deployment);
    expect(deployment.commands[0].completions[0].commandStatus).toBe('Succeeded');
    expect((await agent.stop()).exitCode).toBe(0);
  });
});
