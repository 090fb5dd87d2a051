import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_VERSION } from '../../src/version.js';
import { expectCompletedOnce } from '../agent/harness.js';
import { systemdContainerUnavailable } from '../helpers/systemd-container.js';
import { host, PREFIX, service, sharedRelease, UNIT, useAgentHost } from './agent-host.js';

/**
 * Upgrading a running agent with a newer release's install.sh under systemd: it never cuts a lifecycle
 * event (it waits, then restarts the agent), restarts at once when nothing runs, and leaves a stopped agent
 * stopped. Which program runs is told by the version the agent sends the service
 * (`x-amz-codedeploy-agent-version`, read from the installed .version at start).
 */
const unavailable = systemdContainerUnavailable();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(unavailable !== undefined)('upgrades under systemd', () => {
  const box = useAgentHost();
  const releases: Record<string, string> = {};

  beforeAll(async () => {
    releases.current = host.unpack(await sharedRelease('tar'));
    for (const version of ['9.9.1', '9.9.2', '9.9.3']) releases[version] = host.upgradeRelease(releases.current, version);
    const result = await host.install(releases.current);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    await host.waitForPolling();
  }, 120_000);

  async function installedVersion(): Promise<string> {
    return (await box.container.readFile(`${PREFIX}/.version`)).trim();
  }

  it('during a lifecycle event: waits for it, then installs and restarts the agent on the new version', async () => {
    const { container } = box;
    expect(host.versionSent()).toBe(AGENT_VERSION);
    const { stdout, deployment, before } = await host.upgradeDuringEvent(() => host.startInstall(releases['9.9.1']), 15_000);
    expect(stdout).toContain('No deployment is in flight any more');
    expect(stdout).toContain('Restarted codedeploy-agent.service on version 9.9.1');
    expect(await installedVersion()).toBe('agent_version: 9.9.1');
    await host.waitForPolling(30_000, before);

    // The lifecycle event that ran was not cut; the deployment ends with each event reported once.
    await host.waitForDeployment(deployment);
    expect(deployment.status).toBe('Succeeded');
    expectCompletedOnce(deployment);
    await container.waitFor(async () => host.versionSent() === '9.9.1', 10_000, 'a request from the new version');
  });

  it('with nothing in flight: installs and restarts the agent at once', async () => {
    const before = await host.waitForPolling();
    const startedAt = Date.now();
    const result = await host.install(releases['9.9.2']);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(Date.now() - startedAt).toBeLessThan(15_000);
    expect(result.stdout).not.toContain('Waiting');
    expect(result.stdout).toContain('Restarted codedeploy-agent.service on version 9.9.2');
    await host.waitForPolling(30_000, before);
    await box.container.waitFor(async () => host.versionSent() === '9.9.2', 10_000, 'a request from the new version');
  });

  it('of a stopped agent: installs and leaves it stopped (and enabled); the next start runs the new version', async () => {
    const { container } = box;
    expect((await container.systemctl('stop', UNIT)).exitCode).toBe(0);
    const requests = service.requests.length;
    const result = await host.install(releases['9.9.3']);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('The agent was not running; it was not started');
    expect(await installedVersion()).toBe('agent_version: 9.9.3');
    await sleep(1000);
    expect(await host.activeState()).toBe('inactive');
    expect((await container.systemctl('is-enabled', UNIT)).stdout.trim()).toBe('enabled');
    expect(service.requests.length).toBe(requests);

    expect((await container.systemctl('start', UNIT)).exitCode).toBe(0);
    await host.waitForPolling();
    await container.waitFor(async () => host.versionSent() === '9.9.3', 10_000, 'a request from the new version');
  });
});
