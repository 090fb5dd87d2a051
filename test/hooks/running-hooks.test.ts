/**
 * The records of running hooks and the clean-up after a crash, with real process groups: what a killed
 * agent left running is stopped (TERM, grace, KILL); an application a hook started in its own session,
 * a live agent's hooks, a pid that now names another process and a record from another boot are not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RunningHooks, type HookRecord } from '../../src/hooks/running-hooks.js';
import { runScriptProcess } from '../../src/hooks/run-script-process.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { bootId, identityOf, thisProcess, type ProcessIdentity } from '../../src/util/process-identity.js';
import { makeTempDir } from '../helpers/tmp.js';
import { isAlive, killPid, processesInGroup, waitFor } from './proc.js';

let dir: string;
let cleanup: () => void;
const started: number[] = [];
const groups: number[] = [];

beforeEach(() => {
  ({ dir, cleanup } = makeTempDir('cda-running-hooks-'));
});
afterEach(() => {
  for (const pgid of groups.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const pid of started.splice(0)) killPid(pid);
  cleanup();
});

/** The identity of a process that has exited: an agent that was killed. */
async function deadAgent(): Promise<ProcessIdentity> {
  const child = spawn('sleep', ['30']);
  const identity = identityOf(child.pid!)!;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return identity;
}

/**
 * A hook's process group as the agent makes it (its own session): the shell, a background child in
 * its group, and an application it started in a session of its own (`setsid`). `body` runs first.
 */
async function hookGroup(body = ''): Promise<{ child: ChildProcess; shell: number; member: number; app: number }> {
  const pids = join(dir, `pids-${Date.now()}-${Math.random()}`);
  const child = spawn('/bin/sh', ['-c', `${body}\nsleep 300 &\nmember=$!\nsetsid sleep 300 < /dev/null > /dev/null 2>&1 &\necho "$$ $member $!" > '${pids}'\nwait`], {
    detached: true,
    stdio: 'ignore',
  });
  groups.push(child.pid!);
  expect(await waitFor(() => existsSync(pids) && readFileSync(pids, 'utf8').trim().split(' ').length === 3, 30_000)).toBe(true);
  const [shell, member, app] = readFileSync(pids, 'utf8').trim().split(' ').map(Number);
  started.push(app);
  return { child, shell, member, app };
}

