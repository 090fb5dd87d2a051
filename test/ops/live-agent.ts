import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type Options, type ResultPromise } from 'execa';
import { readStatusSnapshot } from '../../src/agent/status-file.js';
import type { InFlightCommand, StatusSnapshot } from '../../src/agent/status-snapshot.js';
import { TEST_CREDENTIALS, type FakeCommandsService } from '../doubles/commands-service.js';

/**
 * The real daemon (`codedeploy-agent run`) against the commands-service double, for the operations tests:
 * a bundle whose AfterInstall hook waits at a gate the test opens, and helpers to run `status` the way an
 * operator would (root or not).
 */

export const HOST_IDENTIFIER = 'arn:aws:iam::123456789012:user/onprem-ops';
export const NOBODY = 65534;

/** What systemd gives a service: a fixed PATH, no login environment. */
export const SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The on-premises config in the IAM-user form, with the double's test keys. */
export function onPremisesConfigText(region = 'us-east-1'): string {
  return [
    `aws_access_key_id: ${TEST_CREDENTIALS.accessKeyId}`,
    `aws_secret_access_key: ${TEST_CREDENTIALS.secretAccessKey}`,
    `iam_user_arn: ${HOST_IDENTIFIER}`,
    `region: ${region}`,
    '',
  ].join('\n');
}

/** Keys that make the daemon quick against the double. */
export function fastKeys(service: FakeCommandsService): Record<string, string> {
  return {
    deploy_control_endpoint: service.url,
    wait_between_runs: '0.2',
    startup_splay_seconds: '0',
    max_poll_backoff_seconds: '5', // a failed poll is retried within a second
    hook_output_grace_seconds: '1',
    kill_agent_max_wait_time_seconds: '60',
  };
}

/** Sets `:key: value` lines as an operator edits the file: replaces the key's line, or appends one. */
export function setConfigKeys(file: string, keys: Record<string, string>): void {
  writeFileSync(file, withConfigKeys(readFileSync(file, 'utf8'), keys));
}

/** The configuration text with `:key: value` lines set (a commented-out default line is replaced). */
export function withConfigKeys(text: string, keys: Record<string, string>): string {
  for (const [key, value] of Object.entries(keys)) {
    const line = `:${key}: ${value}`;
    const pattern = new RegExp(`^#? ?:${key}:.*$`, 'm');
    text = pattern.test(text) ? text.replace(pattern, line) : `${text.replace(/\n*$/, '\n')}${line}\n`;
  }
  return text;
}

export interface GatedBundle {
  dir: string;
  /** Create this file to let the AfterInstall hook finish. */
  gate: string;
  /** The ApplicationStart hook writes the pid of the application it leaves running here. */
  appPidFile: string;
  open(): void;
}

/**
 * A bundle folder: BeforeInstall and ValidateService are quick; AfterInstall (`scripts/wait-for-gate.sh`)
 * waits up to 60 s for the gate file; ApplicationStart leaves an "application" (`sleep 120`) running in
 * the background, as `nohup ./myapp &` does.
 */
export function makeGatedBundle(dir: string, destination: string): GatedBundle {
  const gate = join(dir, '..', `${dir.split('/').pop()}.gate`);
  const appPidFile = join(dir, '..', `${dir.split('/').pop()}.app.pid`);
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  writeFileSync(join(dir, 'index.html'), 'hello\n');
  const scripts: Record<string, string> = {
    'quick.sh': 'echo "$LIFECYCLE_EVENT of $DEPLOYMENT_ID"\n',
    'wait-for-gate.sh': [
      'i=0',
      `while [ ! -e '${gate}' ]; do`,
      '  i=$((i + 1))',
      '  if [ "$i" -gt 600 ]; then echo "the test never opened the gate" >&2; exit 1; fi',
      '  sleep 0.1',
      'done',
      'echo "gate opened"',
      '',
    ].join('\n'),
    'start-app.sh': `nohup sleep 120 >/dev/null 2>&1 &\necho $! > '${appPidFile}'\n`,
  };
  for (const [name, body] of Object.entries(scripts)) {
    writeFileSync(join(dir, 'scripts', name), `#!/bin/sh\n${body}`);
    chmodSync(join(dir, 'scripts', name), 0o755);
  }
  const hooks = { BeforeInstall: 'quick.sh', AfterInstall: 'wait-for-gate.sh', ApplicationStart: 'start-app.sh', ValidateService: 'quick.sh' };
  writeFileSync(join(dir, 'appspec.yml'), [
    'version: 0.0',
    'os: linux',
    'files:',
    '  - source: index.html',
    `    destination: ${destination}`,
    'hooks:',
    ...Object.entries(hooks).map(([event, script]) => `  ${event}:\n    - location: scripts/${script}\n      timeout: 120`),
    '',
  ].join('\n'));
  return { dir, gate, appPidFile, open: () => writeFileSync(gate, '') };
}

export function localRevision(bundle: string): Record<string, unknown> {
  return { RevisionType: 'Local Directory', LocalRevision: { Location: bundle, BundleType: 'directory' } };
}

/** A running daemon started by the test; `stop` ends only this process, by its pid. */
export interface RunningAgent {
  child: ResultPromise;
  pid: number;
  /** stdout + stderr so far (the daemon logs to stderr as well as to its file). */
  output(): string;
  exited(): Promise<{ exitCode?: number; signal?: string }>;
  /** SIGKILL if still running (test clean-up). */
  kill(): Promise<void>;
}

export function startAgent(file: string, args: string[], options: Options = {}): RunningAgent {
  const child = execa(file, args, { reject: false, all: true, buffer: true, ...options });
  let output = '';
  child.all?.on('data', (chunk: Buffer) => { output += String(chunk); });
  const done = child.then((result) => ({ exitCode: result.exitCode, signal: result.signal }));
  return {
    child,
    pid: child.pid!,
    output: () => output,
    exited: () => done,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        try { process.kill(child.pid!, 'SIGKILL'); } catch { /* gone */ }
      }
      await done;
    },
  };
}

/** Until the status file shows the command of `event` running `script` (the hook has started). */
export async function waitForInFlight(service: FakeCommandsService, pidDir: string, event: string, agent: RunningAgent): Promise<InFlightCommand> {
  try {
    return await service.waitFor(() => {
      const snapshot = safeSnapshot(pidDir);
      return snapshot?.inFlight.find((c) => c.event === event && c.script);
    }, 20_000, `${event} to be running`);
  } catch (error) {
    throw new Error(`${(error as Error).message}\nagent output:\n${agent.output()}`);
  }
}

export function safeSnapshot(pidDir: string): StatusSnapshot | undefined {
  try {
    return readStatusSnapshot(pidDir);
  } catch {
    return undefined;
  }
}

/**
 * Runs `status` as the given user (root, or `nobody` through setpriv: no supplementary groups, no
 * capabilities), never throwing on a non-zero exit.
 */
export async function runStatus(command: string[], options: { user?: 'root' | 'nobody'; env?: Record<string, string> } = {}) {
  const argv = options.user === 'nobody'
    ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', ...command]
    : command;
  const result = await execa(argv[0], argv.slice(1), {
    reject: false,
    cwd: '/',
    env: { PATH: SYSTEMD_PATH, ...options.env },
    extendEnv: false,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Ends a background "application" a hook left running (it descends from this test), by its pid. */
export function endApplication(pidFile: string): void {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (pid > 0) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

/** Is `pid` a live process (not a zombie waiting for its parent)? */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
