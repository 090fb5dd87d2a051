import { lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failedJob, FileJobPool, type FileJob } from '../../src/util/file-jobs/file-job-pool.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
let cleanup: () => void;

beforeEach(() => {
  ({ dir, cleanup } = makeTempDir('cda-file-jobs-'));
  mkdirSync(join(dir, 'src'));
  mkdirSync(join(dir, 'dst'));
});
afterEach(() => cleanup());

/** Runs every job through a pool, returning what onDone reported. */
async function runAll(jobs: FileJob[], options: ConstructorParameters<typeof FileJobPool>[0] = {}): Promise<FileJob[]> {
  const done: FileJob[] = [];
  const pool = new FileJobPool({ ...options, onDone: (finished) => done.push(...finished) });
  try {
    for (const job of jobs) await pool.add(job);
    await pool.flush();
  } finally {
    await pool.close();
  }
  lastDoneByWorkers = pool.doneByWorkers;
  return done;
}

let lastDoneByWorkers = 0;

/** Lets the shared workers come up, so the jobs that follow run in them rather than on this thread. */
async function warmWorkers(options: ConstructorParameters<typeof FileJobPool>[0]): Promise<void> {
  if (!options?.workers) return;
  const pool = new FileJobPool({ ...options, expectedJobs: 1_000_000 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  await pool.close();
}

function makeSources(count: number): string[] {
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `f${i}.txt`;
    writeFileSync(join(dir, 'src', name), `content ${i}\n`.repeat((i % 7) + 1));
    chmodSync(join(dir, 'src', name), i % 2 ? 0o640 : 0o755);
    utimesSync(join(dir, 'src', name), 1_000_000 + i, 2_000_000 + i);
    names.push(name);
  }
  return names;
}

describe.each([
  ['on the calling thread', { workers: 0 }],
  ['in worker threads', { workers: 2, inlineJobs: 0 }],
])('FileJobPool %s', (_label, options) => {
  it('copies files with their content, exact mode and times, and reports each one done', async () => {
    const names = makeSources(600);
    const jobs: FileJob[] = names.map((name) => ({ kind: 'copy', from: join(dir, 'src', name), to: join(dir, 'dst', name) }));
    await warmWorkers(options);
    const done = await runAll(jobs, options);
    expect(done).toHaveLength(names.length);
    if (options.workers) expect(lastDoneByWorkers).toBeGreaterThan(0);
    else expect(lastDoneByWorkers).toBe(0);
    for (const name of names) {
      const source = statSync(join(dir, 'src', name));
      const copy = statSync(join(dir, 'dst', name));
      expect(readFileSync(join(dir, 'dst', name), 'utf8')).toBe(readFileSync(join(dir, 'src', name), 'utf8'));
      expect(copy.mode).toBe(source.mode);
      expect(copy.mtimeMs).toBe(source.mtimeMs);
    }
  });

  it('gives copies the attributes asked for, setuid included, past the umask', async () => {
    makeSources(1);
    await runAll([{ kind: 'copy', from: join(dir, 'src', 'f0.txt'), to: join(dir, 'dst', 'a'), attributes: { mode: 0o4777, atime: 10, mtime: 20.5 } }], options);
    const copy = statSync(join(dir, 'dst', 'a'));
    expect(copy.mode & 0o7777).toBe(0o4777);
    expect(copy.mtimeMs).toBe(20_500);
  });

  it('writes data, also from views into a larger buffer', async () => {
    const big = Buffer.from('0123456789abcdefghij');
    const jobs: FileJob[] = [];
    for (let i = 0; i < 300; i++) {
      jobs.push({ kind: 'write', to: join(dir, 'dst', `w${i}`), data: big.subarray(i % 10, (i % 10) + 5), attributes: { mode: 0o600, mtime: 1000 } });
    }
    await warmWorkers(options);
    await runAll(jobs, options);
    if (options.workers) expect(lastDoneByWorkers).toBeGreaterThan(0);
    for (let i = 0; i < 300; i++) {
      expect(readFileSync(join(dir, 'dst', `w${i}`), 'utf8')).toBe(big.subarray(i % 10, (i % 10) + 5).toString());
      expect(statSync(join(dir, 'dst', `w${i}`)).mode & 0o777).toBe(0o600);
    }
  });

  it('copies a large file without holding it in memory, and symlinks as links', async () => {
    const large = Buffer.alloc(3 * 1024 * 1024, 7);
    writeFileSync(join(dir, 'src', 'large.bin'), large);
    symlinkSync('large.bin', join(dir, 'src', 'link'));
    await runAll([
      { kind: 'copy', from: join(dir, 'src', 'large.bin'), to: join(dir, 'dst', 'large.bin') },
      { kind: 'symlink', from: join(dir, 'src', 'link'), to: join(dir, 'dst', 'link') },
      { kind: 'symlink', target: '../elsewhere', to: join(dir, 'dst', 'other'), attributes: { mode: 0o777, mtime: 5 } },
    ], options);
    expect(readFileSync(join(dir, 'dst', 'large.bin')).equals(large)).toBe(true);
    expect(readlinkSync(join(dir, 'dst', 'link'))).toBe('large.bin');
    expect(readlinkSync(join(dir, 'dst', 'other'))).toBe('../elsewhere');
    expect(lstatSync(join(dir, 'dst', 'other')).mtimeMs).toBe(5000);
  });

  it('never copies through a symlink, and stops at the first failure with the error and the failed job', async () => {
    const names = makeSources(400);
    writeFileSync(join(dir, 'dst', names[250]), 'already here');
    const jobs: FileJob[] = names.map((name) => ({ kind: 'copy', from: join(dir, 'src', name), to: join(dir, 'dst', name) }));
    await warmWorkers(options);
    const reported: FileJob[] = [];
    const pool = new FileJobPool({ ...options, onDone: (finished) => reported.push(...finished) });
    let error: unknown;
    try {
      for (const job of jobs) await pool.add(job);
      await pool.flush();
    } catch (caught) {
      error = caught;
    } finally {
      await pool.close();
    }
    expect((error as NodeJS.ErrnoException).code).toBe('EEXIST');
    expect(failedJob(error)).toBe(jobs[250]);
    expect(readFileSync(join(dir, 'dst', names[250]), 'utf8')).toBe('already here');
    // Everything reported done exists; the failed job is not among them.
    expect(reported).not.toContain(jobs[250]);
    for (const job of reported) expect(statSync((job as { to: string }).to).isFile()).toBe(true);

    symlinkSync(join(dir, 'src', names[0]), join(dir, 'src', 'link-to-file'));
    await expect(runAll([{ kind: 'copy', from: join(dir, 'src', 'link-to-file'), to: join(dir, 'dst', 'x') }], options)).rejects.toMatchObject({ code: 'ELOOP' });
  });
});

describe('FileJobPool leaving the work to the workers (callerRuns: false, as unpacking does)', () => {
  it('queues batches for one worker, bounded, and finishes every job', async () => {
    const jobs: FileJob[] = [];
    for (let i = 0; i < 6000; i++) {
      jobs.push({ kind: 'write', to: join(dir, 'dst', `q${i}`), data: Buffer.from(`file ${i}`), attributes: { mode: 0o644, mtime: 1 } });
    }
    await warmWorkers({ workers: 1 });
    const done = await runAll(jobs, { workers: 1, inlineJobs: 0, callerRuns: false });
    expect(done).toHaveLength(jobs.length);
    expect(lastDoneByWorkers).toBeGreaterThan(0);
    expect(readFileSync(join(dir, 'dst', 'q5999'), 'utf8')).toBe('file 5999');
  });
});
