import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RotatingAppendFile } from '../../src/hooks/rotating-file.js';
import { formatDeploymentsLogLine, formatScriptsLogLine, ScriptsLog } from '../../src/hooks/scripts-log.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { useTempDir } from '../helpers/tmp.js';

const tmp = useTempDir('cda-scripts-log-');

describe('line formats', () => {
  const date = new Date(2024, 0, 2, 3, 4, 5, 67);

  it('scripts.log: local time to the second, then the message', () => {
    expect(formatScriptsLogLine(date, '[stdout]hello')).toBe('2024-01-02 03:04:05 [stdout]hello\n');
  });

  it('deployments log: local time to the millisecond, the deployment id, the stripped message', () => {
    expect(formatDeploymentsLogLine(date, 'd-ABC', 'LifecycleEvent - Install ')).toBe('[2024-01-02 03:04:05.067] [d-ABC]LifecycleEvent - Install\n');
  });
});

describe('ScriptsLog', () => {
  it('creates its folders, appends to an existing file, and writes the deployments log when asked', async () => {
    const scriptsPath = join(tmp.dir, 'deployment', 'logs', 'scripts.log');
    const deploymentsPath = join(tmp.dir, 'deployment-logs', 'codedeploy-agent-deployments.log');
    const first = ScriptsLog.open(scriptsPath);
    await first.append(['LifecycleEvent - BeforeInstall'], 'd-1');
    await first.close();
    expect(existsSync(deploymentsPath)).toBe(false);
    const second = ScriptsLog.open(scriptsPath, { deploymentsLogPath: deploymentsPath });
    await second.append(['Script - a.sh', '[stdout]hi'], 'd-1');
    await second.close();
    await second.close();
    const lines = readFileSync(scriptsPath, 'utf8').split('\n');
    expect(lines.map((line) => line.slice(20))).toEqual(['LifecycleEvent - BeforeInstall', 'Script - a.sh', '[stdout]hi', '']);
    expect(readFileSync(deploymentsPath, 'utf8')).toMatch(/^\[[\d-]+ [\d:.]+\] \[d-1\]Script - a\.sh\n\[[\d-]+ [\d:.]+\] \[d-1\]\[stdout\]hi\n$/);
    expect(second.path).toBe(scriptsPath);
  });

  it('rotates scripts.log by size, keeping maxFiles files', async () => {
    const path = join(tmp.dir, 'logs', 'scripts.log');
    const log = ScriptsLog.open(path, { maxBytes: 1000, maxFiles: 3 });
    for (let index = 0; index < 60; index += 1) await log.append([`[stdout]${String(index).padStart(3, '0')} ${'x'.repeat(70)}`], 'd-1');
    await log.close();
    expect(readdirSync(join(tmp.dir, 'logs')).sort()).toEqual(['scripts.log', 'scripts.log.1', 'scripts.log.2']);
    for (const name of ['scripts.log', 'scripts.log.1', 'scripts.log.2']) {
      expect(readFileSync(join(tmp.dir, 'logs', name)).length).toBeLessThanOrEqual(1000);
    }
    expect(readFileSync(path, 'utf8').trimEnd().split('\n').at(-1)).toContain('[stdout]059 ');
    // Generations are in order: .2 is older than .1, which is older than the live file.
    const firstNumber = (name: string) => Number(/\[stdout\](\d+)/.exec(readFileSync(join(tmp.dir, 'logs', name), 'utf8'))![1]);
    expect(firstNumber('scripts.log.2')).toBeLessThan(firstNumber('scripts.log.1'));
    expect(firstNumber('scripts.log.1')).toBeLessThan(firstNumber('scripts.log'));
  });

  it('reports a write failure once to the logger and keeps going', async () => {
    const logger = new MemoryLogger();
    const path = join(tmp.dir, 'logs', 'scripts.log');
    const log = ScriptsLog.open(path, { logger, maxBytes: 10, maxFiles: 2 });
    await log.append(['first'], 'd-1');
    // Rotation renames scripts.log onto scripts.log.1, which is now a non-empty folder: it fails.
    mkdirSync(join(`${path}.1`, 'occupied'), { recursive: true });
    await expect(log.append(['second message that rotates'], 'd-1')).resolves.toBeUndefined();
    await expect(log.append(['third message that rotates'], 'd-1')).resolves.toBeUndefined();
    await log.close();
    const errors = logger.lines.filter((line) => line.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toContain(`Could not write ${path}`);
  });
});

describe('RotatingAppendFile shared by several writers', () => {
  it('reopens after another writer rotated instead of rotating again', async () => {
    const path = join(tmp.dir, 'deployments.log');
    const a = new RotatingAppendFile(path, 100, 4);
    const b = new RotatingAppendFile(path, 100, 4);
    await a.append(`${'a'.repeat(90)}\n`);
    await b.append(`${'b'.repeat(20)}\n`); // rotates: the file would exceed 100 bytes
    await a.append('after\n'); // a's descriptor points at the rotated file: a must follow the new one
    await a.close();
    await b.close();
    expect(readFileSync(`${path}.1`, 'utf8')).toBe(`${'a'.repeat(90)}\n`);
    expect(readFileSync(path, 'utf8')).toBe(`${'b'.repeat(20)}\nafter\n`);
    expect(existsSync(`${path}.2`)).toBe(false);
  });

  it('keeps only the live file when maxFiles is 1', async () => {
    const path = join(tmp.dir, 'one.log');
    const file = new RotatingAppendFile(path, 10, 1);
    await file.append('0123456789\n');
    await file.append('next\n');
    await file.close();
    expect(readdirSync(tmp.dir)).toEqual(['one.log']);
    expect(readFileSync(path, 'utf8')).toBe('next\n');
  });
});
