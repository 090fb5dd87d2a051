/**
 * `codedeploy-agent start` and `restart` as AWS's command takes them. Without systemd (this machine's
 * PID 1 is not systemd): `start` launches the real daemon in the background against the commands-service
 * double and waits for its first poll, saying how it went (exit 0, 75, 1). With systemd: a fake
 * `systemctl` first on PATH records what it was asked and does what systemd would (start the daemon,
 * stop it with SIGTERM, say whether it is active); real-systemd scenarios live with the systemd tests.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkPidFile, isAgentProcess } from '../../src/agent/pid-file.js';
import type { StatusSnapshot } from '../../src/agent/status-snapshot.js';
import { firstPollOf, systemdRunsHost } from '../../src/cli/start.js';
import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
import { AGENT_BIN, runCli } from '../helpers/cli.js';

const HOST = 'arn:aws:iam::123456789012:user/onprem-start';

describe('start: what the status file says about the first poll', () => {
  const base: StatusSnapshot = { pid: 42, version: '0.1.0', startedAt: '', updatedAt: '', inFlight: [], recent: [], downloads: [], state: 'polling', endpoint: 'https://x/' };
  const now = new Date('2025-05-01T12:00:10Z');
  it('waits for its own agent, and judges a success, a failure or a poll the service holds', () => {
    expect(firstPollOf(undefined, 42, now)).toEqual({ state: 'waiting' });
    expect(firstPollOf({ ...base, pid: 41, lastSuccessfulPollAt: '2025-05-01T12:00:09Z' }, 42, now)).toEqual({ state: 'waiting' });
    expect(firstPollOf({ ...base, lastSuccessfulPollAt: '2025-05-01T12:00:09Z' }, 42, now)).toEqual({ state: 'polled', message: 'its first poll of the commands service (https://x/) succeeded' });
    expect(firstPollOf({ ...base, lastError: { at: '', message: 'boom' } }, 42, now)).toEqual({ state: 'failed', message: 'its first poll failed: boom' });
    expect(firstPollOf({ ...base, firstPollStartedAt: '2025-05-01T12:00:08Z' }, 42, now)).toEqual({ state: 'waiting' });
    expect(firstPollOf({ ...base, firstPollStartedAt: '2025-05-01T12:00:04Z' }, 42, now).state).toBe('polled');
  });

  it('asks systemd only when told to or when /run/systemd/system exists', () => {
    expect(systemdRunsHost('yes', () => false)).toBe(true);
    expect(systemdRunsHost('no', () => true)).toBe(false);
    expect(systemdRunsHost('auto', () => true)).toBe(true);
    expect(systemdRunsHost('auto', () => false)).toBe(false);
  });
});

describe('start, restart (real daemon, commands-service double)', () => {
  useDaemonWorld('start');
  const env = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: world.dir, AWS_EC2_METADATA_DISABLED: 'true', LANG: 'C.UTF-8' });

  // One host for the file: each test registers and configures it as it needs.
  beforeAll(() => {
    newWorld({}, { iamUser: { arn: HOST } });
  });
  /** Whatever a test left running is ended by its pid (from the pid file this world's agents write). */
  afterEach(async () => {
    const state = checkPidFile(world.pidDir);
    if (state.state === 'running') {
      process.kill(state.pid, 'SIGKILL');
      while (isAgentProcess(state.pid) === true) await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  function cli(args: string[], extraEnv: Record<string, string> = {}) {
    return runCli([...args, '-c', world.configFile], { env: { ...env(), ...extraEnv }, extendEnv: false });
  }

  it('without systemd: starts the daemon in the background, waits for its first poll; start again and restart say what they do', async () => {
    world.useIamUser(HOST);
    world.writeConfig(service.url);
    const started = await cli(['start', '--systemd', 'no']);
    expect(started.exitCode, started.all).toBe(0);
    const pid = Number(/in the background \(PID (\d+)\)/.exec(started.stdout)?.[1]);
    expect(started.stdout).toContain(`The AWS CodeDeploy agent is running as PID ${pid}: its first poll of the commands service (${service.url}/) succeeded.`);
    // It outlives the command that started it, in a session of its own.
    expect(isAgentProcess(pid)).toBe(true);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
    expect(Number(stat[3])).toBe(pid); // session id: it leads its own session
    expect((await cli(['status'])).exitCode).toBe(0);

    const again = await cli(['start', '--systemd', 'no']);
    expect(again.exitCode).toBe(0);
    expect(again.stdout.trim()).toBe(`The AWS CodeDeploy agent is already running as PID ${pid}`);

    const restarted = await cli(['restart', '--systemd', 'no']);
    expect(restarted.exitCode, restarted.all).toBe(0);
    expect(restarted.stdout).toContain(`Stopped the AWS CodeDeploy agent (PID ${pid})`);
    const newPid = Number(/in the background \(PID (\d+)\)/.exec(restarted.stdout)?.[1]);
    expect(newPid).not.toBe(pid);
    expect(restarted.stdout).toContain(`The AWS CodeDeploy agent is running as PID ${newPid}: its first poll`);
    expect(isAgentProcess(pid)).toBe(false);

    const stopped = await cli(['stop']);
    expect(stopped.exitCode).toBe(0);
    expect(isAgentProcess(newPid)).toBe(false);
  });

  it('exits 75 when the agent runs but its first poll fails (it keeps retrying), and 1 with its log when it exits', async () => {
    world.useIamUser(HOST, { accessKeyId: 'AKIAUNKNOWNHOST00001', secretAccessKey: 'unknownHostSecret/0123456789abcdefghij' });
    world.writeConfig(service.url);
    const refused = await cli(['start', '--systemd', 'no']);
    expect(refused.exitCode, refused.all).toBe(75);
    const pid = Number(/in the background \(PID (\d+)\)/.exec(refused.stdout)?.[1]);
    expect(refused.stdout).toMatch(new RegExp(`The AWS CodeDeploy agent is running as PID ${pid}, but its first poll failed: PollHostCommand: \\w+ \\(HTTP 4\\d\\d\\)`));
    expect(refused.stdout).toContain('It keeps retrying; `codedeploy-agent status`');
    expect(isAgentProcess(pid)).toBe(true);
    expect((await cli(['stop'])).exitCode).toBe(0);

    // The daemon cannot claim its pid file (pid_dir is a file): it exits, and start shows why.
    world.useIamUser(HOST);
    const blocker = join(world.dir, 'not-a-folder');
    writeFileSync(blocker, '');
    world.writeConfig(service.url, { pid_dir: join(blocker, 'pid') });
    const failed = await runCli(['start', '--systemd', 'no', '-c', world.configFile], { env: env(), extendEnv: false });
    expect(failed.exitCode, failed.all).toBe(1);
    expect(failed.stdout).toMatch(/The AWS CodeDeploy agent \(PID \d+\) exited with code 1 before its first poll\./);
    expect(failed.stdout).toContain(`The last lines of ${join(world.logDir, 'codedeploy-agent.log')}:`);
    expect(failed.stdout).toMatch(/ERROR .*not-a-folder/);
  });

  it('with systemd: goes through systemctl start / restart codedeploy-agent, then waits for the first poll', async () => {
    world.useIamUser(HOST);
    world.writeConfig(service.url);
    const bin = join(world.dir, 'fake-bin');
    const calls = join(world.dir, 'systemctl-calls.txt');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(bin, { recursive: true });
    // What systemd would do for this unit, reduced to this test: ExecStart is `codedeploy-agent run`.
    writeFileSync(join(bin, 'systemctl'), `#!/bin/sh
echo "$*" >> '${calls}'
mainpid='${join(world.dir, 'fake-systemd-mainpid')}'
running() { tr '\\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q codedeploy-agent; }
alive() { [ -f "$mainpid" ] && running "$(cat "$mainpid")"; }
launch() { setsid '${process.execPath}' '${AGENT_BIN}' run -c '${world.configFile}' >/dev/null 2>&1 < /dev/null & echo $! > "$mainpid"; }
case "$1" in
  start) [ -n "$FAKE_SYSTEMCTL_FAIL" ] && { echo "Job for codedeploy-agent.service failed." >&2; exit 1; }; alive || launch ;;
  restart) if alive; then pid=$(cat "$mainpid"); kill -TERM "$pid"; while running "$pid"; do sleep 0.1; done; fi; launch ;;
  is-active) alive ;;
  *) exit 2 ;;
esac
`);
    chmodSync(join(bin, 'systemctl'), 0o755);
    const withFake = { PATH: `${bin}:${process.env.PATH}` };

    const started = await cli(['start', '--systemd', 'yes'], withFake);
    expect(started.exitCode, started.all).toBe(0);
    expect(started.stdout).toContain('Starting the AWS CodeDeploy agent: systemctl start codedeploy-agent');
    const pid = Number(/running as PID (\d+): its first poll/.exec(started.stdout)?.[1]);
    expect(isAgentProcess(pid)).toBe(true);

    const restarted = await cli(['restart', '--systemd', 'yes'], withFake);
    expect(restarted.exitCode, restarted.all).toBe(0);
    const newPid = Number(/running as PID (\d+): its first poll/.exec(restarted.stdout)?.[1]);
    expect(newPid).not.toBe(pid);
    expect(isAgentProcess(pid)).toBe(false);
    const recorded = readFileSync(calls, 'utf8').trim().split('\n');
    expect(recorded[0]).toBe('start codedeploy-agent');
    expect(recorded).toContain('restart codedeploy-agent');
    expect(recorded.every((line) => /^(start|restart|is-active --quiet) codedeploy-agent$/.test(line))).toBe(true);
    expect((await cli(['stop'])).exitCode).toBe(0);

    const refused = await cli(['start', '--systemd', 'yes'], { ...withFake, FAKE_SYSTEMCTL_FAIL: '1' });
    expect(refused.exitCode).toBe(1);
    expect(refused.stdout).toContain('systemctl start codedeploy-agent failed (exit code 1); `systemctl status codedeploy-agent` and `journalctl -u codedeploy-agent` say why.');
  });
});
