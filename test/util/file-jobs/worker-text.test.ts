import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FileJob, RunContext } from '../../../src/util/file-jobs/file-job.js';
import { fileJobWorkerText } from '../../../src/util/file-jobs/worker-text.js';
import { packBatch, transferList, type BatchMessage, type Reply, type WorkerData } from '../../../src/util/file-jobs/wire.js';
import { REPO_ROOT } from '../../helpers/cli.js';
import { makeTempDir } from '../../helpers/tmp.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = makeTempDir('cda-file-worker-')));
afterEach(() => cleanup());

/** The text the build embeds (scripts/file-job-worker.mjs, the plugin scripts/build.mjs uses). */
async function builtText(): Promise<string> {
  const script = pathToFileURL(join(REPO_ROOT, 'scripts/file-job-worker.mjs')).href;
  const { buildFileJobWorker } = (await import(script)) as { buildFileJobWorker: (root: string) => Promise<{ text: string }> };
  return (await buildFileJobWorker(REPO_ROOT)).text;
}

const context: RunContext = { umask: process.umask(), uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1, preserveOwner: false };

function post(worker: Worker, jobs: FileJob[]): Promise<Reply> {
  const message: BatchMessage = { batch: packBatch(jobs), context };
  const reply = new Promise<Reply>((resolveReply, reject) => {
    worker.once('message', resolveReply);
    worker.once('error', reject);
  });
  worker.postMessage(message, transferList(message.batch));
  return reply;
}

describe('the file worker started from its built text', () => {
  it('is the text the tests compile from source', async () => {
    expect(fileJobWorkerText()).toBe(await builtText());
  });

  it('says through shared memory that it is up and how many batches it finished, and runs them', async () => {
    const state = new Int32Array(new SharedArrayBuffer(4 * 4));
    const workerData: WorkerData = { state: state.buffer as SharedArrayBuffer, readyAt: 2, finishedAt: 3 };
    const worker = new Worker(await builtText(), { eval: true, workerData });
    try {
      const deadline = Date.now() + 30_000;
      while (Atomics.load(state, 2) !== 1 && Date.now() < deadline) await new Promise((wake) => setTimeout(wake, 10));
      expect(Atomics.load(state, 2)).toBe(1);

      writeFileSync(join(dir, 'source'), 'copied');
      const first = await post(worker, [
        { kind: 'write', to: join(dir, 'written'), data: Buffer.from('hello'), attributes: { mode: 0o2750, mtime: 1_000 } },
        { kind: 'copy', from: join(dir, 'source'), to: join(dir, 'copy'), attributes: { mode: 0o640, mtime: 2_000 } },
        { kind: 'symlink', to: join(dir, 'link'), target: 'written', attributes: { mode: 0o777, mtime: 3_000 } },
      ]);
      expect(first).toMatchObject({ done: 3, failure: undefined });
      // The batch's data buffer comes back for the next batch.
      expect(first.data?.byteLength).toBeGreaterThan(0);
      expect(Atomics.load(state, 3)).toBe(1);
      expect(readFileSync(join(dir, 'written'), 'utf8')).toBe('hello');
      expect(statSync(join(dir, 'written')).mode & 0o7777).toBe(0o2750);
      expect(statSync(join(dir, 'written')).mtimeMs).toBe(1_000_000);
      expect(readFileSync(join(dir, 'copy'), 'utf8')).toBe('copied');
      expect(statSync(join(dir, 'copy')).mtimeMs).toBe(2_000_000);
      expect(readlinkSync(join(dir, 'link'))).toBe('written');
      expect(lstatSync(join(dir, 'link')).mtimeMs).toBe(3_000_000);

      const second = await post(worker, [
        { kind: 'write', to: join(dir, 'new'), data: Buffer.from('x'), attributes: { mode: 0o644 } },
        { kind: 'write', to: join(dir, 'written'), data: Buffer.from('again'), attributes: { mode: 0o644 } },
        { kind: 'write', to: join(dir, 'never'), data: Buffer.from('y'), attributes: { mode: 0o644 } },
      ]);
      expect(second.done).toBe(1);
      expect(second.failure).toMatchObject({ code: 'EEXIST', syscall: 'open', path: join(dir, 'written') });
      expect(Atomics.load(state, 3)).toBe(2);
      expect(readFileSync(join(dir, 'written'), 'utf8')).toBe('hello');
      expect(existsSync(join(dir, 'never'))).toBe(false);
    } finally {
      await worker.terminate();
    }
  });
});

/** Every chunk dist/codedeploy-agent.mjs loads, at once or on demand (as scripts/package.mjs finds them). */
function chunksOfBundle(): string[] {
  const entry = join(REPO_ROOT, 'dist/codedeploy-agent.mjs');
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file) || !existsSync(file)) continue;
    seen.add(file);
    for (const match of readFileSync(file, 'utf8').matchAll(/\b(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+\.mjs)"/g)) {
      queue.push(resolve(dirname(file), match[1]));
    }
  }
  return [...seen];
}

describe('the file workers of the bundle in dist/ (built by the test set-up)', () => {
  it('start from the text embedded in the bundle, which never loads esbuild, and run the jobs', () => {
    const chunks = chunksOfBundle();
    const main = readFileSync(join(REPO_ROOT, 'dist/codedeploy-agent.mjs'), 'utf8');
    // The pool and its worker's text stay out of what every command loads.
    expect(main).not.toContain('FileJobPool');
    const poolChunk = chunks.find((file) => /export \{[^}]*\bFileJobPool\b/.test(readFileSync(file, 'utf8')));
    expect(poolChunk, `no chunk of dist/ exports FileJobPool (${chunks.map((file) => relative(REPO_ROOT, file)).join(', ')})`).toBeDefined();
    // The build embedded the compiled text (src/util/file-jobs/worker-text.ts replaced), so nothing compiles at run time.
    for (const file of chunks) expect(readFileSync(file, 'utf8')).not.toMatch(/\(["']esbuild["']\)|buildSync/);

    // A plain Node.js process, as in production, whose eval'd code is an ES module (a worker inherits
    // that): pools of one worker until the worker, once up, takes batches.
    const script = `
      import { FileJobPool } from ${JSON.stringify(pathToFileURL(poolChunk!).href)};
      const dir = ${JSON.stringify(dir)};
      let byWorkers = 0;
      const deadline = Date.now() + 60_000;
      for (let round = 0; byWorkers === 0 && Date.now() < deadline; round++) {
        const pool = new FileJobPool({ workers: 1, inlineJobs: 0, callerRuns: false });
        try {
          for (let i = 0; i < 256; i++) await pool.add({ kind: 'write', to: dir + '/r' + round + '-' + i, data: Buffer.from('file ' + i), attributes: { mode: 0o640, mtime: 5 } });
          await pool.flush();
        } finally {
          await pool.close();
        }
        byWorkers = pool.doneByWorkers;
        if (byWorkers === 0) await new Promise((wake) => setTimeout(wake, 100));
      }
      process.stdout.write(JSON.stringify({ byWorkers }));
    `;
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
    expect(JSON.parse(output).byWorkers).toBeGreaterThan(0);
    expect(readFileSync(join(dir, 'r0-255'), 'utf8')).toBe('file 255');
    expect(statSync(join(dir, 'r0-255')).mode & 0o777).toBe(0o640);
  }, 180_000);
});
