import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/report/error-codes.js';
import { readPid, runHooks, runHooksFailing, scriptsLogText, writeScript, writeStubbornScript, type HookWorld } from './fixtures.js';
import { isAlive, processesInGroup, waitFor } from './proc.js';
import { useHookWorld } from './use-hook-world.js';

const context = useHookWorld('cda-hooks-');
let world: HookWorld;
let leftRunning: number[];
beforeEach(() => {
  ({ world, leftRunning } = context);
});

describe('environment, paths and logging', () => {
  it('passes the hook variables and the agent environment, but not the agent credentials', async () => {
    writeScript(world, 'scripts/env.sh', 'env | sort\npwd');
    const baseEnv = {
      PATH: process.env.PATH,
      KEEP_ME: 'yes',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLEEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret-access-key-value',
      AWS_SESSION_TOKEN: 'session-token-value',
      AWS_ACCESS_KEY: 'onprem-access-key',
      AWS_SECRET_KEY: 'onprem-secret-key',
      AWS_CREDENTIALS_FILE: '/etc/codedeploy-agent/creds',
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/credentials/x',
      AWS_CONTAINER_AUTHORIZATION_TOKEN: 'container-token',
      BUNDLE_VERSION: 'stale',
    };
    await runHooks(world, [{ location: 'scripts/env.sh' }], {
      baseEnv,
      env: { LIFECYCLE_EVENT: 'BeforeInstall', DEPLOYMENT_ID: 'd-TEST12345', BUNDLE_BUCKET: 'bucket', BUNDLE_VERSION: undefined },
    });
    const log = scriptsLogText(world);
    expect(log).toContain('[stdout]LIFECYCLE_EVENT=BeforeInstall\n');
    expect(log).toContain('[stdout]DEPLOYMENT_ID=d-TEST12345\n');
    expect(log).toContain('[stdout]BUNDLE_BUCKET=bucket\n');
    expect(log).toContain('[stdout]KEEP_ME=yes\n');
    expect(log).toContain('[stdout]AWS_REGION=eu-west-1\n');
    expect(log).not.toContain('BUNDLE_VERSION');
    expect(log).not.toMatch(/AWS_ACCESS_KEY|AWS_SECRET|AWS_SESSION|AWS_CREDENTIALS|AWS_CONTAINER/);
    // The working directory is the agent's own, as in AWS's agent.
    expect(log).toContain(`[stdout]${process.cwd()}\n`);
  });

  it('writes scripts.log and the deployments log in AWS\'s formats', async () => {
    writeScript(world, 'scripts/hello.sh', 'echo hello\necho oops >&2');
    await runHooks(world, [{ location: 'scripts/hello.sh' }]);
    const lines = scriptsLogText(world).trimEnd().split('\n');
    const stamp = '\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d';
    expect(lines[0]).toMatch(new RegExp(`^${stamp} LifecycleEvent - BeforeInstall$`));
    expect(lines[1]).toMatch(new RegExp(`^${stamp} Script - scripts/hello.sh$`));
    expect(lines.slice(2).sort()).toEqual([expect.stringMatching(new RegExp(`^${stamp} \\[stderr\\]oops$`)), expect.stringMatching(new RegExp(`^${stamp} \\[stdout\\]hello$`))].sort());
    // Local time, as AWS's agent.
    const now = new Date();
    expect(lines[0].slice(0, 10)).toBe(`${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-${String(now.getDate()).padStart(2, '0')}`);
    const deployments = readFileSync(world.deploymentsLogPath, 'utf8').trimEnd().split('\n');
    expect(deployments[0]).toMatch(new RegExp(`^\\[${stamp}\\.\\d{3}\\] \\[d-TEST12345\\]LifecycleEvent - BeforeInstall$`));
    expect(deployments[1]).toMatch(/\[d-TEST12345\]Script - scripts\/hello.sh$/);
    expect(deployments).toContainEqual(expect.stringMatching(/\[d-TEST12345\]\[stdout\]hello$/));
  });

  it('treats a leading / as relative to the revision and runs paths with spaces and no shebang', async () => {
    writeFileSync(join(world.archiveDir, 'plain script.sh'), 'echo "from sh $0"\n', { mode: 0o755 });
    writeScript(world, 'scripts/a.sh', 'echo a');
    await runHooks(world, [{ location: '/scripts/a.sh' }, { location: 'plain script.sh' }]);
    const log = scriptsLogText(world);
    expect(log).toContain('[stdout]a\n');
    expect(log).toContain(`[stdout]from sh ${join(world.archiveDir, 'plain script.sh')}\n`);
  });

  it('fails with ScriptMissing (1) for a missing script', async () => {
    const error = await runHooksFailing(world, [{ location: 'scripts/nope.sh' }]);
    expect(error.code).toBe(ErrorCode.ScriptMissing);
    expect(error.scriptName).toBe('scripts/nope.sh');
    expect(error.message).toBe(`Script does not exist at specified location: ${join(world.archiveDir, 'scripts/nope.sh')}`);
  });

  it('refuses a location that leaves the revision with ..', async () => {
    const outside = join(world.root, 'outside.sh');
    writeFileSync(outside, `#!/bin/bash\ntouch ${join(world.root, 'ran')}\n`, { mode: 0o755 });
    const error = await runHooksFailing(world, [{ location: '../outside.sh' }]);
    expect(error.code).toBe(ErrorCode.ScriptMissing);
    expect(error.message).toContain('points outside the revision');
    expect(existsSync(join(world.root, 'ran'))).toBe(false);
  });

  it('makes a non-executable script executable, with AWS\'s warning', async () => {
    const path = writeScript(world, 'scripts/noexec.sh', 'echo ran', 0o644);
    await runHooks(world, [{ location: 'scripts/noexec.sh' }]);
    expect(statSync(path).mode & 0o111).toBe(0o111);
    const log = scriptsLogText(world);
    expect(log).toContain('Script at specified location: scripts/noexec.sh is not executable.  Trying to make it executable.');
    expect(log).toContain('[stdout]ran');
  });

  it('fails with ScriptNotExecutable (2) when the script cannot be made executable (a noexec file system)', async (test) => {
    // The revision folder becomes a noexec tmpfs: chmod +x succeeds there, yet nothing can execute.
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'noexec,size=1m', 'tmpfs', world.archiveDir], { stdio: 'pipe' });
    } catch (error) {
      console.warn(`cannot mount a tmpfs (${(error as Error).message.split('\n')[0]}); the ScriptNotExecutable test is skipped`);
      test.skip();
    }
    try {
      writeScript(world, 'scripts/start.sh', `touch ${join(world.root, 'ran')}`, 0o644);
      const error = await runHooksFailing(world, [{ location: 'scripts/start.sh' }]);
      expect(error.code).toBe(ErrorCode.ScriptNotExecutable);
      expect(error.scriptName).toBe('scripts/start.sh');
      expect(error.message).toBe('Unable to set script at specified location: scripts/start.sh as executable');
      expect(existsSync(join(world.root, 'ran'))).toBe(false);
    } finally {
      execFileSync('umount', [world.archiveDir]);
    }
  });

  it('fails with ScriptFailed (4) on a non-zero exit; later scripts do not run', async () => {
    writeScript(world, 'scripts/fail.sh', 'echo boom >&2\nexit 3');
    writeScript(world, 'scripts/next.sh', `touch ${join(world.root, 'next-ran')}`);
    const error = await runHooksFailing(world, [{ location: 'scripts/fail.sh' }, { location: 'scripts/next.sh' }]);
    expect(error.code).toBe(ErrorCode.ScriptFailed);
    expect(error.message).toBe('Script at specified location: scripts/fail.sh failed with exit code 3');
    expect(error.scriptName).toBe('scripts/fail.sh');
    expect(error.logTail).toBe('LifecycleEvent - BeforeInstall\nScript - scripts/fail.sh\n[stderr]boom\n');
    expect(existsSync(join(world.root, 'next-ran'))).toBe(false);
  });

  it('checks every runas user of the event before its first script runs', async () => {
    const marker = join(world.root, 'first-ran');
    writeScript(world, 'scripts/first.sh', `touch ${marker}`);
    writeScript(world, 'scripts/second.sh', 'echo second');
    const error = await runHooksFailing(world, [{ location: 'scripts/first.sh' }, { location: 'scripts/second.sh', runas: 'cdaaudit-no-such-user' }]);
    expect(error.code).toBe(ErrorCode.ScriptFailed);
    expect(error.scriptName).toBe('scripts/second.sh');
    expect(error.message).toBe(
      'Script at specified location: scripts/second.sh run as user cdaaudit-no-such-user failed: user cdaaudit-no-such-user does not exist on this host; no script of BeforeInstall was run',
    );
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(world.scriptsLogPath) ? scriptsLogText(world) : '').not.toContain('Script - ');
  });

  it('names the signal that killed a script', async () => {
    writeScript(world, 'scripts/segv.sh', 'kill -SEGV $$');
    const error = await runHooksFailing(world, [{ location: 'scripts/segv.sh' }]);
    expect(error.code).toBe(ErrorCode.ScriptFailed);
    expect(error.message).toBe('Script at specified location: scripts/segv.sh failed: killed by signal SIGSEGV');
  });

  it('reports a spawn error with its class and message', async () => {
    writeScript(world, 'scripts/inner/x.sh', 'true');
    const error = await runHooksFailing(world, [{ location: 'scripts/inner' }]);
    expect(error.code).toBe(ErrorCode.ScriptFailed);
    expect(error.message).toMatch(/^Script at specified location: scripts\/inner failed with error EACCES with message spawn .* EACCES$/);
  });

  it('keeps the last part of a long last line in the tail and strips ANSI escapes', async () => {
    writeScript(world, 'scripts/long.sh', `printf '\\033[31mred\\033[0m\\n'; head -c 5000 /dev/zero | tr '\\0' x; printf END`);
    const result = await runHooks(world, [{ location: 'scripts/long.sh' }]);
    expect(result.logTail).toHaveLength(2048);
    expect(result.logTail.endsWith('xxxxEND\n')).toBe(true);
    const short = await runHooks(world, [{ location: 'scripts/long.sh' }].slice(0, 0));
    expect(short.logTail).toBe('');
    writeScript(world, 'scripts/color.sh', `printf '\\033[1;32mgreen\\033[0m done\\n'`);
    const colored = await runHooks(world, [{ location: 'scripts/color.sh' }]);
    expect(colored.logTail).toContain('[stdout]green done\n');
    expect(scriptsLogText(world)).toContain('\u001b[1;32mgreen');
  });

  it('splits a very long line instead of buffering it', async () => {
    writeScript(world, 'scripts/wide.sh', `head -c 200000 /dev/zero | tr '\\0' y; echo`);
    await runHooks(world, [{ location: 'scripts/wide.sh' }]);
    const outputLines = scriptsLogText(world).split('\n').filter((line) => line.includes('[stdout]'));
    expect(outputLines.map((line) => line.split('[stdout]')[1].length)).toEqual([65536, 65536, 65536, 200000 - 3 * 65536]);
  });
});

