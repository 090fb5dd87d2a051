import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CliProcess } from '../helpers/follow-process.js';
import { runCli } from '../helpers/cli.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * `codedeploy-agent logs` end to end, with real local deployments: the list, one deployment's output,
 * `-f` following a deployment while its hook still runs (the hook waits for the test, so lines can only
 * have arrived live) and the next one after it, across scripts.log rotation, and as a user who may
 * or may not read the deployment root.
 */
const tmp = makeTempDir('cda-logs-');
afterAll(tmp.cleanup);
const children: CliProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) await child.kill();
});

const root = join(tmp.dir, 'root');
const configFile = join(tmp.dir, 'agent.yml');

beforeAll(() => {
  // A user without root reads the config and, when allowed, the root below it.
  chmodSync(tmp.dir, 0o755);
  writeAgentConfig(configFile, { root_dir: root, log_dir: join(tmp.dir, 'log'), pid_dir: join(tmp.dir, 'pid') });
  chmodSync(configFile, 0o644);
});

/** A folder bundle whose hooks run the given shell bodies. */
function bundle(name: string, hooks: Record<string, string>): string {
  const dir = join(tmp.dir, name);
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  let yaml = 'version: 0.0\nos: linux\nhooks:\n';
  for (const [event, body] of Object.entries(hooks)) {
    writeFileSync(join(dir, 'scripts', `${event}.sh`), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, 'scripts', `${event}.sh`), 0o755);
    yaml += `  ${event}:\n    - location: scripts/${event}.sh\n      timeout: 300\n`;
  }
  writeFileSync(join(dir, 'appspec.yml'), yaml);
  return dir;
}

const deploy = (args: string[], env: Record<string, string> = {}, config = configFile) => runCli(['deploy', '-c', config, ...args], { env });
const logs = (args: string[], config = configFile) => runCli(['logs', '-c', config, ...args]);
const idOf = (output: string) => /within folder \S+\/(d-\w+-local)/.exec(output)?.[1] as string;
const jsonLines = (text: string) => text.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);

