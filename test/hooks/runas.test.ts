import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { lookupUser } from '../../src/hooks/script-command.js';
import { ErrorCode } from '../../src/report/error-codes.js';
import { missingTool } from '../helpers/prerequisites.js';
import { makeTempDir } from '../helpers/tmp.js';
import { hookWorld, readPid, runHooks, runHooksFailing, scriptsLogText, writeScript, writeStubbornScript, type HookWorld } from './fixtures.js';
import { isAlive, processesInGroup, waitFor } from './proc.js';
import { useHookWorld } from './use-hook-world.js';

const isRoot = process.getuid?.() === 0;
const suffix = String(process.pid % 100000);
const user = `cdahook-u${suffix}`;
const group = `cdahook-g${suffix}`;
const home = `/home/${user}`;

function outputOf(log: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const match of log.matchAll(/\[stdout\](\w+)=(.*)$/gm)) values[match[1]] = match[2];
  return values;
}

describe.skipIf(!isRoot || missingTool('setpriv'))('runas', () => {
  const context = useHookWorld('cda-runas-');
  let world: HookWorld;
  let leftRunning: number[];

  beforeAll(() => {
    execFileSync('groupadd', [group]);
    // nologin: AWS's `su <user> -c` failed for such accounts.
    execFileSync('useradd', ['-m', '-s', '/usr/sbin/nologin', '-G', group, user]);
    mkdirSync(join(home, 'bin'), { recursive: true });
    writeFileSync(join(home, 'bin', 'cda-tool'), '#!/bin/sh\necho tool-found\n', { mode: 0o755 });
    appendFileSync(join(home, '.profile'), '\nexport CDA_PROFILE_VAR=from-profile\nPATH="$HOME/bin:$PATH"\n');
    const ids = execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim();
    chownSync(join(home, 'bin'), Number(ids), Number(ids));
  });

  afterAll(() => {
    try {
      execFileSync('userdel', ['-r', user], { stdio: 'ignore' });
    } catch {
      // best effort
    }
    try {
      execFileSync('groupdel', [group], { stdio: 'ignore' });
    } catch {
      // best effort
    }
  });

  beforeEach(() => {
    ({ world, leftRunning } = context);
  });

  const reportScript = [
    'echo "USER_NAME=$(id -un)"',
    'echo "GROUPS_LIST=$(id -Gn)"',
    'echo "HOME_DIR=$HOME"',
    'echo "PROFILE=$CDA_PROFILE_VAR"',
    'echo "TOOL=$(cda-tool)"',
    'echo "EVENT=$LIFECYCLE_EVENT"',
    'echo "DEPLOYMENT=$DEPLOYMENT_ID"',
    'echo "SECRET=${AWS_SECRET_ACCESS_KEY:-none}"',
    // The command name in /proc/<pid>/stat may contain spaces: take the fields after its ")".
    'stat=$(cat /proc/$$/stat); set -- ${stat##*) }; echo "IDS=$$ $3 $4"',
  ].join('\n');

  it('looks users up through NSS', async () => {
    const found = await lookupUser(user);
    expect(found).toMatchObject({ name: user, home, shell: '/usr/sbin/nologin' });
    expect(await lookupUser('cdahook-no-such-user')).toBeUndefined();
    expect(await lookupUser('-x')).toBeUndefined();
  });

  it('runs as the user with its home, groups, login profile and the hook variables, in our process group', async () => {
    writeScript(world, 'scripts/who am i.sh', reportScript);
    await runHooks(world, [{ location: 'scripts/who am i.sh', runas: user }], {
      baseEnv: { ...process.env, AWS_SECRET_ACCESS_KEY: 'agent-secret' },
    });
    const values = outputOf(scriptsLogText(world));
    expect(values.USER_NAME).toBe(user);
    expect(values.GROUPS_LIST.split(' ').sort()).toEqual([group, user].sort());
    expect(values.HOME_DIR).toBe(home);
    expect(values.PROFILE).toBe('from-profile');
    expect(values.TOOL).toBe('tool-found');
    expect(values.EVENT).toBe('BeforeInstall');
    expect(values.DEPLOYMENT).toBe('d-TEST12345');
    expect(values.SECRET).toBe('none');
    const [pid, pgid, sid] = values.IDS.split(' ').map(Number);
    expect(pgid).toBe(pid);
    expect(sid).toBe(pid);
  });

  it('fails clearly, before running anything, for an unknown user', async () => {
    const marker = join(world.root, 'ran');
    writeScript(world, 'scripts/x.sh', `touch ${marker}`);
    const error = await runHooksFailing(world, [{ location: 'scripts/x.sh', runas: 'cdahook-nobody' }]);
    expect(error.code).toBe(ErrorCode.ScriptFailed);
    expect(error.message).toBe('Script at specified location: scripts/x.sh run as user cdahook-nobody failed: user cdahook-nobody does not exist on this host; no script of BeforeInstall was run');
    expect(existsSync(marker)).toBe(false);
    expect(scriptsLogText(world)).not.toContain('Script - scripts/x.sh');
  });

  it('reports the runas user in a failure message', async () => {
    writeScript(world, 'scripts/fail.sh', 'exit 5');
    const error = await runHooksFailing(world, [{ location: 'scripts/fail.sh', runas: user }]);
    expect(error.message).toBe(`Script at specified location: scripts/fail.sh run as user ${user} failed with exit code 5`);
  });

  it('kills the whole tree of a runas script on timeout', async () => {
    const { pidFile, childFile } = writeStubbornScript(world, 'scripts/stubborn.sh');
    const started = Date.now();
    const error = await runHooksFailing(world, [{ location: 'scripts/stubborn.sh', runas: user, timeout: 1 }], { killGraceMs: 1000 });
    expect(Date.now() - started).toBeLessThan(2500);
    expect(error.code).toBe(ErrorCode.ScriptTimedOut);
    const pid = readPid(pidFile);
    const child = readPid(childFile);
    leftRunning.push(pid, child);
    expect(await waitFor(() => processesInGroup(pid).length === 0, 500)).toBe(true);
    expect(isAlive(child)).toBe(false);
  });

  it.skipIf(missingTool('sudo'))('runs with sudo, and with runas + sudo (sudo -u), keeping the hook variables', async () => {
    writeScript(world, 'scripts/report.sh', reportScript);
    await runHooks(world, [{ location: 'scripts/report.sh', sudo: true }]);
    let values = outputOf(scriptsLogText(world));
    expect(values.USER_NAME).toBe('root');
    expect(values.EVENT).toBe('BeforeInstall');
    expect(values.DEPLOYMENT).toBe('d-TEST12345');

    const second = makeTempDir('cda-runas-');
    chmodSync(second.dir, 0o755);
    try {
      const other = hookWorld(second.dir);
      writeScript(other, 'scripts/report.sh', reportScript);
      await runHooks(other, [{ location: 'scripts/report.sh', runas: user, sudo: true }]);
      values = outputOf(scriptsLogText(other));
      expect(values.USER_NAME).toBe(user);
      expect(values.HOME_DIR).toBe(home);
      expect(values.PROFILE).toBe('from-profile');
      expect(values.EVENT).toBe('BeforeInstall');
      const [pid, pgid, sid] = values.IDS.split(' ').map(Number);
      // sudo stays in between (it leads the group), but it opened no new session: the script is still
      // in the group we signal.
      expect(pgid).not.toBe(pid);
      expect(sid).toBe(pgid);
      expect(pgid).not.toBe(process.pid);
    } finally {
      second.cleanup();
    }
  });
});
