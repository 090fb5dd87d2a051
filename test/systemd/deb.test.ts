import { copyFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_VERSION } from '../../src/version.js';
import { expectCompletedOnce } from '../agent/harness.js';
import { missingTool } from '../helpers/prerequisites.js';
import { systemdContainerUnavailable } from '../helpers/systemd-container.js';
import { HOST_IDENTIFIER, onPremisesConfigText } from '../ops/live-agent.js';
import {
  AGENT_LOG, CONF, DEPLOYMENT_ROOT, DROPIN_DIR, ENV_FILE, LOG_DIR, host, newerDebs, ONPREM, PREFIX, service, sharedRelease, UNIT, useAgentHost,
} from './agent-host.js';

/**
 * The .deb installed with dpkg on a host that runs systemd, as an operator (or apt) does: the service enabled
 * and polling; upgrades to newer packages during a lifecycle event, with nothing in flight and with the agent
 * stopped; then dpkg -r and dpkg --purge. The configuration is in place before the package, as configuration
 * management puts it, so the service talks to the double from its first start.
 */
const unavailable = systemdContainerUnavailable() ?? missingTool('dpkg-deb');
const PACKAGE = 'codedeploy-agent';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(unavailable !== undefined)('installed from the .deb with dpkg', () => {
  const box = useAgentHost();
  const debs: Record<string, string> = {};

  beforeAll(async () => {
    await box.container.writeFile(ONPREM, onPremisesConfigText(), 0o600);
    const built = await sharedRelease('deb');
    debs.current = join(host.shared, basename(built));
    copyFileSync(built, debs.current);
    Object.assign(debs, newerDebs(debs.current, ['9.9.1', '9.9.2', '9.9.3'], host.shared));

    const result = await host.dpkg('-i', debs.current);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`Started ${UNIT}.service`);
  }, 300_000);

  /** What dpkg says of the package: its state and version. */
  async function packageState(): Promise<string> {
    return (await box.container.exec(['dpkg-query', '-W', '-f', '${Status} ${Version}', PACKAGE])).stdout;
  }

  it('is installed, enabled, running, ordered after network-online.target, and `status` says it polls', async () => {
    const { container } = box;
    expect(await packageState()).toBe(`install ok installed 1:${AGENT_VERSION}-1`);
    expect((await container.systemctl('is-enabled', UNIT)).stdout.trim()).toBe('enabled');
    const pid = await host.waitForPolling();
    expect(await container.property(UNIT, 'FragmentPath')).toMatch(new RegExp(`^(/usr)?/lib/systemd/system/${UNIT}\\.service$`));
    expect((await container.property(UNIT, 'After')).split(' ')).toContain('network-online.target');
    expect((await container.property(UNIT, 'Wants')).split(' ')).toContain('network-online.target');
    expect(await container.property(UNIT, 'KillMode')).toBe('process');
    const { report } = await host.status();
    expect(report).toMatchObject({ status: 'running', pid, state: 'polling', hostIdentifier: HOST_IDENTIFIER });
    await container.waitFor(async () => host.versionSent() === AGENT_VERSION, 10_000, 'a request from the installed version');
  });

  it('an upgrade during a lifecycle event waits for it, then restarts the agent on the new version', async () => {
    const { container } = box;
    const { stdout, deployment, before } = await host.upgradeDuringEvent(() => host.startDpkgInstall(debs['9.9.1']), 30_000);
    expect(stdout).toContain(`Restarted ${UNIT}.service`);
    expect(await packageState()).toBe('install ok installed 1:9.9.1-1');
    await host.waitForPolling(30_000, before);
    await host.waitForDeployment(deployment);
    expect(deployment.status).toBe('Succeeded');
    expectCompletedOnce(deployment);
    await container.waitFor(async () => host.versionSent() === '9.9.1', 10_000, 'a request from the new version');
  });

  it('an upgrade with nothing in flight restarts the agent at once', async () => {
    const before = await host.waitForPolling();
    const result = await host.dpkg('-i', debs['9.9.2']);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).not.toContain('Waiting');
    expect(result.stdout).toContain(`Restarted ${UNIT}.service`);
    await host.waitForPolling(30_000, before);
    await box.container.waitFor(async () => host.versionSent() === '9.9.2', 10_000, 'a request from the new version');
  });

  it('an upgrade of a stopped agent leaves it stopped (and enabled)', async () => {
    const { container } = box;
    expect((await container.systemctl('stop', UNIT)).exitCode).toBe(0);
    const requests = service.requests.length;
    const result = await host.dpkg('-i', debs['9.9.3']);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('The agent was not running; it was not started');
    expect(await packageState()).toBe('install ok installed 1:9.9.3-1');
    await sleep(1000);
    expect(await host.activeState()).toBe('inactive');
    expect((await container.systemctl('is-enabled', UNIT)).stdout.trim()).toBe('enabled');
    expect(service.requests.length).toBe(requests);
    expect((await container.systemctl('start', UNIT)).exitCode).toBe(0);
    await host.waitForPolling();
    await container.waitFor(async () => host.versionSent() === '9.9.3', 10_000, 'a request from the new version');
  });

  it('dpkg -r leaves nothing running or enabled and keeps the configuration, history and logs; dpkg --purge removes them', async () => {
    const { container } = box;
    let result = await host.dpkg('-r', PACKAGE);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(await host.activeState()).toBe('inactive');
    expect((await container.systemctl('is-enabled', UNIT)).stdout.trim()).not.toBe('enabled');
    expect(await container.exists(`/etc/systemd/system/multi-user.target.wants/${UNIT}.service`)).toBe(false);
    expect(await host.agentProcesses()).toEqual([]);
    for (const gone of ['/usr/bin/codedeploy-agent', '/usr/bin/codedeploy-local', `${PREFIX}/bin/codedeploy-agent`]) {
      expect(await container.exists(gone), gone).toBe(false);
    }
    for (const kept of [CONF, ONPREM, ENV_FILE, AGENT_LOG, DEPLOYMENT_ROOT]) {
      expect(await container.exists(kept), kept).toBe(true);
    }
    expect(await container.sh(`ls ${DEPLOYMENT_ROOT}`)).not.toBe('');

    await container.writeFile(join(DROPIN_DIR, 'override.conf'), '[Service]\nEnvironment=OPERATOR=1\n');
    result = await host.dpkg('--purge', PACKAGE);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    for (const gone of [PREFIX, '/etc/codedeploy-agent', LOG_DIR, ENV_FILE, DROPIN_DIR]) {
      expect(await container.exists(gone), gone).toBe(false);
    }
    expect((await container.exec(['dpkg-query', '-W', PACKAGE])).exitCode).not.toBe(0);
    expect(await host.agentProcesses()).toEqual([]);
  });
});
