/**
 * Commands of different deployment groups run side by side; commands of one group never overlap
 * (the pointer, cleanup and install files are per group, agent-spec §10.17).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeSpec } from '../doubles/commands-service.js';
import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
import { expectCompletedOnce, localRevision, waitForDeployment } from './harness.js';


useDaemonWorld('concurrency');

interface Interval {
  group: string;
  deployment: string;
  start: number;
  end: number;
}

function overlaps(a: Interval, b: Interval): boolean {
  return a.start < b.end && b.start < a.end;
}

describe('concurrency', () => {
  it('runs two deployment groups in parallel while two deployments of one group never overlap', async () => {
    newWorld();
    const times = join(world.dir, 'times.txt');
    const record = (what: string) => `echo "$DEPLOYMENT_GROUP_ID $DEPLOYMENT_ID ${what} $(date +%s%N)" >> '${times}'`;
    const bundle = world.makeBundle({
      label: 'parallel',
      files: {},
      hooks: { BeforeInstall: { body: `${record('start')}\nsleep 1\n${record('end')}` } },
    });
    const agent = world.start();
    const commands = ['DownloadBundle', 'BeforeInstall'];
    const deployments = [
      service.addDeployment({ hostIdentifier: world.hostIdentifier, commands, spec: makeSpec({ deploymentGroupId: 'group-a', revision: localRevision(bundle) }) }),
      service.addDeployment({ hostIdentifier: world.hostIdentifier, commands, spec: makeSpec({ deploymentGroupId: 'group-a', revision: localRevision(bundle) }) }),
      service.addDeployment({ hostIdentifier: world.hostIdentifier, commands, spec: makeSpec({ deploymentGroupId: 'group-b', revision: localRevision(bundle) }) }),
    ];
    for (const deployment of deployments) {
      await waitForDeployment(service, deployment, agent);
      expect(deployment.status).toBe('Succeeded');
      expectCompletedOnce(deployment);
    }
    expect((await agent.stop()).exitCode).toBe(0);

    const byDeployment = new Map<string, Interval>();
    for (const line of readFileSync(times, 'utf8').trim().split('\n')) {
      const [group, deployment, what, ns] = line.split(' ');
      const interval = byDeployment.get(deployment) ?? { group, deployment, start: 0, end: 0 };
      interval[what as 'start' | 'end'] = Number(BigInt(ns) / 1_000_000n);
      byDeployment.set(deployment, interval);
    }
    const [a1, a2, b1] = deployments.map((d) => byDeployment.get(d.deploymentId)!);
    expect(overlaps(a1, a2), JSON.stringify([a1, a2])).toBe(false);
    expect(overlaps(a1, b1) || overlaps(a2, b1), JSON.stringify([a1, a2, b1])).toBe(true);
  });

  it('runs one command at a time when max_concurrent_commands is 1', async () => {
    newWorld({ max_concurrent_commands: 1 });
    const times = join(world.dir, 'times.txt');
    const record = (what: string) => `echo "$DEPLOYMENT_GROUP_ID $DEPLOYMENT_ID ${what} $(date +%s%N)" >> '${times}'`;
    const bundle = world.makeBundle({ label: 'serial', files: {}, hooks: { BeforeInstall: { body: `${record('start')}\nsleep 0.5\n${record('end')}` } } });
    const agent = world.start();
    const commands = ['DownloadBundle', 'BeforeInstall'];
    const deployments = ['group-c', 'group-d'].map((group) =>
      service.addDeployment({ hostIdentifier: world.hostIdentifier, commands, spec: makeSpec({ deploymentGroupId: group, revision: localRevision(bundle) }) }));
    for (const deployment of deployments) await waitForDeployment(service, deployment, agent);
    expect((await agent.stop()).exitCode).toBe(0);
    const lines = readFileSync(times, 'utf8').trim().split('\n').map((line) => line.split(' ')[2]);
    expect(lines).toEqual(['start', 'end', 'start', 'end']);
  });
});
