import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusFilePath } from '../../src/agent/status-file.js';
import { AGENT_VERSION } from '../../src/version.js';
import { makeSpec, TEST_CREDENTIALS } from '../doubles/commands-service.js';
import { AGENT_BIN } from '../helpers/cli.js';
import { service, useDaemonWorld } from '../helpers/daemon-world.js';
import { makeTempDir } from '../helpers/tmp.js';
import {
  endApplication, fastKeys, HOST_IDENTIFIER, isAlive, localRevision, makeGatedBundle, onPremisesConfigText, runStatus,
  safeSnapshot, setConfigKeys, startAgent, SYSTEMD_PATH, waitForInFlight, type RunningAgent,
} from './live-agent.js';

/**
 * `codedeploy-agent status` against the real daemon while it runs a deployment from the commands-service
 * double: mid-hook, for root and for a user without privileges, after the deployment, and after a stop.
 */

const isRoot = process.getuid?.() === 0;
let tmp: { dir: string; cleanup: () => void };
let agent: RunningAgent | undefined;
const appPidFiles: string[] = [];

useDaemonWorld('status-live');
beforeAll(async () => {
  tmp = makeTempDir('cda-status-live-');
  chmodSync(tmp.dir, 0o755); // `status` as nobody reads the config and the pid dir below it
});
afterAll(async () => {
  await agent?.kill();
  for (const file of appPidFiles) endApplication(file);
  tmp.cleanup();
});

function writeConfig(): { config: string; pidDir: string; logDir: string } {
  const onprem = join(tmp.dir, 'codedeploy.onpremises.yml');
  writeFileSync(onprem, onPremisesConfigText(), { mode: 0o600 });
  const config = join(tmp.dir, 'codedeployagent.yml');
  const pidDir = join(tmp.dir, 'state', '.pid');
  const logDir = join(tmp.dir, 'log');
  writeFileSync(config, '---\n', { mode: 0o644 });
  setConfigKeys(config, {
    root_dir: join(tmp.dir, 'deployment-root'),
    log_dir: `${logDir}/`,
    pid_dir: `${pidDir}/`,
    on_premises_config_file: onprem,
    ...fastKeys(service),
  });
  return { config, pidDir, logDir };
}

