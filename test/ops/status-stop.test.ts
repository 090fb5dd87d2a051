import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pidFilePath } from '../../src/agent/pid-file.js';
import { statusFilePath } from '../../src/agent/status-file.js';
import { AGENT_VERSION } from '../../src/version.js';
import { runCli } from '../helpers/cli.js';
import { makeFakeAgent, snapshotFor, type FakeAgent } from './fake-daemon.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => { while (cleanups.length) await cleanups.pop()!(); });

async function fakeAgent(options: { start?: boolean; ignoreTerm?: boolean } = {}): Promise<FakeAgent> {
  const fake = makeFakeAgent();
  cleanups.push(() => fake.cleanup());
  if (options.start !== false) await fake.start({ ignoreTerm: options.ignoreTerm });
  return fake;
}

describe('codedeploy-agent status', () => {
  it('describes a running agent: pid, version, uptime, identity, polls, errors, in-flight, downloads, recent', async () => {
    const fake = await fakeAgent();
    fake.writeSnapshot(snapshotFor(fake.pid!, { version: AGENT_VERSION }));
    const result = await runCli(['status', '-c', fake.configFile]);
    expect(result.exitCode).toBe(0);
    const out = result.stdout;
    expect(out).toContain(`The AWS CodeDeploy agent is running as PID ${fake.pid}`);
    expect(out).toMatch(new RegExp(`version\\s+${AGENT_VERSION.replace(/\./g, '\\.')}\\n`));
    expect(out).toMatch(/uptime\s+1h 02m/);
    expect(out).toContain('arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0');
    expect(out).toMatch(/region\s+us-east-1/);
    expect(out).toContain('https://codedeploy-commands.us-east-1.amazonaws.com');
    expect(out).toMatch(/last successful poll\s+\S+ \(\d+s ago\)/);
    expect(out).toMatch(/last error\s+PollHostCommand: ThrottlingException: Rate exceeded \(at .*\(10m 0\ds ago\)\)/);
    expect(out).toMatch(/In-flight commands \(1\):\n\s+d-ABCDEFGHI\s+group web-fleet\s+event AfterInstall\s+script scripts\/migrate\.sh\s+running for 1m 0\ds/);
    expect(out).toMatch(/d-ABCDEFGHI\s+50\.0 MiB of 200\.0 MiB \(25%\), 10\.0 MiB\/s, 15s left/);
    expect(out).toMatch(/d-PREVIOUS1\s+group dg-1234\s+ValidateService\s+Failed \(error code 4\): Script at specified location/);
  });

  it('--json holds every field, elapsed times and unknown snapshot fields', async () => {
    const fake = await fakeAgent();
    fake.writeSnapshot({ ...snapshotFor(fake.pid!), futureField: 'kept' } as ReturnType<typeof snapshotFor>);
    const result = await runCli(['status', '--json', '-c', fake.configFile]);
    expect(result.exitCode).toBe(0);
    const report = JSON.parse(String(result.stdout));
    expect(report).toMatchObject({
      status: 'running', exitCode: 0, pid: fake.pid, version: '0.1.0', cliVersion: AGENT_VERSION, state: 'polling',
      hostIdentifier: 'arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0', region: 'us-east-1',
      endpoint: 'https://codedeploy-commands.us-east-1.amazonaws.com', futureField: 'kept',
      pidFile: pidFilePath(fake.pidDir), statusFile: statusFilePath(fake.pidDir),
      lastError: { message: 'PollHostCommand: ThrottlingException: Rate exceeded' },
      recent: [{ deploymentId: 'd-PREVIOUS1', status: 'Failed', errorCode: 4 }],
      downloads: [{ deploymentId: 'd-ABCDEFGHI', total: 200 * 1024 * 1024 }],
    });
    expect(report.uptimeSeconds).toBeGreaterThanOrEqual(3725);
    expect(report.inFlight).toHaveLength(1);
    expect(report.inFlight[0]).toMatchObject({ deploymentId: 'd-ABCDEFGHI', deploymentGroupId: 'dg-1234', event: 'AfterInstall', script: 'scripts/migrate.sh' });
    expect(report.inFlight[0].elapsedSeconds).toBeGreaterThanOrEqual(65);
    expect(report.inFlight[0].elapsedSeconds).toBeLessThan(120);
  });

  it('says when the running daemon is older than the installed CLI', async () => {
    const fake = await fakeAgent();
    fake.writeSnapshot(snapshotFor(fake.pid!, { version: '0.0.9' }));
    const result = await runCli(['status', '-c', fake.configFile]);
    expect(result.stdout).toContain(`0.0.9 (installed: ${AGENT_VERSION}; restart the agent to use it)`);
  });

  it('is running (state starting) before the daemon wrote a status, and ignores a status of an earlier run', async () => {
    const fake = await fakeAgent();
    fake.writeSnapshot(snapshotFor(999_999));
    const result = await runCli(['status', '--json', '-c', fake.configFile]);
    expect(result.exitCode).toBe(0);
    const report = JSON.parse(String(result.stdout));
    expect(report).toMatchObject({ status: 'running', pid: fake.pid, state: 'starting', inFlight: [], recent: [] });
    expect(report.hostIdentifier).toBeUndefined();
    expect(report.uptimeSeconds).toBeLessThan(60);
  });

  it('exits 3 when no pid file exists, or it is stale, and leaves the stale file alone', async () => {
    const fake = await fakeAgent({ start: false });
    let result = await runCli(['status', '-c', fake.configFile]);
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toContain(`No AWS CodeDeploy agent running (no pid file at ${pidFilePath(fake.pidDir)})`);

    const gone = spawn(process.execPath, ['-e', '0', 'codedeploy-agent']);
    await new Promise((resolve) => gone.once('exit', resolve));
    mkdirSync(fake.pidDir, { recursive: true });
    writeFileSync(pidFilePath(fake.pidDir), `${gone.pid}\n`);
    fake.writeSnapshot(snapshotFor(gone.pid!, { lastError: { at: new Date().toISOString(), message: 'out of memory' } }));
    result = await runCli(['status', '--json', '-c', fake.configFile]);
    expect(result.exitCode).toBe(3);
    const report = JSON.parse(String(result.stdout));
    expect(report).toMatchObject({ status: 'not-running', exitCode: 3, stalePid: gone.pid, previousRun: { pid: gone.pid, lastError: { message: 'out of memory' } } });
    expect(existsSync(pidFilePath(fake.pidDir))).toBe(true);
    result = await runCli(['status', '-c', fake.configFile]);
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toContain('no codedeploy-agent process with that pid is running');
    expect(result.stdout).toContain('last error before it stopped: out of memory');
  });

  it('exits 4 when the running agent\'s status cannot be read or the config is missing', async () => {
    const fake = await fakeAgent();
    writeFileSync(statusFilePath(fake.pidDir), '{"pid": ');
    let result = await runCli(['status', '-c', fake.configFile]);
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toContain(`running as PID ${fake.pid}, but what it is doing is unknown`);
    expect(result.stderr).toContain('is not valid JSON');
    result = await runCli(['status', '--json', '-c', fake.configFile]);
    expect(result.exitCode).toBe(4);
    expect(JSON.parse(String(result.stdout))).toMatchObject({ status: 'unknown', exitCode: 4, pid: fake.pid });

    result = await runCli(['status', '--json', '-c', join(fake.dir, 'missing.yml')]);
    expect(result.exitCode).toBe(4);
    expect(JSON.parse(String(result.stdout))).toMatchObject({ status: 'unknown', message: expect.stringContaining('does not exist or is not readable') });
  });

  it.skipIf(process.getuid?.() !== 0)('works for a non-root user (reads only the pid file and the 0644 status file)', async () => {
    const fake = await fakeAgent();
    fake.writeSnapshot(snapshotFor(fake.pid!));
    chmodSync(fake.dir, 0o755);
    chmodSync(fake.configFile, 0o644);
    const result = await runCli(['status', '--json', '-c', fake.configFile], { uid: 65534, gid: 65534 });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(String(result.stdout))).toMatchObject({ status: 'running', pid: fake.pid, inFlight: [{ deploymentId: 'd-ABCDEFGHI' }] });
  });
});

