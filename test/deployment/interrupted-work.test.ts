/**
 * The start of an agent puts right what a killed one left, group by group under the group's lock: a
 * group another live process holds (a deployment in progress) is left to that process.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig, type AgentConfig } from '../../src/config/agent-config.js';
import { recoverInterruptedWork } from '../../src/deployment/interrupted-work.js';
import { groupLockFile, installBackupDir, installJournalFile } from '../../src/deployment/layout.js';
import { formatRecords } from '../../src/install/journal-records.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { thisProcess } from '../../src/util/process-identity.js';
import { makeTempDir } from '../helpers/tmp.js';
import { waitFor } from '../hooks/proc.js';

let dir: string;
let cleanup: () => void;
let config: AgentConfig;

beforeEach(() => {
  ({ dir, cleanup } = makeTempDir('cda-interrupted-'));
  config = { ...defaultConfig(), root_dir: join(dir, 'root') };
});
afterEach(() => cleanup());

/** An Install of `group` killed after it created `file`. */
function interruptedInstall(group: string, file: string): string {
  const deploymentDir = join(config.root_dir, group, 'd-1');
  mkdirSync(installBackupDir(deploymentDir), { recursive: true });
  writeFileSync(file, 'new');
  const journal = installJournalFile(deploymentDir);
  writeFileSync(journal, formatRecords([
    { t: 'begin', v: 1, group, deployment: 'd-1', owner: { ...thisProcess(), pid: process.ppid, start: '1' }, cleanupFile: join(dir, `${group}-c`), installJsonFile: join(dir, `${group}-j`), times: [] },
    { t: 'removed' },
    { t: 'create', path: file },
  ]));
  return journal;
}

describe('what a start puts right', () => {
  it('rolls back each group\'s interrupted Install under its lock, and leaves a group another process holds to it', async () => {
    const freeFile = join(dir, 'free.txt');
    const busyFile = join(dir, 'busy.txt');
    const freeJournal = interruptedInstall('free', freeFile);
    const busyJournal = interruptedInstall('busy', busyFile);
    const lockFile = groupLockFile(config.root_dir, 'busy');
    mkdirSync(join(config.root_dir, 'deployment-instructions'), { recursive: true });
    writeFileSync(lockFile, '');
    // Another process holding the group: flock and its sleep, in a process group of their own to end together.
    const holder = spawn('flock', ['--exclusive', lockFile, 'sleep', '60'], { stdio: 'ignore', detached: true });
    try {
      expect(await waitFor(() => isLocked(lockFile), 5000)).toBe(true);
      const logger = new MemoryLogger();
      const done = await recoverInterruptedWork(config, logger);
      expect(done).toEqual(['Rolled back the interrupted Install of deployment d-1 (group free): removed 1 path(s) it had created, put back 0 from its backup']);
      expect(existsSync(freeFile) || existsSync(freeJournal)).toBe(false);
      expect(existsSync(busyFile) && existsSync(busyJournal)).toBe(true);
      expect(logger.text()).toContain('Deployment group busy has work a killed agent left, but deployment group busy is busy');
    } finally {
      const exited = new Promise((resolve) => holder.once('exit', resolve));
      process.kill(-holder.pid!, 'SIGKILL');
      await exited;
      expect(await waitFor(() => !isLocked(lockFile), 5000)).toBe(true);
    }
    expect(await recoverInterruptedWork(config, new MemoryLogger())).toHaveLength(1);
    expect(existsSync(busyFile) || existsSync(busyJournal)).toBe(false);
  });
});

/** Whether another process holds a flock on `file`. */
function isLocked(file: string): boolean {
  try {
    execFileSync('flock', ['--nonblock', '--shared', file, 'true'], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
}
