import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeSpec } from '../doubles/commands-service.js';
import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
import { localRevision, waitForDeployment } from './harness.js';

useDaemonWorld('daemon');

describe('daemon smoke', () => {
  it('runs a full in-place deployment of a Local Directory revision from the service double', async () => {
    newWorld();
    const bundle = world.makeBundle({
      label: 'smoke',
      files: { 'index.html': 'hello\n' },
      hooks: { BeforeInstall: {}, AfterInstall: {}, ApplicationStart: {}, ValidateService: {} },
    });
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }) });
    const agent = world.start();
    // A deadline for a loaded machine: the deployment takes 3 s alone.
    await waitForDeployment(service, deployment, agent, 30_000);
    expect((await agent.stop()).exitCode, agent.log).toBe(0);
    expect(deployment.status).toBe('Succeeded');
    expect(deployment.commands.every((c) => c.completions.length === 1)).toBe(true);
    expect(readFileSync(join(world.dest, 'index.html'), 'utf8')).toBe('hello\n');
    expect(world.hookLines().map((line) => line.split(' ')[0])).toEqual(['BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService']);
  });
});
