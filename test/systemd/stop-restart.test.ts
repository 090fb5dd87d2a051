import { beforeAll, describe, expect, it } from 'vitest';
import { expectCompletedOnce, payloadOf } from '../agent/harness.js';
import { systemdContainerUnavailable } from '../helpers/systemd-container.js';
import { CONF, host, RESTART_MESSAGE, service, UNIT, sharedRelease, useAgentHost } from './agent-host.js';

/**
 * Stopping, restarting and killing the service while a lifecycle event runs, as an operator (or an upgrade,
 * or the OOM killer) does: the event is reported exactly once, never left for the service to time out, and
 * the application a hook started keeps running (KillMode=process).
 */
const unavailable = systemdContainerUnavailable();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(unavailable !== undefined)('stop, restart and kill under systemd', () => {
  const box = useAgentHost({ kill_agent_max_wait_time_seconds: '60', hook_kill_grace_seconds: '1' });
  /** The application the first deployment's ApplicationStart left running. */
  let application = 0;

  beforeAll(async () => {
    const result = await host.install(host.unpack(await sharedRelease('tar')));
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    await host.waitForPolling();

    const { bundle, deployment } = host.newGatedDeployment();
    bundle.open();
    await host.waitForDeployment(deployment);
    expect(deployment.status).toBe('Succeeded');
    application = host.applicationPid(bundle);
  }, 120_000);

  async function setMaxWait(seconds: number): Promise<void> {
    await box.container.sh(`sed -i 's/^:kill_agent_max_wait_time_seconds: .*/:kill_agent_max_wait_time_seconds: ${seconds}/' ${CONF}`);
    expect((await box.container.systemctl('reload', UNIT)).exitCode).toBe(0);
    await box.container.waitFor(async () => (await host.journal('-n', '5')).includes('SIGHUP: log files reopened'), 10_000, 'the reload');
  }

  it('`systemctl stop` during a hook waits for the lifecycle event, reports it, and the hooks\' application keeps running, also after a start', async () => {
    const { container } = box;
    expect(await host.alive(application)).toBe(true);
    const { bundle, deployment } = host.newGatedDeployment();
    await host.waitForHook('AfterInstall');
    const afterInstall = deployment.commands.find((c) => c.commandName === 'AfterInstall')!;

    const stopping = container.spawnInside(['systemctl', 'stop', UNIT]);
    await container.waitFor(async () => (await host.activeState()) === 'deactivating', 10_000, 'the unit to be stopping');
    await sleep(1500);
    // Still waiting for the hook: not stopped, nothing reported, no SIGKILL.
    expect(await host.activeState()).toBe('deactivating');
    expect((await host.status()).report).toMatchObject({ state: 'stopping', inFlight: [{ event: 'AfterInstall' }] });
    expect(afterInstall.completions).toEqual([]);

    bundle.open();
    const stopped = await stopping;
    expect(stopped.exitCode, String(stopped.stderr)).toBe(0);
    expect(await host.activeState()).toBe('inactive');
    expect(afterInstall.completions.map((c) => c.commandStatus)).toEqual(['Succeeded']);
    expect(deployment.commands.find((c) => c.commandName === 'ApplicationStart')!.status).toBe('Pending');
    expect(await container.property(UNIT, 'Result')).toBe('success');
    const journal = await container.journal('-u', UNIT, '-o', 'cat');
    expect(journal).toContain(`AfterInstall of ${deployment.deploymentId}: end of lifecycle event, Succeeded`);
    // KillMode=process: systemd signalled the agent only; the application is still there.
    expect(journal).toMatch(new RegExp(`Unit process ${application} \\(sleep\\) remains running after unit stopped`));
    expect(await host.alive(application)).toBe(true);

    // Started again: the application is left alone, and the deployment goes on where it stopped.
    expect((await container.systemctl('start', UNIT)).exitCode).toBe(0);
    await host.waitForDeployment(deployment);
    expect(deployment.status).toBe('Succeeded');
    expectCompletedOnce(deployment);
    expect(await container.journal('-u', UNIT, '-o', 'cat')).toMatch(new RegExp(`Found left-over process ${application} \\(sleep\\) in control group while starting unit`));
    expect(await host.alive(application)).toBe(true);
    await host.waitForPolling();
  });

  it('`systemctl restart` while a hook runs: the event is reported once when it finishes, then the new agent goes on', async () => {
    const { container } = box;
    const { bundle, deployment } = host.newGatedDeployment();
    await host.waitForHook('AfterInstall');
    const before = await host.mainPid();
    const restarting = container.spawnInside(['systemctl', 'restart', UNIT]);
    await container.waitFor(async () => (await host.activeState()) === 'deactivating', 10_000, 'the unit to be stopping');
    bundle.open();
    expect((await restarting).exitCode).toBe(0);
    const after = await host.waitForPolling(30_000, before);
    expect(after).not.toBe(before);
    await host.waitForDeployment(deployment);
    expect(deployment.status).toBe('Succeeded');
    expectCompletedOnce(deployment);
    expect(deployment.commands.find((c) => c.commandName === 'AfterInstall')!.completions.map((c) => c.commandStatus)).toEqual(['Succeeded']);
  });

  it('`systemctl restart` during a hook longer than kill_agent_max_wait_time_seconds: the hook is stopped and reported Failed once, the restart takes seconds, not TimeoutStopSec', async () => {
    const { container } = box;
    await setMaxWait(2);
    const { deployment } = host.newGatedDeployment(); // the gate stays shut: the hook would wait a minute
    await host.waitForHook('AfterInstall');
    const before = await host.mainPid();
    const startedAt = Date.now();
    const restart = await container.systemctl('restart', UNIT);
    const took = Date.now() - startedAt;
    expect(restart.exitCode, restart.stderr).toBe(0);
    expect(took).toBeLessThan(20_000);
    expect(await container.property(UNIT, 'TimeoutStopUSec')).toBe('2h'); // what systemd would have waited for

    await host.waitForDeployment(deployment);
    await host.waitForPolling(30_000, before);
    await sleep(1500); // time for a second, different report to arrive if there were one
    const afterInstall = deployment.commands.find((c) => c.commandName === 'AfterInstall')!;
    expect(afterInstall.completions).toHaveLength(1);
    expect(afterInstall.completions[0].commandStatus).toBe('Failed');
    expect(payloadOf(afterInstall.completions[0])).toMatchObject({
      error_code: 4,
      script_name: 'scripts/wait-for-gate.sh',
      message: expect.stringContaining('was stopped because the agent is shutting down'),
    });
    expect(deployment.status).toBe('Failed');
    expectCompletedOnce(deployment);
    await setMaxWait(60);
  });

  it('`codedeploy-agent restart`, `stop` and `start` (AWS\'s command form) go through systemd, and a stopped agent stays stopped', async () => {
    const { container } = box;
    const before = await host.waitForPolling();
    let result = await container.exec(['codedeploy-agent', 'restart']);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`systemctl restart ${UNIT}`);
    const restarted = await host.waitForPolling(10_000, before);

    // `stop` signals the agent itself (what `systemctl stop` would send): a clean exit, not restarted.
    result = await container.exec(['codedeploy-agent', 'stop']);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`the agent runs under systemd (${UNIT}.service)`);
    expect(result.stdout).toContain(`Sent SIGTERM to the AWS CodeDeploy agent (PID ${restarted})`);
    await sleep(1500);
    expect(await host.activeState()).toBe('inactive');
    expect(await container.property(UNIT, 'Result')).toBe('success');
    expect(await host.alive(application)).toBe(true);

    result = await container.exec(['codedeploy-agent', 'start']);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`systemctl start ${UNIT}`);
    const started = await host.waitForPolling(10_000, restarted);
    result = await container.exec(['codedeploy-agent', 'start']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`already running as PID ${started}`);
  });

  it('`systemctl kill -s KILL`: systemd restarts the agent per the unit, which fails the cut-short event with code 7', async () => {
    const { container } = box;
    const { deployment } = host.newGatedDeployment();
    await host.waitForHook('AfterInstall');
    const before = await host.mainPid();
    expect((await container.systemctl('kill', '-s', 'KILL', UNIT)).exitCode).toBe(0);

    // Restart=on-failure after RestartSec=10s.
    const after = await host.waitForPolling(40_000, before);
    expect(Number(await container.property(UNIT, 'NRestarts'))).toBe(1);
    const journal = await container.journal('-u', UNIT, '-o', 'cat');
    expect(journal).toContain('Main process exited, code=killed, status=9/KILL');
    expect(journal).toMatch(/Scheduled restart job, restart counter is at 1/);
    expect(after).not.toBe(before);

    await host.waitForDeployment(deployment);
    const afterInstall = deployment.commands.find((c) => c.commandName === 'AfterInstall')!;
    expect(afterInstall.completions.map((c) => [c.commandStatus, payloadOf(c)])).toEqual([
      ['Failed', { error_code: 7, script_name: '', message: RESTART_MESSAGE, log: '' }],
    ]);
    expect(deployment.status).toBe('Failed');
    expectCompletedOnce(deployment);
    expect(journal + await host.journal()).toContain(`was in progress when the agent stopped; reporting it Failed`);
  });
});