describe('codedeploy-agent stop', () => {
  it('sends SIGTERM to the agent and waits for it to exit', async () => {
    const fake = await fakeAgent();
    fake.writeSnapshot(snapshotFor(fake.pid!));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => fake.child!.once('exit', (_code, signal) => resolve(signal)));
    const result = await runCli(['stop', '-c', fake.configFile]);
    expect(result.exitCode).toBe(0);
    expect(await exited).toBe('SIGTERM');
    expect(result.stdout).toContain(`Sent SIGTERM to the AWS CodeDeploy agent (PID ${fake.pid})`);
    expect(result.stdout).toContain('finishes 1 in-flight lifecycle event(s) before it exits');
    expect(result.stdout).toContain('d-ABCDEFGHI AfterInstall (scripts/migrate.sh)');
    expect(result.stdout).toMatch(new RegExp(`Stopped the AWS CodeDeploy agent \\(PID ${fake.pid}\\) in \\d+s`));
  });

  it('says so when nothing runs, and cleans up a stale pid file', async () => {
    const fake = await fakeAgent({ start: false });
    let result = await runCli(['stop', '-c', fake.configFile]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('Nothing running that could be stopped (no pid file at');
    mkdirSync(fake.pidDir, { recursive: true });
    writeFileSync(pidFilePath(fake.pidDir), '');
    result = await runCli(['stop', '-c', fake.configFile]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('is empty - cleaned up');
    expect(existsSync(pidFilePath(fake.pidDir))).toBe(false);
  });

  it('gives up at --timeout with a clear message when the agent keeps running', async () => {
    const fake = await fakeAgent({ ignoreTerm: true });
    const result = await runCli(['stop', '-c', fake.configFile, '--timeout', '1']);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain(`The agent (PID ${fake.pid}) is still running after 1s`);
    expect(fake.child!.exitCode).toBeNull();
  });
});
