/**
 * The daemon's command worker (src/agent/command-worker.ts): lifecycle events run in a child process of
 * the agent, started for a burst of commands and stopped when idle; it stops its hooks when the daemon
 * dies, and the daemon survives the worker dying.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeSpec } from '../doubles/commands-service.js';
import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
import { expectCompletedOnce, localRevision, payloadOf, waitForDeployment, type RunningAgent } from './harness.js';
import { isAlive } from '../hooks/proc.js';

useDaemonWorld('worker');

/** Process groups of hooks the tests made, killed at the end if still there (before the world is removed). */
const hookGroups: number[] = [];

afterEach(() => {
  for (const pgid of hookGroups.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});


/** The parent pid of `pid`, from /proc (the name may hold spaces and parentheses). */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Pids of the workers the agent said it started, in order. */
function workerPids(agent: RunningAgent): number[] {
  return [...agent.log.matchAll(/Started the command worker \(pid (\d+)\)/g)].map((m) => Number(m[1]));
}

async function eventually(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function hookPids(pidFile: string): Promise<{ shell: number; child: number }> {
  await eventually(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim().split(' ').length >= 2, 15_000, `${pidFile} written`);
  const [shell, child] = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
  hookGroups.push(shell);
  return { shell, child };
}

const COMMANDS = ['DownloadBundle', 'BeforeInstall', 'Install', 'AfterInstall'];

describe('command worker', () => {
  it('runs a burst of commands in one child of the daemon, which exits when idle; the next burst starts another', async () => {
    newWorld();
    const bundle = world.makeBundle({ label: 'burst', hooks: { BeforeInstall: {}, AfterInstall: {} } });
    const agent = world.start();
    const first = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: COMMANDS });
    await waitForDeployment(service, first, agent, 30_000);
    expect(first.status, agent.log).toBe('Succeeded');
    const [worker] = workerPids(agent);
    expect(workerPids(agent)).toHaveLength(1);
    // A child of the daemon.
    expect(parentOf(worker)).toBe(agent.pid);
    // Its log lines reach the agent log (the signature line is the worker's).
    expect(agent.log).toMatch(/Deployment specification signature: /);

    await eventually(() => !isAlive(worker), 30_000, `the worker ${worker} exits after 10 idle seconds`);
    expect(isAlive(agent.pid)).toBe(true);

    const second = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: COMMANDS });
    await waitForDeployment(service, second, agent, 30_000);
    expect(second.status, agent.log).toBe('Succeeded');
    expect(workerPids(agent)).toHaveLength(2);
    expectCompletedOnce(second);
    expect((await agent.stop()).exitCode).toBe(0);
    expect(isAlive(workerPids(agent)[1])).toBe(false);
  });

  it('stops the hooks (TERM, grace, KILL) and exits when the daemon is killed; the next start reports code 7', async () => {
    newWorld();
    const pidFile = join(world.dir, 'orphan.pids');
    const bundle = world.makeBundle({
      label: 'orphan',
      hooks: { BeforeInstall: { body: `sleep 60 &\necho "$$ $!" > '${pidFile}'\nwait` }, AfterInstall: {} },
    });
    let agent = world.start();
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: COMMANDS });
    const { shell, child } = await hookPids(pidFile);
    const [worker] = workerPids(agent);
    agent.signal('SIGKILL');
    await agent.waitForExit();
    // The worker sees its channel close and stops the hook's group (grace 0.5 s in these tests).
    await eventually(() => !isAlive(shell) && !isAlive(child), 10_000, 'the hook and its background child stopped');
    await eventually(() => !isAlive(worker), 10_000, 'the worker exited');

    agent = world.start();
    await waitForDeployment(service, deployment, agent, 30_000);
    expect(deployment.commands[1].completions.map((c) => [c.commandStatus, payloadOf(c).error_code])).toEqual([['Failed', 7]]);
    expectCompletedOnce(deployment);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('fails the command of a worker that died, names it, and runs the next deployment in a new worker', async () => {
    newWorld();
    const pidFile = join(world.dir, 'victim.pids');
    const slow = world.makeBundle({
      label: 'victim',
      hooks: { BeforeInstall: { body: `sleep 60 &\necho "$$ $!" > '${pidFile}'\nwait` } },
    });
    const agent = world.start();
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(slow) }), commands: ['DownloadBundle', 'BeforeInstall'] });
    await hookPids(pidFile);
    const [worker] = workerPids(agent);
    process.kill(worker, 'SIGKILL');
    await waitForDeployment(service, deployment, agent, 30_000);
    const before = deployment.commands[1];
    expect(before.completions.map((c) => c.commandStatus)).toEqual(['Failed']);
    expect(payloadOf(before.completions[0])).toMatchObject({
      error_code: 5,
      message: `the command worker (pid ${worker}) stopped on SIGKILL before it answered`,
    });

    const quick = world.makeBundle({ label: 'after', hooks: { BeforeInstall: {} } });
    const next = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(quick) }), commands: ['DownloadBundle', 'BeforeInstall'] });
    await waitForDeployment(service, next, agent, 30_000);
    expect(next.status, agent.log).toBe('Succeeded');
    expect(workerPids(agent)).toHaveLength(2);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('says it is not for people when started by hand', async () => {
    const { execa } = await import('execa');
    const { AGENT_BIN } = await import('../helpers/cli.js');
    const result = await execa(process.execPath, [AGENT_BIN, 'command-worker'], { reject: false });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('started by `codedeploy-agent run`');
  });
});
