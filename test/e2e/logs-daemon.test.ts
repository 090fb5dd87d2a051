import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeSpec } from '../doubles/commands-service.js';
import { localRevision, waitForDeployment } from '../agent/harness.js';
import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
import { CliProcess } from '../helpers/follow-process.js';
import { runCli } from '../helpers/cli.js';

/**
 * `codedeploy-agent logs` against the daemon: a deployment the commands-service double hands out is
 * followed by `logs -f` while its hook still runs (the hook waits for the test), and then listed with the
 * group, application and result the daemon recorded.
 */
useDaemonWorld('logs-daemon');
const children: CliProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) await child.kill();
});

describe('logs and the daemon', () => {
  it('logs -f follows a daemon deployment live; logs lists it with what the service said about it', async () => {
    newWorld();
    const go = join(world.dir, 'go');
    const bundle = world.makeBundle({
      label: 'live',
      hooks: {
        BeforeInstall: { body: 'echo "daemon before install"' },
        AfterInstall: { body: `echo "daemon first"; while [ ! -f '${go}' ]; do sleep 0.1; done; echo "daemon second"` },
      },
    });
    const agent = world.start();
    const follow = new CliProcess(['logs', '-f', '-c', world.configFile]);
    children.push(follow);
    await follow.waitFor('waiting for the next one', { stream: 'stderr' });

    const deployment = service.addDeployment({
      hostIdentifier: world.hostIdentifier,
      spec: makeSpec({ revision: localRevision(bundle), deploymentGroupName: 'web-fleet', applicationName: 'shop' }),
    });
    await follow.waitFor(/\[stdout\]daemon first\n/);
    expect(deployment.status).not.toBe('Succeeded');
    expect(follow.stdout).not.toContain('daemon second');
    expect(follow.stdout).toContain(`==> ${deployment.deploymentId} (group a1b2c3d4-0000-4000-8000-00000000group (web-fleet), application shop) <==`);
    expect(follow.stdout.indexOf('daemon before install')).toBeLessThan(follow.stdout.indexOf('daemon first'));

    // While the hook runs, the list says so.
    const running = await runCli(['logs', '-c', world.configFile, '--json']);
    expect(JSON.parse(running.stdout.trim().split('\n')[0])).toMatchObject({ deploymentId: deployment.deploymentId, result: 'Running', runningEvent: 'AfterInstall', origin: 'daemon' });

    writeFileSync(go, '');
    await waitForDeployment(service, deployment, agent, 60_000);
    await follow.waitFor(/\[stdout\]daemon second\n/);
    const listed = await runCli(['logs', '-c', world.configFile]);
    expect(listed.stdout).toMatch(new RegExp(`^${deployment.deploymentId} +a1b2c3d4-0000-4000-8000-00000000group \\(web-fleet\\) +shop +Succeeded `, 'm'));

    follow.signal('SIGINT');
    expect((await follow.exited).exitCode).toBe(0);
    expect((await agent.stop()).exitCode, agent.log).toBe(0);
  });
});
