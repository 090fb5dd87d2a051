import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AgentAlreadyRunningError, checkPidFile, claimPidFile, isAgentProcess, parsePid, pidFilePath, processStartTime,
  removePidFile, removeStalePidFile, writePidFile,
} from '../../src/agent/pid-file.js';
import { readStatusSnapshot, StatusFileError, statusFilePath, writeStatusSnapshot } from '../../src/agent/status-file.js';
import { registerSecret } from '../../src/log/redact.js';
import { makeTempDir } from '../helpers/tmp.js';
import { makeFakeAgent, snapshotFor, type FakeAgent } from './fake-daemon.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => { while (cleanups.length) await cleanups.pop()!(); });

function tempPidDir(): string {
  const tmp = makeTempDir('cda-pid-');
  cleanups.push(tmp.cleanup);
  return join(tmp.dir, 'state', '.pid');
}

async function fakeAgent(): Promise<FakeAgent> {
  const fake = makeFakeAgent();
  cleanups.push(() => fake.cleanup());
  await fake.start();
  return fake;
}

/** A pid that is certainly not running: a child that has exited and been reaped. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

describe('pid file', () => {
  it('parses one positive pid and nothing else', () => {
    expect(parsePid('123\n')).toBe(123);
    expect(parsePid('  42 ')).toBe(42);
    expect(parsePid('')).toBeUndefined();
    expect(parsePid('0')).toBeUndefined();
    expect(parsePid('12 34')).toBeUndefined();
    expect(parsePid('abc')).toBeUndefined();
  });

  it('is running only when the pid is alive and its command line names codedeploy-agent', async () => {
    const fake = await fakeAgent();
    expect(isAgentProcess(fake.pid!)).toBe(true);
    expect(checkPidFile(fake.pidDir)).toEqual({ state: 'running', path: pidFilePath(fake.pidDir), pid: fake.pid });
    // A live process that is not the agent (pid reused after a reboot).
    const other = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e3)']);
    cleanups.push(() => { try { process.kill(other.pid!, 'SIGKILL'); } catch { /* gone */ } });
    await new Promise((r) => setTimeout(r, 100));
    expect(isAgentProcess(other.pid!)).toBe(false);
    expect(isAgentProcess(process.pid)).toBe(false);
    expect(isAgentProcess(await deadPid())).toBe(false);
    const started = processStartTime(fake.pid!);
    expect(started).toBeInstanceOf(Date);
    expect(Math.abs(started!.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('reports absent, empty, garbage and dead pid files', async () => {
    const pidDir = tempPidDir();
    expect(checkPidFile(pidDir).state).toBe('absent');
    mkdirSync(pidDir, { recursive: true });
    writeFileSync(pidFilePath(pidDir), '');
    expect(checkPidFile(pidDir)).toMatchObject({ state: 'stale', reason: expect.stringContaining('is empty') });
    writeFileSync(pidFilePath(pidDir), 'garbage');
    expect(checkPidFile(pidDir)).toMatchObject({ state: 'stale', reason: expect.stringContaining('does not hold a pid') });
    const dead = await deadPid();
    writeFileSync(pidFilePath(pidDir), `${dead}\n`);
    expect(checkPidFile(pidDir)).toMatchObject({ state: 'stale', pid: dead });
    expect(removeStalePidFile(pidDir)).toBe(true);
    expect(existsSync(pidFilePath(pidDir))).toBe(false);
  });

  it('claims the pid file, refuses while an agent runs, replaces a stale one', async () => {
    const fake = await fakeAgent();
    expect(() => claimPidFile(fake.pidDir, 4242)).toThrow(AgentAlreadyRunningError);
    expect(readFileSync(pidFilePath(fake.pidDir), 'utf8')).toBe(`${fake.pid}\n`);

    const pidDir = tempPidDir();
    expect(claimPidFile(pidDir)).toEqual({});
    expect(readFileSync(pidFilePath(pidDir), 'utf8')).toBe(`${process.pid}\n`);
    expect(statSync(pidFilePath(pidDir)).mode & 0o777).toBe(0o644);
    // Our own pid in the file counts as stale (a leftover from an earlier boot).
    const again = claimPidFile(pidDir);
    expect(again.replaced).toMatchObject({ state: 'stale', pid: process.pid });

    const dead = await deadPid();
    writePidFile(pidDir, dead);
    expect(claimPidFile(pidDir).replaced).toMatchObject({ state: 'stale', pid: dead });
    expect(readFileSync(pidFilePath(pidDir), 'utf8')).toBe(`${process.pid}\n`);
  });

  it('removes the pid file only while it names the expected pid', () => {
    const pidDir = tempPidDir();
    writePidFile(pidDir, 1234);
    expect(removePidFile(pidDir, 999)).toBe(false);
    expect(existsSync(pidFilePath(pidDir))).toBe(true);
    expect(removePidFile(pidDir, 1234)).toBe(true);
    expect(removePidFile(pidDir)).toBe(false);
    expect(readdirSync(pidDir)).toEqual([]);
  });
});

describe('status file', () => {
  it('writes atomically with mode 0644 whatever the umask, and reads back', () => {
    const pidDir = tempPidDir();
    const previous = process.umask(0o077);
    try {
      writeStatusSnapshot(pidDir, snapshotFor(1234));
      writeStatusSnapshot(pidDir, snapshotFor(1234, { state: 'stopping' }));
    } finally {
      process.umask(previous);
    }
    expect(statSync(statusFilePath(pidDir)).mode & 0o777).toBe(0o644);
    expect(readdirSync(pidDir)).toEqual(['codedeploy-agent.status.json']);
    const read = readStatusSnapshot(pidDir)!;
    expect(read.state).toBe('stopping');
    expect(read.inFlight[0].deploymentId).toBe('d-ABCDEFGHI');
  });

  it('never holds a known secret, even one an error message quoted (the file is world-readable)', () => {
    const pidDir = tempPidDir();
    registerSecret('statusFileSecret/0123456789');
    writeStatusSnapshot(pidDir, snapshotFor(1234, { lastError: { at: new Date().toISOString(), message: 'refused statusFileSecret/0123456789' } }));
    const text = readFileSync(statusFilePath(pidDir), 'utf8');
    expect(text).not.toContain('statusFileSecret/0123456789');
    expect(readStatusSnapshot(pidDir)!.lastError!.message).toBe('refused [REDACTED]');
  });

  it('is undefined when absent, an error when torn or foreign, and keeps unknown fields', () => {
    const pidDir = tempPidDir();
    expect(readStatusSnapshot(pidDir)).toBeUndefined();
    mkdirSync(pidDir, { recursive: true });
    writeFileSync(statusFilePath(pidDir), '{"pid": 12');
    expect(() => readStatusSnapshot(pidDir)).toThrow(StatusFileError);
    writeFileSync(statusFilePath(pidDir), '[1,2]');
    expect(() => readStatusSnapshot(pidDir)).toThrow(/does not hold an agent status/);
    writeFileSync(statusFilePath(pidDir), JSON.stringify({ pid: 7, futureField: { a: 1 }, inFlight: 'nonsense' }));
    const read = readStatusSnapshot(pidDir) as unknown as Record<string, unknown>;
    expect(read.futureField).toEqual({ a: 1 });
    expect(read.inFlight).toEqual([]);
    expect(read.recent).toEqual([]);
  });
});