/** Waits until a file holds `text` (a hook has printed that far). */
async function waitForFile(path: string, text: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(existsSync(path) && readFileSync(path, 'utf8').includes(text))) {
    if (Date.now() > deadline) throw new Error(`${path} never held ${text}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('logs: the recent deployments and one deployment\'s output', () => {
  let good: string;
  let bad: string;
  beforeAll(async () => {
    const first = await deploy(['-l', bundle('good', { BeforeInstall: 'echo "before install of good"', AfterInstall: 'echo "after install of good"; echo "to stderr" >&2' }), '-g', 'group-one', '-d', 'NameOne', '-a', 'AppOne']);
    expect(first.exitCode, first.all).toBe(0);
    good = idOf(first.stdout);
    const second = await deploy(['-l', bundle('bad', { BeforeInstall: 'echo fine', AfterInstall: 'echo "about to fail"; exit 3' }), '-g', 'group-two', '-d', 'NameTwo', '-a', 'AppTwo']);
    expect(second.exitCode).toBe(1);
    bad = idOf(second.stdout);
  });

  it('lists them, newest first, with group, application, result, start, duration, the failed event and code, and scripts.log', async () => {
    const text = await logs([]);
    expect(text.exitCode, text.stderr).toBe(0);
    const [header, newest, older] = text.stdout.trim().split('\n');
    expect(header).toMatch(/^DEPLOYMENT +GROUP +APPLICATION +RESULT +STARTED +DURATION +FAILED EVENT \/ NOW +SCRIPTS LOG$/);
    expect(newest).toMatch(new RegExp(`^${bad} +group-two \\(NameTwo\\) +AppTwo +Failed +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +(\\d+ms|\\d+(\\.\\d)?s) +AfterInstall: ScriptFailed \\(code 4\\) +${root}/group-two/${bad}/logs/scripts\\.log$`));
    expect(older).toMatch(new RegExp(`^${good} +group-one \\(NameOne\\) +AppOne +Succeeded .* ${root}/group-one/${good}/logs/scripts\\.log$`));

    const json = jsonLines((await logs(['--json'])).stdout);
    expect(json[0]).toMatchObject({
      deploymentId: bad, deploymentGroupId: 'group-two', deploymentGroupName: 'NameTwo', applicationName: 'AppTwo', origin: 'local',
      result: 'Failed', failedEvent: 'AfterInstall', errorCode: 4, errorName: 'ScriptFailed', scriptsLog: `${root}/group-two/${bad}/logs/scripts.log`,
    });
    expect(json[0].error).toMatch(/failed with exit code 3/);
    expect(json[0].durationSeconds).toEqual(expect.any(Number));
    expect(json[1]).toMatchObject({ deploymentId: good, result: 'Succeeded' });
    expect(json[1]).not.toHaveProperty('failedEvent');
  });

  it('--group takes a name or an id; --event keeps the deployments that ran that event', async () => {
    expect(jsonLines((await logs(['--json', '--group', 'NameTwo'])).stdout).map((d) => d.deploymentId)).toEqual([bad]);
    expect(jsonLines((await logs(['--json', '--group', 'group-one'])).stdout).map((d) => d.deploymentId)).toEqual([good]);
    expect((await logs(['--group', 'nobody'])).stdout).toContain('No deployments of nobody under');
    expect(jsonLines((await logs(['--json', '--event', 'afterinstall'])).stdout)).toHaveLength(2);
    expect((await logs(['--json', '--event', 'ValidateService'])).stdout).toBe('');
  });

  it('logs <id> prints its hook output; --event keeps one event\'s; --json one object a line', async () => {
    const all = await logs([good]);
    expect(all.exitCode).toBe(0);
    const lines = all.stdout.trim().split('\n').map((line) => line.slice(20));
    expect(lines).toEqual([
      'LifecycleEvent - BeforeInstall', 'Script - scripts/BeforeInstall.sh', '[stdout]before install of good',
      'LifecycleEvent - AfterInstall', 'Script - scripts/AfterInstall.sh', '[stdout]after install of good', '[stderr]to stderr',
    ]);
    const after = await logs([good, '--event', 'AfterInstall']);
    expect(after.stdout.trim().split('\n').map((line) => line.slice(20))).toEqual(lines.slice(3));
    const json = jsonLines((await logs([good, '--json', '--event', 'AfterInstall'])).stdout);
    expect(json[3]).toMatchObject({ deploymentId: good, event: 'AfterInstall', kind: 'stderr', script: 'scripts/AfterInstall.sh', text: 'to stderr' });
    expect(json[3].time).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });

  it('an unknown id: exit 1 and what to do; a folder retention removed: its output from the deployments log', async () => {
    const missing = await logs(['d-NOSUCH123']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain(`no deployment d-NOSUCH123 under ${root} (codedeploy-agent logs lists those there)`);

    const third = await deploy(['-l', bundle('gone', { BeforeInstall: 'echo "soon gone"' }), '-g', 'group-three']);
    const gone = idOf(third.stdout);
    rmSync(join(root, 'group-three', gone), { recursive: true });
    const fromDeploymentsLog = await logs([gone]);
    expect(fromDeploymentsLog.exitCode).toBe(0);
    expect(fromDeploymentsLog.stderr).toContain(`The folder of ${gone} is gone`);
    expect(fromDeploymentsLog.stdout).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[stdout\]soon gone$/m);
  });
});

describe('logs -f', () => {
  it('follows the running deployment live (lines arrive while its hook still runs), then the next one; Ctrl-C exits 0', async () => {
    const go = join(tmp.dir, 'go-live');
    const follow = new CliProcess(['logs', '-f', '-c', configFile]);
    children.push(follow);
    await follow.waitFor('No deployment is running; waiting for the next one', { stream: 'stderr' });

    const slow = bundle('slow', { BeforeInstall: `echo "first line"; while [ ! -f '${go}' ]; do sleep 0.1; done; echo "second line"` });
    const running = new CliProcess(['deploy', '-c', configFile, '-l', slow, '-g', 'follow-group', '-a', 'Slow']);
    children.push(running);
    await follow.waitFor(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[stdout\]first line$/m);
    // The hook is still waiting for the test: this line came while it ran.
    expect(running.running).toBe(true);
    expect(follow.stdout).not.toContain('second line');
    expect(follow.stdout).toMatch(/^==> d-\w+-local \(group follow-group \(LocalFleet\), application Slow\) <==$/m);
    writeFileSync(go, '');
    expect((await running.exited).exitCode, running.stdout + running.stderr).toBe(0);
    await follow.waitFor(/\[stdout\]second line\n/);
    await follow.waitFor(/^--- d-\w+-local: Succeeded after (\d+ms|\d+(\.\d)?s)$/m);

    // The next deployment, started after -f: followed from its first line.
    const next = await deploy(['-l', bundle('next', { AfterInstall: 'echo "next deployment line"' }), '-g', 'other-group']);
    await follow.waitFor(new RegExp(`==> ${idOf(next.stdout)} \\(group other-group \\(LocalFleet\\)[^\\n]*\\n[^\\n]*LifecycleEvent - AfterInstall\\n[^\\n]*Script - scripts/AfterInstall.sh\\n[^\\n]*\\[stdout\\]next deployment line`));

    follow.signal('SIGINT');
    expect(await follow.exited).toEqual({ exitCode: 0, signal: undefined });
  });

  it('started in the middle: the last lines so far, then what follows; --event keeps one event; --json', async () => {
    const go = join(tmp.dir, 'go-middle');
    const lines = Array.from({ length: 12 }, (_, index) => `echo "out ${String(index + 1).padStart(2, '0')}"`).join('; ');
    const dir = bundle('middle', {
      BeforeInstall: `${lines}; while [ ! -f '${go}' ]; do sleep 0.1; done`,
      AfterInstall: 'echo "after the wait"',
    });
    const running = new CliProcess(['deploy', '-c', configFile, '-l', dir, '-g', 'middle-group']);
    children.push(running);
    await running.waitFor(/within folder \S+\/d-\w+-local/);
    const scriptsLog = join(root, 'middle-group', idOf(running.stdout), 'logs', 'scripts.log');
    await waitForFile(scriptsLog, 'out 12');

    const follow = new CliProcess(['logs', '-f', '-c', configFile]);
    const afterInstallOnly = new CliProcess(['logs', '-f', '--event', 'AfterInstall', '--json', '-c', configFile]);
    children.push(follow, afterInstallOnly);
    await follow.waitFor('[stdout]out 12');
    expect(follow.stdout.match(/\[stdout\]out \d+/g)).toEqual(['03', '04', '05', '06', '07', '08', '09', '10', '11', '12'].map((n) => `[stdout]out ${n}`));
    writeFileSync(go, '');
    await follow.waitFor('[stdout]after the wait');
    await afterInstallOnly.waitFor('after the wait');
    const objects = jsonLines(afterInstallOnly.stdout);
    expect(objects.filter((object) => object.kind !== 'result').every((object) => object.event === 'AfterInstall')).toBe(true);
    expect(objects.map((object) => object.text)).toContain('after the wait');
    expect(await running.exited).toMatchObject({ exitCode: 0 });
  });

  it('across scripts.log rotation: every line once, in order, live and afterwards', async () => {
    const rotatingConfig = join(tmp.dir, 'rotating.yml');
    writeFileSync(rotatingConfig, `${readFileSync(configFile, 'utf8')}:scripts_log_max_bytes: 4096\n:scripts_log_max_files: 100\n`);
    const follow = new CliProcess(['logs', '-f', '-c', rotatingConfig]);
    children.push(follow);
    await follow.waitFor('waiting for the next one', { stream: 'stderr' });
    const dir = bundle('chatty', { BeforeInstall: 'i=1; while [ $i -le 600 ]; do printf "rot %04d padding padding padding\\n" $i; [ $((i % 50)) -eq 0 ] && sleep 0.2; i=$((i+1)); done' });
    const result = await deploy(['-l', dir, '-g', 'rotating-group'], {}, rotatingConfig);
    expect(result.exitCode, result.all).toBe(0);
    const id = idOf(result.stdout);
    expect(existsSync(join(root, 'rotating-group', id, 'logs', 'scripts.log.5'))).toBe(true);
    const expected = Array.from({ length: 600 }, (_, index) => `rot ${String(index + 1).padStart(4, '0')} padding padding padding`);
    await follow.waitFor('rot 0600');
    expect(follow.stdout.match(/rot \d{4} padding padding padding/g)).toEqual(expected);
    const printed = await logs([id], rotatingConfig);
    expect(printed.stdout.match(/rot \d{4} padding padding padding/g)).toEqual(expected);
  });
});

describe.skipIf(process.getuid?.() !== 0)('logs as a user without root', () => {
  const user = `cdalogs${process.pid % 100000}`;
  const otherGroup = `cdalogsg${process.pid % 100000}`;
  let uid: number;
  let gid: number;
  let id: string;
  beforeAll(async () => {
    execFileSync('useradd', ['--no-create-home', '--user-group', '--shell', '/bin/sh', user]);
    execFileSync('groupadd', [otherGroup]);
    uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
    gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }));
    const result = await deploy(['-l', bundle('private', { BeforeInstall: 'echo "private output"' }), '-g', 'private-group']);
    id = idOf(result.stdout);
  });
  afterAll(() => {
    execFileSync('chmod', ['-R', 'u+rwX', root]);
    execFileSync('userdel', [user]);
    execFileSync('groupdel', [otherGroup]);
  });
  const asUser = (args: string[]) => runCli(['logs', '-c', configFile, ...args], { uid, gid, env: { HOME: tmp.dir, USER: user } });

  it('a root only root reads: one line naming the folder and that only root can read it, exit 4', async () => {
    execFileSync('chown', ['-R', 'root:root', root]);
    chmodSync(root, 0o700);
    const result = await asUser([]);
    expect(result.exitCode).toBe(4);
    expect(result.stderr.trim().split('\n')).toEqual([
      `ERROR: cannot read ${root}: permission denied. The deployment logs are not readable by ${user}; run as root (sudo codedeploy-agent logs …): only root can read them`,
    ]);
    expect(result.stdout).toBe('');
  });

  it('a root its group reads: the message names the group; a member of it reads the list and the output', async () => {
    execFileSync('chgrp', [otherGroup, root]);
    chmodSync(root, 0o750);
    const refused = await asUser(['-f']);
    expect(refused.exitCode).toBe(4);
    expect(refused.stderr).toContain(`ERROR: cannot read ${root}: permission denied. The deployment logs are not readable by ${user}; run as root (sudo codedeploy-agent logs …) or as a member of the group ${otherGroup}, which can read ${root}`);

    execFileSync('chgrp', ['-R', user, root]);
    execFileSync('chmod', ['-R', 'g+rX', root]);
    const list = await asUser(['--json']);
    expect(list.exitCode, list.stderr).toBe(0);
    expect(jsonLines(list.stdout).map((deployment) => deployment.deploymentId)).toContain(id);
    const output = await asUser([id]);
    expect(output.stdout).toContain('[stdout]private output');

    // A scripts.log only root reads, in folders the user reads: that file is named.
    const scriptsLog = join(root, 'private-group', id, 'logs', 'scripts.log');
    execFileSync('chown', ['root:root', scriptsLog]);
    chmodSync(scriptsLog, 0o600);
    const file = await asUser([id]);
    expect(file.exitCode).toBe(4);
    expect(file.stderr).toContain(`ERROR: cannot read ${scriptsLog}: permission denied.`);
  });
});
