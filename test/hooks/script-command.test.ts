import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildHookEnvironment, isCredentialVariable } from '../../src/hooks/hook-environment.js';
import { buildScriptCommand, EXEC_SCRIPT, loginEnvironment, loginPath, loginShellFor, type HostUser } from '../../src/hooks/script-command.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('buildHookEnvironment', () => {
  it('removes the agent credentials and applies the hook variables (undefined removes)', () => {
    const env = buildHookEnvironment(
      {
        PATH: '/usr/bin',
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'a',
        AWS_SECRET_ACCESS_KEY: 'b',
        AWS_SESSION_TOKEN: 'c',
        AWS_ACCESS_KEY: 'd',
        AWS_SECRET_KEY: 'e',
        AWS_CREDENTIAL_FILE: 'f',
        AWS_CREDENTIALS_FILE: 'g',
        AWS_CONTAINER_CREDENTIALS_FULL_URI: 'h',
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: 'i',
        BUNDLE_VERSION: 'old',
        UNSET: undefined,
      },
      { LIFECYCLE_EVENT: 'AfterInstall', BUNDLE_VERSION: undefined, BUNDLE_ETAG: 'etag' },
    );
    expect(env).toEqual({ PATH: '/usr/bin', AWS_REGION: 'us-east-1', LIFECYCLE_EVENT: 'AfterInstall', BUNDLE_ETAG: 'etag' });
    expect(isCredentialVariable('AWS_PROFILE')).toBe(false);
  });
});

const appUser: HostUser = { name: 'app', uid: 1001, gid: 1002, home: '/home/app', shell: '/usr/sbin/nologin' };
const vars = { LIFECYCLE_EVENT: 'Start', DEPLOYMENT_ID: 'd-1', BUNDLE_VERSION: undefined };
const hookEnv = { PATH: '/agent/bin', LANG: 'C.UTF-8', LC_ALL: 'C', KEEP: 'x', LIFECYCLE_EVENT: 'Start', DEPLOYMENT_ID: 'd-1', HOME: '/root' };

describe('buildScriptCommand', () => {
  it('execs the script directly, without a shell', () => {
    expect(buildScriptCommand({ scriptPath: '/a b/x.sh', hookEnv, vars, sudo: false, agentUid: 0 })).toEqual({ command: '/a b/x.sh', args: [], env: hookEnv });
  });

  it('sudo: sudo -n, keeping the hook variables', () => {
    const command = buildScriptCommand({ scriptPath: '/x.sh', hookEnv, vars, sudo: true, agentUid: 1000 });
    expect(command.command).toMatch(/sudo$/);
    expect(command.args).toEqual(['-n', '--preserve-env=LIFECYCLE_EVENT,DEPLOYMENT_ID', '--', '/x.sh']);
  });

  it('runas as root: setpriv with the user ids and groups, then a login shell that execs the path given as $0', () => {
    const command = buildScriptCommand({ scriptPath: '/a b/x.sh', hookEnv, vars, runas: appUser, sudo: false, agentUid: 0 });
    expect(command.command).toMatch(/setpriv$/);
    const shell = loginShellFor(appUser);
    expect(command.args).toEqual(['--reuid', '1001', '--regid', '1002', '--init-groups', '--', shell, '-l', '-c', EXEC_SCRIPT, '/a b/x.sh']);
    expect(command.env).toEqual({
      LANG: 'C.UTF-8',
      LC_ALL: 'C',
      HOME: '/home/app',
      USER: 'app',
      LOGNAME: 'app',
      SHELL: shell,
      PATH: loginPath(1001),
      LIFECYCLE_EVENT: 'Start',
      DEPLOYMENT_ID: 'd-1',
    });
  });

  it('runas + sudo: sudo -n -H -u <user> with a login shell', () => {
    const command = buildScriptCommand({ scriptPath: '/x.sh', hookEnv, vars, runas: appUser, sudo: true, agentUid: 1000 });
    expect(command.args).toEqual(['-n', '-H', '-u', 'app', '--preserve-env=LIFECYCLE_EVENT,DEPLOYMENT_ID', '--', loginShellFor(appUser), '-l', '-c', EXEC_SCRIPT, '/x.sh']);
  });

  it('runas as the agent user itself needs no switch; another user needs root or sudo', () => {
    const same = buildScriptCommand({ scriptPath: '/x.sh', hookEnv, vars, runas: appUser, sudo: false, agentUid: 1001 });
    expect(same.command).toBe(loginShellFor(appUser));
    expect(same.args).toEqual(['-l', '-c', EXEC_SCRIPT, '/x.sh']);
    expect(() => buildScriptCommand({ scriptPath: '/x.sh', hookEnv, vars, runas: appUser, sudo: false, agentUid: 1000 })).toThrow(/set "sudo: true"/);
  });
});

describe('login details', () => {
  it('replaces a nologin or non-POSIX shell, keeps a POSIX one', () => {
    expect(loginShellFor({ ...appUser, shell: '/usr/sbin/nologin' })).toMatch(/\/(bash|sh)$/);
    expect(loginShellFor({ ...appUser, shell: '/usr/bin/fish' })).toMatch(/\/(bash|sh)$/);
    expect(loginShellFor({ ...appUser, shell: '/bin/sh' })).toBe('/bin/sh');
  });

  it('reads ENV_PATH / ENV_SUPATH from login.defs', () => {
    const { dir, cleanup } = makeTempDir();
    try {
      const defs = join(dir, 'login.defs');
      writeFileSync(defs, '# comment\nENV_SUPATH\tPATH=/root/sbin:/usr/bin\nENV_PATH PATH=/user/bin:/usr/bin\n');
      expect(loginPath(0, defs)).toBe('/root/sbin:/usr/bin');
      expect(loginPath(1000, defs)).toBe('/user/bin:/usr/bin');
      expect(loginPath(1000, join(dir, 'missing'))).toBe('/usr/local/bin:/usr/bin:/bin');
    } finally {
      cleanup();
    }
  });

  it('a login environment keeps only TERM, locale and TZ from the agent', () => {
    const env = loginEnvironment(appUser, '/bin/bash', { TERM: 'xterm', TZ: 'UTC', SECRET_THING: 'x', PATH: '/agent' }, { A: 'b', C: undefined });
    expect(env).toEqual({ TERM: 'xterm', TZ: 'UTC', HOME: '/home/app', USER: 'app', LOGNAME: 'app', SHELL: '/bin/bash', PATH: loginPath(1001), A: 'b' });
  });
});
