/**
 * The daemon as a process: its pid file (one agent per pid_dir) and the status file it keeps for
 * `codedeploy-agent status` while a hook runs and after.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeSpec } from '../doubles/commands-service.js';
import type { StatusSnapshot } from '../../src/agent/status-snapshot.js';
import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
import { localRevision, waitForDeployment } from './harness.js';

useDaemonWorld('process');

function readStatus(): StatusSnapshot {
  return JSON.parse(readFileSync(join(world.pidDir, 'codedeploy-agent.status.json'), 'utf8')) as StatusSnapshot;
}

async function waitForStatus(predicate: (status: StatusSnapshot) => boolean, timeoutMs = 10_000): Promise<StatusSnapshot> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const status = readStatus();
      if (predicate(status)) return status;
    } catch {
      // not written yet
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for the status file; last: ${existsSync(join(world.pidDir, 'codedeploy-agent.status.json')) ? JSON.stringify(readStatus()) : '(none)'}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('the agent process', () => {
  it('refuses a second run with the same pid_dir, and removes its pid file on exit', async () => {
    newWorld();
    const first = world.start();
    await first.waitForLog('Host identifier');
    const pidFile = join(world.pidDir, 'codedeploy-agent.pid');
    expect(readFileSync(pidFile, 'utf8')).toBe(`${first.pid}\n`);

    const second = world.start();
    const refused = await second.waitForExit();
    expect(refused.exitCode).not.toBe(0);
    expect(second.log).toContain(`Pid file ${pidFile} exists and process ${first.pid} is running - aborting start!`);
    // The first agent is untouched.
    expect(readFileSync(pidFile, 'utf8')).toBe(`${first.pid}\n`);
    expect((await first.stop()).exitCode).toBe(0);
    expect(existsSync(pidFile)).toBe(false);
  });

  it('replaces a stale pid file', async () => {
    newWorld();
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync(world.pidDir, { recursive: true });
    writeFileSync(join(world.pidDir, 'codedeploy-agent.pid'), '999999999\n');
    const agent = world.start();
    await agent.waitForLog('Host identifier');
    expect(readFileSync(join(world.pidDir, 'codedeploy-agent.pid'), 'utf8')).toBe(`${agent.pid}\n`);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('keeps the status file current: the running hook while it runs, the results after', async () => {
    newWorld();
    const gate = join(world.dir, 'gate');
    const bundle = world.makeBundle({
      label: 'status',
      hooks: { BeforeInstall: { body: `while [ ! -e '${gate}' ]; do sleep 0.05; done` } },
    });
    const agent = world.start();
    const deployment = service.addDeployment({
      hostIdentifier: world.hostIdentifier,
      spec: makeSpec({ revision: localRevision(bundle), deploymentGroupName: 'status-group', applicationName: 'status-app' }),
      commands: ['DownloadBundle', 'BeforeInstall'],
    });

    const during = await waitForStatus((s) => s.inFlight.some((c) => c.script !== undefined));
    expect(during.pid).toBe(agent.pid);
    expect(during.state).toBe('polling');
    expect(during.hostIdentifier).toBe(world.hostIdentifier);
    expect(during.lastSuccessfulPollAt).toBeDefined();
    expect(during.inFlight).toHaveLength(1);
    expect(during.inFlight[0]).toMatchObject({
      hostCommandIdentifier: deployment.commands[1].hostCommandIdentifier,
      deploymentId: deployment.deploymentId,
      deploymentGroupId: deployment.spec.DeploymentGroupId,
      deploymentGroupName: 'status-group',
      applicationName: 'status-app',
      event: 'BeforeInstall',
      script: 'scripts/BeforeInstall.sh',
    });
    expect(during.recent.map((r) => [r.event, r.status])).toEqual([['DownloadBundle', 'Succeeded']]);

    const { writeFileSync } = await import('node:fs');
    writeFileSync(gate, '');
    await waitForDeployment(service, deployment, agent);
    const after = await waitForStatus((s) => s.inFlight.length === 0 && s.recent.length === 2);
    expect(after.recent.map((r) => [r.event, r.status, r.deploymentId, r.deploymentGroupId])).toEqual([
      ['BeforeInstall', 'Succeeded', deployment.deploymentId, deployment.spec.DeploymentGroupId],
      ['DownloadBundle', 'Succeeded', deployment.deploymentId, deployment.spec.DeploymentGroupId],
    ]);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('aborts the open long poll at once on %s', async (signal) => {
    newWorld();
    service.longPollMs = 30_000;
    try {
      const agent = world.start();
      const polls = () => service.requestsFor('PollHostCommand').filter((r) => (r.body as { HostIdentifier: string }).HostIdentifier === world.hostIdentifier);
      await service.waitFor(() => polls().length > 0, 10_000, 'a poll');
      await new Promise((resolve) => setTimeout(resolve, 200));
      const signalledAt = Date.now();
      agent.signal(signal);
      const exit = await agent.waitForExit();
      expect(exit.exitCode, agent.log).toBe(0);
      expect(Date.now() - signalledAt).toBeLessThan(3_000);
      expect(polls()).toHaveLength(1);
      expect(agent.log).toContain(`${signal} received: no new commands`);
      expect(existsSync(join(world.pidDir, 'codedeploy-agent.pid'))).toBe(false);
    } finally {
      service.longPollMs = 300;
    }
  });

  it('keeps polling when the service refuses its credentials, says where they come from, and records the error for status', async () => {
    newWorld({}, { iamUser: { credentials: { accessKeyId: 'AKIAPROCESSBADKEY001', secretAccessKey: 'processBadKeySecret/0123456789abcdef' } } });
    const agent = world.start();
    await agent.waitForLog(/Cannot reach InstanceService: PollHostCommand: UnrecognizedClientException[^\n]*; retrying in[\s\S]*Cannot reach InstanceService/);
    expect(agent.log).toContain(`(the service refused this host's credentials: check the IAM user keys in ${world.onPremisesFile}, that they belong to ${world.hostIdentifier}, the region us-east-1 and the clock)`);
    const status = await waitForStatus((s) => s.lastError !== undefined);
    expect(status.lastError!.message).toMatch(/^PollHostCommand: UnrecognizedClientException \(HTTP 403\)/);
    expect(status.state).toBe('polling');
    const exit = await agent.stop();
    expect(exit.exitCode, agent.log).toBe(0);
    expect(agent.log).not.toContain('processBadKeySecret/0123456789abcdef');
  });

  it('keeps retrying an identity it cannot determine yet, and still stops at once on SIGTERM', async () => {
    // Not registered yet: no on-premises file, and no instance metadata.
    newWorld({}, { iamUser: false });
    const agent = world.start();
    await agent.waitForLog("Cannot determine this host's identity");
    const signalledAt = Date.now();
    const exit = await agent.stop();
    expect(exit.exitCode, agent.log).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(3_000);
  });
});