describe('timeouts, background processes and shutdown', () => {
  it('kills a script that traps SIGTERM, and its whole group, within timeout + grace', async () => {
    const { pidFile, childFile } = writeStubbornScript(world, 'scripts/stubborn.sh');
    const started = Date.now();
    const error = await runHooksFailing(world, [{ location: 'scripts/stubborn.sh', timeout: 1 }], { killGraceMs: 1000 });
    const elapsed = Date.now() - started;
    expect(error.code).toBe(ErrorCode.ScriptTimedOut);
    expect(error.message).toBe('Script at specified location: scripts/stubborn.sh failed to complete in 1 seconds');
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(elapsed).toBeLessThan(2500);
    const pid = readPid(pidFile);
    const child = readPid(childFile);
    leftRunning.push(pid, child);
    expect(await waitFor(() => processesInGroup(pid).length === 0, 500)).toBe(true);
    expect(isAlive(child)).toBe(false);
    const log = scriptsLogText(world);
    expect(log).toContain('Script at specified location: scripts/stubborn.sh timed out');
    expect(log).toContain('its process group was killed (SIGKILL)');
    expect(error.logTail).toContain('timed out');
  });

  it('does not wait for SIGKILL when the group exits on SIGTERM', async () => {
    writeScript(world, 'scripts/slow.sh', 'sleep 30');
    const started = Date.now();
    const error = await runHooksFailing(world, [{ location: 'scripts/slow.sh', timeout: 1 }], { killGraceMs: 5000 });
    expect(error.code).toBe(ErrorCode.ScriptTimedOut);
    expect(Date.now() - started).toBeLessThan(1800);
    expect(scriptsLogText(world)).not.toContain('SIGKILL)');
  });

  it('succeeds when a background process still holds stdout and stderr, without killing it', async () => {
    const bgFile = join(world.root, 'bg');
    writeScript(world, 'scripts/start.sh', `sleep 30 &\necho $! > ${bgFile}\necho started`);
    const started = Date.now();
    const result = await runHooks(world, [{ location: 'scripts/start.sh', timeout: 60 }], { outputGraceMs: 1000 });
    const elapsed = Date.now() - started;
    const background = readPid(bgFile);
    leftRunning.push(background);
    expect(elapsed).toBeLessThan(2000);
    expect(isAlive(background)).toBe(true);
    const log = scriptsLogText(world);
    expect(log).toContain('[stdout]started');
    expect(log).toMatch(/Warning: script at specified location: scripts\/start.sh exited \(exit code 0\), but a background process it started still holds its STDOUT and STDERR open/);
    expect(log).toContain('> /var/log/my-daemon.log 2>&1 < /dev/null &');
    expect(result.logTail).toContain('background process');
  });

  it('judges a failing script with a background child by its exit code', async () => {
    const bgFile = join(world.root, 'bg');
    writeScript(world, 'scripts/start-fail.sh', `sleep 30 >/dev/null &\necho $! > ${bgFile}\nexit 3`);
    const started = Date.now();
    const error = await runHooksFailing(world, [{ location: 'scripts/start-fail.sh', timeout: 60 }], { outputGraceMs: 1000 });
    const background = readPid(bgFile);
    leftRunning.push(background);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error.code).toBe(ErrorCode.ScriptFailed);
    expect(error.message).toBe('Script at specified location: scripts/start-fail.sh failed with exit code 3');
    expect(isAlive(background)).toBe(true);
    // Only stderr was inherited by the background process.
    expect(scriptsLogText(world)).toMatch(/exited \(exit code 3\), but a background process it started still holds its STDERR open/);
  });

  it('does not warn when the background process redirected its output', async () => {
    const bgFile = join(world.root, 'bg');
    writeScript(world, 'scripts/good.sh', `sleep 30 > /dev/null 2>&1 < /dev/null &\necho $! > ${bgFile}`);
    const started = Date.now();
    await runHooks(world, [{ location: 'scripts/good.sh' }]);
    leftRunning.push(readPid(bgFile));
    expect(Date.now() - started).toBeLessThan(900);
    expect(scriptsLogText(world)).not.toContain('Warning');
  });

  it('stops the running script when the agent shuts down', async () => {
    const pidFile = join(world.root, 'pid');
    writeScript(world, 'scripts/long-running.sh', `echo $$ > ${pidFile}\ntrap '' TERM\nwhile true; do sleep 0.1; done`);
    writeScript(world, 'scripts/after.sh', `touch ${join(world.root, 'after-ran')}`);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 500);
    const started = Date.now();
    const error = await runHooksFailing(world, [{ location: 'scripts/long-running.sh', timeout: 60 }, { location: 'scripts/after.sh' }], {
      signal: controller.signal,
      killGraceMs: 500,
    });
    expect(Date.now() - started).toBeLessThan(1800);
    expect(error.code).toBe(ErrorCode.ScriptFailed);
    expect(error.message).toBe('Script at specified location: scripts/long-running.sh was stopped because the agent is shutting down');
    const pid = readPid(pidFile);
    leftRunning.push(pid);
    expect(await waitFor(() => processesInGroup(pid).length === 0, 500)).toBe(true);
    expect(existsSync(join(world.root, 'after-ran'))).toBe(false);
  });

  it('runs every script in its own process group', async () => {
    const file = join(world.root, 'ids');
    writeScript(world, 'scripts/ids.sh', `echo "$$ $(cut -d' ' -f5,6 /proc/$$/stat)" > ${file}`);
    await runHooks(world, [{ location: 'scripts/ids.sh' }]);
    const [pid, pgid, sid] = readFileSync(file, 'utf8').trim().split(' ').map(Number);
    expect(pgid).toBe(pid);
    expect(sid).toBe(pid);
    expect(pgid).not.toBe(process.pid);
  });
});