describe('status against the running daemon', () => {
  it('describes a deployment mid-hook, its result afterwards, the last error, and a stopped agent', async () => {
    const { config, pidDir, logDir } = writeConfig();
    const bundle = makeGatedBundle(join(tmp.dir, 'bundle'), join(tmp.dir, 'dest'));
    appPidFiles.push(bundle.appPidFile);
    const spec = makeSpec({ deploymentGroupName: 'web-fleet', revision: localRevision(bundle.dir) });
    const deployment = service.addDeployment({ hostIdentifier: HOST_IDENTIFIER, spec });
    const startedAt = Date.now();
    agent = startAgent(process.execPath, [AGENT_BIN, 'run', '-c', config], {
      cwd: '/', extendEnv: false, env: { PATH: SYSTEMD_PATH, AWS_EC2_METADATA_DISABLED: 'true' },
    });
    const status = (...args: string[]) => runStatus([process.execPath, AGENT_BIN, 'status', '-c', config, ...args]);

    // ---- mid-hook: AfterInstall waits at the gate.
    const command = await waitForInFlight(service, pidDir, 'AfterInstall', agent);
    expect(command).toMatchObject({ deploymentId: deployment.deploymentId, deploymentGroupName: 'web-fleet', script: 'scripts/wait-for-gate.sh' });
    // A poll fails while the hook runs: the last error, with its time.
    service.injectFault('PollHostCommand', 'server-error');
    await service.waitFor(() => safeSnapshot(pidDir)?.lastError, 10_000, 'the failed poll in the status file');
    await new Promise((resolve) => setTimeout(resolve, 1100)); // elapsed and uptime of a second or more

    let result = await status('--json');
    expect(result.exitCode, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      status: 'running', exitCode: 0, pid: agent.pid, version: AGENT_VERSION, cliVersion: AGENT_VERSION, state: 'polling',
      hostIdentifier: HOST_IDENTIFIER, region: 'us-east-1', endpoint: expect.stringMatching(new RegExp(`^${service.url}/?$`)),
      lastError: { message: expect.stringContaining('ServerException') },
      recent: expect.arrayContaining([expect.objectContaining({ deploymentId: deployment.deploymentId, event: 'BeforeInstall', status: 'Succeeded' })]),
    });
    expect(report.uptimeSeconds).toBeGreaterThanOrEqual(1);
    expect(report.uptimeSeconds).toBeLessThanOrEqual(Math.ceil((Date.now() - startedAt) / 1000) + 1);
    expect(Date.parse(report.lastSuccessfulPollAt)).toBeGreaterThanOrEqual(startedAt - 1000);
    // The error stays reported (with its time) after the polls that succeeded since.
    expect(Date.parse(report.lastError.at)).toBeGreaterThanOrEqual(startedAt);
    expect(Date.parse(report.lastError.at)).toBeLessThanOrEqual(Date.now());
    expect(report.inFlight).toHaveLength(1);
    expect(report.inFlight[0]).toMatchObject({
      deploymentId: deployment.deploymentId, deploymentGroupName: 'web-fleet', deploymentGroupId: spec.DeploymentGroupId,
      applicationName: 'test-app', event: 'AfterInstall', script: 'scripts/wait-for-gate.sh',
    });
    expect(report.inFlight[0].elapsedSeconds).toBeGreaterThanOrEqual(1);

    result = await status();
    expect(result.exitCode, result.stderr).toBe(0);
    const text = result.stdout;
    expect(text).toContain(`The AWS CodeDeploy agent is running as PID ${agent.pid}`);
    expect(text).toMatch(new RegExp(`\\n  version\\s+${AGENT_VERSION.replace(/\./g, '\\.')}\\n`));
    expect(text).toMatch(/\n {2}uptime\s+\d+s \(since \S+\)\n/);
    expect(text).toMatch(new RegExp(`\\n  host identifier\\s+${HOST_IDENTIFIER}\\n`));
    expect(text).toMatch(/\n {2}region\s+us-east-1\n/);
    expect(text).toContain(service.url);
    expect(text).toMatch(/\n {2}last successful poll\s+\S+ \(\d+s ago\)\n/);
    expect(text).toMatch(/\n {2}last error\s+.*ServerException.* \(at \S+ \(\d+s ago\)\)\n/);
    expect(text).toMatch(new RegExp(`\\n\\s+\\S+\\s+${deployment.deploymentId}\\s+group \\S+\\s+Install\\s+Succeeded\\s+\\(in progress\\)$`));
    expect(text).toMatch(new RegExp(`In-flight commands \\(1\\):\\n\\s+${deployment.deploymentId}\\s+group web-fleet\\s+event AfterInstall\\s+script scripts/wait-for-gate\\.sh\\s+running for \\d+s`));

    // The status file holds no secret, and is all an unprivileged user needs.
    const statusText = readFileSync(statusFilePath(pidDir), 'utf8');
    expect(statusText).not.toContain(TEST_CREDENTIALS.secretAccessKey);
    expect(statusText).not.toContain(TEST_CREDENTIALS.accessKeyId);
    if (isRoot) {
      const asNobody = await runStatus([process.execPath, AGENT_BIN, 'status', '--json', '-c', config], { user: 'nobody' });
      expect(asNobody.stderr).toBe('');
      expect(asNobody.exitCode).toBe(0);
      expect(JSON.parse(asNobody.stdout)).toMatchObject({
        status: 'running', pid: agent.pid, hostIdentifier: HOST_IDENTIFIER,
        inFlight: [{ deploymentId: deployment.deploymentId, event: 'AfterInstall', script: 'scripts/wait-for-gate.sh' }],
      });
      const textAsNobody = await runStatus([process.execPath, AGENT_BIN, 'status', '-c', config], { user: 'nobody' });
      expect(textAsNobody.exitCode, textAsNobody.stderr).toBe(0);
      expect(textAsNobody.stdout).toContain('event AfterInstall  script scripts/wait-for-gate.sh');
    }

    // ---- after the deployment: its results, nothing in flight.
    bundle.open();
    await service.waitForDeployment(deployment, 30_000).catch((error: Error) => {
      throw new Error(`${error.message}\nagent output:\n${agent!.output()}`);
    });
    expect(deployment.status).toBe('Succeeded');
    await service.waitFor(() => safeSnapshot(pidDir)?.recent.some((r) => r.event === 'ValidateService'), 5000, 'the last result in the status file');
    result = await status('--json');
    expect(result.exitCode).toBe(0);
    const after = JSON.parse(result.stdout);
    expect(after.inFlight).toEqual([]);
    const events = (after.recent as { deploymentId: string; event: string; status: string }[])
      .filter((r) => r.deploymentId === deployment.deploymentId).map((r) => `${r.event} ${r.status}`);
    expect(events).toEqual(deployment.commands.map((c) => `${c.commandName} Succeeded`).reverse());
    result = await status();
    expect(result.stdout).toContain('In-flight commands: none');
    // One line per deployment: the last lifecycle event it reached.
    const lastEvent = deployment.commands.at(-1)!.commandName;
    expect(result.stdout).toMatch(new RegExp(`Recent deployments \\(the last lifecycle event of each\\):\\n\\s+\\S+\\s+${deployment.deploymentId}\\s+group web-fleet\\s+${lastEvent}\\s+Succeeded\\n?$`));

    // The secret reached neither the status file nor the agent's log.
    expect(readFileSync(statusFilePath(pidDir), 'utf8')).not.toContain(TEST_CREDENTIALS.secretAccessKey);
    expect(readFileSync(join(logDir, 'codedeploy-agent.log'), 'utf8')).not.toContain(TEST_CREDENTIALS.secretAccessKey);

    // ---- `stop`: SIGTERM to the agent only (as KillMode=process); the application a hook started lives on.
    const appPid = Number(readFileSync(bundle.appPidFile, 'utf8'));
    expect(isAlive(appPid)).toBe(true);
    const stop = await runStatus([process.execPath, AGENT_BIN, 'stop', '-c', config, '--timeout', '30']);
    expect(stop.exitCode, stop.stdout + stop.stderr).toBe(0);
    expect(stop.stdout).toContain(`Stopped the AWS CodeDeploy agent (PID ${agent.pid})`);
    expect(await agent.exited()).toMatchObject({ exitCode: 0 });
    expect(isAlive(appPid)).toBe(true);

    result = await status('--json');
    expect(result.exitCode).toBe(3);
    expect(JSON.parse(result.stdout)).toMatchObject({
      status: 'not-running', exitCode: 3,
      previousRun: { pid: agent.pid, recent: expect.arrayContaining([expect.objectContaining({ deploymentId: deployment.deploymentId })]) },
    });
    result = await status();
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toContain('No AWS CodeDeploy agent running');
    expect(result.stdout).toMatch(new RegExp(`Deployments of the last run \\(the last lifecycle event of each\\):\\n\\s+\\S+\\s+${deployment.deploymentId}\\s+group \\S+\\s+${lastEvent}\\s+Succeeded$`));
    if (isRoot) {
      const asNobody = await runStatus([process.execPath, AGENT_BIN, 'status', '-c', config], { user: 'nobody' });
      expect(asNobody.exitCode).toBe(3);
    }
  });
});
