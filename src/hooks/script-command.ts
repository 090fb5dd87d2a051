import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { definedVariableNames } from './hook-environment.js';
import { isExecutable } from './script-path.js';
import { lookupAccountEntry } from '../util/host-accounts.js';
import { toolCommand } from '../util/find-tool.js';

/**
 * How a hook script is started: directly, with `sudo`, or as its appspec `runas` user.
 *
 * The anchor ran `su <user> -c <path>` (agent-spec §6.2 step 3, §10.3): a plain shell string (paths
 * with spaces broke), the target's login shell (`nologin` accounts failed), no profile (users'
 * PATH additions such as npm were missing, users-and-peers theme 10), and util-linux `su -c` moves the
 * command into a new session, so the process-group SIGTERM on timeout only reached `su`.
 *
 * Here `runas` runs the script through `setpriv` (util-linux): it switches uid, gid and the user's
 * supplementary groups and then execs — no extra process, no new session, no PAM session (which could
 * move the script into a logind scope outside the agent's cgroup), so the script stays in the process
 * group the agent created for it. A POSIX login shell (`<shell> -l -c 'exec "$0"' <path>`) reads
 * /etc/profile and the user's profile first; the path is passed as an argument, never interpolated
 * into the shell text. A `nologin`/`false` shell is replaced by bash (or sh).
 *
 * The environment under `runas` is that of a login (`su -l` / `runuser -l`): HOME, USER, LOGNAME,
 * SHELL and PATH (from /etc/login.defs) for that user, plus TERM, the locale and TZ of the agent and
 * the hook variables; the rest of the agent's environment is not passed. The working directory is the
 * agent's own (like the anchor), not the user's home.
 *
 * `sudo: true` keeps the anchor's meaning — `sudo <path>`, or with `runas` `sudo -u <user>` — for agents
 * that do not run as root. `-n` makes a password prompt an immediate failure (stdin is not a terminal),
 * and the hook variables are passed with `--preserve-env=` (sudoers must allow it; `ALL` implies
 * SETENV). sudo resets the rest of the environment as its policy says.
 */

export interface HostUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface ScriptCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
}

const POSIX_SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'ksh93', 'mksh', 'ash', 'yash']);

/** What the login shell runs: the script path arrives as `$0`, so it is never parsed as shell text. */
export const EXEC_SCRIPT = 'exec "$0"';

function parsePasswdLine(line: string): HostUser | undefined {
  const fields = line.trim().split(':');
  if (fields.length < 7) return undefined;
  const [name, , uid, gid, , home, shell] = fields;
  const uidNumber = Number(uid);
  const gidNumber = Number(gid);
  if (!name || !Number.isInteger(uidNumber) || !Number.isInteger(gidNumber)) return undefined;
  return { name, uid: uidNumber, gid: gidNumber, home: home || '/', shell: shell || '/bin/sh' };
}

/**
 * The passwd entry of `name` through NSS (`getent`, so LDAP/SSSD users work), falling back to
 * /etc/passwd where `getent` is missing. Undefined when there is no such user.
 */
export async function lookupUser(name: string, timeoutMs = 15_000): Promise<HostUser | undefined> {
  const entry = await lookupAccountEntry('passwd', name, timeoutMs);
  return entry === undefined ? undefined : parsePasswdLine(entry);
}

/** The user's own shell when it is a POSIX shell we can hand `-l -c` to; bash or sh otherwise (nologin, fish, csh). */
export function loginShellFor(user: HostUser): string {
  if (POSIX_SHELLS.has(basename(user.shell)) && isExecutable(user.shell)) return user.shell;
  return ['/bin/bash', '/usr/bin/bash', '/bin/sh'].find(isExecutable) ?? '/bin/sh';
}

/** `ENV_PATH` / `ENV_SUPATH` from /etc/login.defs, as su -l sets them; util-linux defaults otherwise. */
export function loginPath(uid: number, loginDefs = '/etc/login.defs'): string {
  const key = uid === 0 ? 'ENV_SUPATH' : 'ENV_PATH';
  try {
    for (const line of readFileSync(loginDefs, 'utf8').split('\n')) {
      const match = /^\s*(\S+)\s+(\S+)\s*$/.exec(line);
      if (match?.[1] === key) return match[2].replace(/^PATH=/, '');
    }
  } catch {
    // fall through to the defaults
  }
  return uid === 0 ? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' : '/usr/local/bin:/usr/bin:/bin';
}

const LOGIN_KEPT_VARIABLES = new Set(['TERM', 'LANG', 'LANGUAGE', 'TZ']);

/** The environment of a login as `user`, plus the hook variables (see the module comment). */
export function loginEnvironment(
  user: HostUser,
  shell: string,
  hookEnv: Record<string, string>,
  vars: Record<string, string | undefined>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(hookEnv)) {
    if (LOGIN_KEPT_VARIABLES.has(name) || name.startsWith('LC_')) env[name] = value;
  }
  Object.assign(env, {
    HOME: user.home,
    USER: user.name,
    LOGNAME: user.name,
    SHELL: shell,
    PATH: loginPath(user.uid),
  });
  for (const [name, value] of Object.entries(vars)) {
    if (value !== undefined) env[name] = value;
  }
  return env;
}

export interface ScriptCommandInput {
  scriptPath: string;
  /** Base environment minus credentials, with the hook variables applied (buildHookEnvironment). */
  hookEnv: Record<string, string>;
  /** The hook variables alone. */
  vars: Record<string, string | undefined>;
  runas?: HostUser;
  sudo: boolean;
  /** The agent's own uid (process.getuid()). */
  agentUid: number;
}

/** Throws a plain Error with a user-facing reason when the combination cannot work on this host. */
export function buildScriptCommand(input: ScriptCommandInput): ScriptCommand {
  const { scriptPath, hookEnv, vars, runas, sudo, agentUid } = input;
  const preserve = definedVariableNames(vars);
  const preserveArgs = preserve.length > 0 ? [`--preserve-env=${preserve.join(',')}`] : [];
  if (!runas) {
    if (!sudo) return { command: scriptPath, args: [], env: hookEnv };
    return { command: toolCommand('sudo'), args: ['-n', ...preserveArgs, '--', scriptPath], env: hookEnv };
  }
  const shell = loginShellFor(runas);
  const loginArgs = [shell, '-l', '-c', EXEC_SCRIPT, scriptPath];
  if (sudo) {
    return { command: toolCommand('sudo'), args: ['-n', '-H', '-u', runas.name, ...preserveArgs, '--', ...loginArgs], env: hookEnv };
  }
  const env = loginEnvironment(runas, shell, hookEnv, vars);
  if (agentUid === runas.uid) {
    return { command: shell, args: loginArgs.slice(1), env };
  }
  if (agentUid !== 0) {
    throw new Error(
      `the agent runs as uid ${agentUid}, not root, so it cannot switch to user ${runas.name}; run the agent as root or set "sudo: true" for this script (password-less sudo)`,
    );
  }
  return {
    command: toolCommand('setpriv'),
    args: ['--reuid', String(runas.uid), '--regid', String(runas.gid), '--init-groups', '--', ...loginArgs],
    env,
  };
}