function writeRecord(hook: ProcessIdentity, agent: ProcessIdentity, group = 'dg-1'): string {
  const record: HookRecord = { version: 1, group, deployment: 'd-1', event: 'ApplicationStart', script: 'scripts/start.sh', agent, hook };
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${hook.pid}-${hook.start}.json`);
  writeFileSync(file, JSON.stringify(record));
  return file;
}

describe('records of running hooks', () => {
  it('is written when a script starts and removed when it exits, a background child of its group notwithstanding', async () => {
    const logger = new MemoryLogger();
    const hooks = new RunningHooks(dir, logger);
    const gate = join(dir, 'gate');
    let recordedPid = 0;
    let seenWhileRunning: string[] = [];
    const run = runScriptProcess({
      command: '/bin/sh',
      args: ['-c', `sleep 300 > /dev/null 2>&1 < /dev/null & echo $! > '${join(dir, 'bg')}'; while [ ! -e '${gate}' ]; do sleep 0.05; done`],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      timeoutMs: 20_000,
      killGraceMs: 500,
      outputGraceMs: 200,
      onLines: () => undefined,
      onSpawned: (pid) => {
        recordedPid = pid;
        return hooks.record(pid, { group: 'dg-1', deployment: 'd-1', event: 'BeforeInstall', script: 'scripts/wait.sh' });
      },
    });
    expect(await waitFor(() => existsSync(join(dir, 'bg')), 30_000)).toBe(true);
    started.push(Number(readFileSync(join(dir, 'bg'), 'utf8')));
    seenWhileRunning = readdirSync(dir).filter((name) => name.endsWith('.json'));
    const record = JSON.parse(readFileSync(join(dir, seenWhileRunning[0]), 'utf8')) as HookRecord;
    expect(record).toMatchObject({ version: 1, group: 'dg-1', deployment: 'd-1', event: 'BeforeInstall', script: 'scripts/wait.sh' });
    expect(record.hook).toEqual(identityOf(recordedPid));
    expect(record.agent).toEqual(thisProcess());
    // A live agent's hooks are nobody's leftovers.
    expect(hooks.leftovers()).toEqual([]);
    writeFileSync(gate, '');
    const result = await run;
    expect(result.outcome).toBe('exited');
    expect(readdirSync(dir).filter((name) => name.endsWith('.json'))).toEqual([]);
    expect(isAlive(Number(readFileSync(join(dir, 'bg'), 'utf8')))).toBe(true);
  });

  it('is removed once a timed-out script\'s group is stopped', async () => {
    const hooks = new RunningHooks(dir, new MemoryLogger());
    let during: string[] = [];
    const result = await runScriptProcess({
      command: '/bin/sh',
      args: ['-c', 'sleep 300'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      timeoutMs: 300,
      killGraceMs: 300,
      outputGraceMs: 100,
      onLines: () => undefined,
      onSpawned: (pid) => hooks.record(pid, { group: 'dg-1', deployment: 'd-1', event: 'BeforeInstall', script: 'scripts/slow.sh' }),
      onStopping: () => {
        during = readdirSync(dir);
      },
    });
    expect(result.outcome).toBe('timed-out');
    expect(during.filter((name) => name.endsWith('.json'))).toHaveLength(1);
    expect(readdirSync(dir).filter((name) => name.endsWith('.json'))).toEqual([]);
  });
});

describe('stopping the hooks a killed agent left running', () => {
  it('stops the whole process group with SIGTERM, leaves an application in its own session alone, and logs it', async () => {
    const { shell, member, app } = await hookGroup();
    const file = writeRecord(identityOf(shell)!, await deadAgent());
    const logger = new MemoryLogger();
    expect(await new RunningHooks(dir, logger).stopLeftovers(2000)).toBe(1);
    expect(await waitFor(() => processesInGroup(shell).length === 0, 30_000)).toBe(true);
    expect(isAlive(member)).toBe(false);
    expect(isAlive(app)).toBe(true);
    expect(existsSync(file)).toBe(false);
    expect(logger.text()).toMatch(/hook scripts\/start\.sh of ApplicationStart \(deployment d-1, group dg-1, process group \d+\), started by agent pid \d+ which stopped without ending it, is still running/);
    expect(logger.text()).toContain('stopped after SIGTERM');
  });

  it('kills a group that ignores SIGTERM once the grace is over', async () => {
    const { shell, member } = await hookGroup("trap '' TERM");
    writeRecord(identityOf(shell)!, await deadAgent());
    // The background sleep inherited the ignored TERM as well.
    const logger = new MemoryLogger();
    const begun = Date.now();
    await new RunningHooks(dir, logger).stopLeftovers(600);
    expect(Date.now() - begun).toBeGreaterThanOrEqual(550);
    expect(await waitFor(() => processesInGroup(shell).length === 0, 30_000)).toBe(true);
    expect(isAlive(member)).toBe(false);
    expect(logger.text()).toContain('did not stop after SIGTERM; its process group was killed (SIGKILL)');
  });

  it('stops what is left of a group whose first process has exited', async () => {
    const { child, shell, member } = await hookGroup();
    const hook = identityOf(shell)!;
    process.kill(shell, 'SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(isAlive(member)).toBe(true);
    writeRecord(hook, await deadAgent());
    expect(await new RunningHooks(dir, new MemoryLogger()).stopLeftovers(2000)).toBe(1);
    expect(await waitFor(() => !isAlive(member), 30_000)).toBe(true);
  });

  it('never touches a process that merely has the recorded pid (another start time), nor acts on a record from another boot', async () => {
    const { shell, member } = await hookGroup();
    const real = identityOf(shell)!;
    const reused = writeRecord({ ...real, start: String(Number(real.start) - 1) }, await deadAgent());
    const logger = new MemoryLogger();
    expect(await new RunningHooks(dir, logger).stopLeftovers(500)).toBe(0);
    expect(existsSync(reused)).toBe(false);
    const otherBoot = writeRecord({ ...real, boot: `${bootId()}-before-a-reboot` }, await deadAgent());
    expect(await new RunningHooks(dir, logger).stopLeftovers(500)).toBe(0);
    expect(existsSync(otherBoot)).toBe(false);
    expect(isAlive(shell) && isAlive(member)).toBe(true);
    expect(logger.text()).toBe('');
  });

  it('leaves the hooks of a running agent alone, and only the asked group\'s when one is named', async () => {
    const mine = await hookGroup();
    const live = writeRecord(identityOf(mine.shell)!, thisProcess());
    const other = await hookGroup();
    const otherGroup = writeRecord(identityOf(other.shell)!, await deadAgent(), 'dg-other');
    const hooks = new RunningHooks(dir, new MemoryLogger());
    expect(await hooks.stopLeftovers(500, new Set(['dg-1']))).toBe(0);
    expect(existsSync(live) && existsSync(otherGroup)).toBe(true);
    expect(isAlive(mine.shell) && isAlive(other.shell)).toBe(true);
    expect(hooks.leftovers().map(({ file }) => file)).toEqual([otherGroup]);
  });

  it('removes a record it cannot read, saying so', async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '1234-5.json'), '{"version":1,"hook":');
    const logger = new MemoryLogger();
    expect(await new RunningHooks(dir, logger).stopLeftovers(100)).toBe(0);
    expect(existsSync(join(dir, '1234-5.json'))).toBe(false);
    expect(logger.text()).toContain('not a running-hook record');
  });
});
