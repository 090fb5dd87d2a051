import os from 'node:os';
import type { CopyJob, FileJob, RunContext } from './file-job.js';
import { copyLargeHere, createJobRunner, type JobRunner, type RunResult } from './run-jobs.js';
import { applyReports, errorFrom, type Reply } from './wire.js';
import { workerSet, type WorkerSet } from './worker-set.js';

export type { FileJob } from './file-job.js';
export type { InodeAttributes } from './inode-attributes.js';

/**
 * Creating tens of thousands of small files (unpacking, copying a revision folder, Install) costs
 * system calls, not bytes: 10-15 µs of kernel time per file on a tmpfs, as much for the agent as for
 * `cp -a` or `tar -x`, and one thread of Node.js adds its own overhead to that. The kernel creates
 * files in parallel, so this pool spreads the calls over the calling thread and worker threads; each
 * job runs with synchronous calls (./run-jobs.ts), in batches.
 *
 * The first jobs run on the calling thread, so a small revision never pays for starting workers.
 * Workers (one per CPU but one) are started once there is more work, shared by every pool of the
 * process and stopped after a few idle seconds (./worker-set.ts). With one CPU everything runs on the
 * calling thread.
 */

export interface FileJobPoolOptions {
  /** Copies without attributes keep the source's owner when it is not the agent's (as root). */
  preserveOwner?: boolean;
  /** Worker threads; default one per CPU but one, at most 3; 0 runs every job on the calling thread. */
  workers?: number;
  /** Jobs run on the calling thread before workers are started. */
  inlineJobs?: number;
  /** How many jobs will come, when known: with more than `inlineJobs`, the workers start at once. */
  expectedJobs?: number;
  /** Called with jobs that are done (in batches, in completion order): a rollback journal records them. */
  onDone?: (jobs: readonly FileJob[]) => void;
  /**
   * Whether the calling thread runs a batch itself when no worker is free (default true). Unpacking
   * says false: its thread also parses the archive and keeps the inflating moving (each inflated chunk
   * passes through its event loop), so it queues batches for the workers instead, up to a bound.
   */
  callerRuns?: boolean;
}

let inlineRunner: JobRunner | undefined;

/** The calling thread's runner (the workers run the same code), made on first use. */
function runInline(jobs: readonly FileJob[], context: RunContext, start: number): RunResult {
  inlineRunner ??= createJobRunner();
  return inlineRunner(jobs, { ...context, inline: true }, start);
}

const failedJobs = new WeakMap<object, FileJob>();

/** The job whose failure `error` is, when it came from a pool. */
export function failedJob(error: unknown): FileJob | undefined {
  return typeof error === 'object' && error !== null ? failedJobs.get(error) : undefined;
}

function markFailed(error: unknown, job: FileJob | undefined): void {
  if (job && typeof error === 'object' && error !== null) failedJobs.set(error, job);
}

/** A batch is sent when it holds this many jobs or bytes of data. */
const BATCH_JOBS = 128;
const BATCH_BYTES = 1024 * 1024;
const DEFAULT_INLINE_JOBS = 128;
/** With `callerRuns: false`, batches queued before add() waits for a worker. */
const MAX_QUEUED_BATCHES = 8;

interface Batch {
  jobs: FileJob[];
  bytes: number;
}

/**
 * One worker per CPU but one: the calling thread works too (it runs a batch itself whenever no worker
 * is free), so the pool never runs more threads than there are CPUs, and a busy host is not
 * oversubscribed.
 */
function defaultWorkerCount(): number {
  const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.min(Math.max(cpus - 1, 0), 3);
}

/**
 * Runs file jobs for one caller (an unpack, a folder copy, an Install). Use: `add()` each job, then
 * `flush()`, and `close()` in a finally. Jobs run in batches, in the order added within a batch;
 * batches run in parallel, so jobs must not depend on each other (folders are made by the caller first).
 */
export class FileJobPool {
  readonly #context: RunContext;
  readonly #workers: WorkerSet | undefined;
  readonly #inlineJobs: number;
  readonly #onDone: ((jobs: readonly FileJob[]) => void) | undefined;
  readonly #callerRuns: boolean;
  #current: Batch = { jobs: [], bytes: 0 };
  /** Sealed batches waiting for a worker (only with `callerRuns: false`). */
  readonly #queued: Batch[] = [];
  #inFlight = 0;
  #added = 0;
  #doneByWorkers = 0;
  #failed = false;
  #failure: unknown;
  #closed = false;
  /** Resolved (and replaced) whenever a worker's batch settles, for flush() and close() to wait on. */
  #settled = FileJobPool.#signal();

  constructor(options: FileJobPoolOptions = {}) {
    const count = options.workers ?? defaultWorkerCount();
    this.#workers = count > 0 ? workerSet(count) : undefined;
    this.#inlineJobs = options.inlineJobs ?? DEFAULT_INLINE_JOBS;
    this.#onDone = options.onDone;
    this.#callerRuns = options.callerRuns ?? true;
    this.#context = {
      umask: process.umask(),
      uid: process.getuid?.() ?? -1,
      gid: process.getgid?.() ?? -1,
      preserveOwner: options.preserveOwner ?? false,
    };
    if (this.#workers) {
      this.#workers.acquire();
      // Starting a worker takes tens of milliseconds; when the work is known to be large, that overlaps it.
      if ((options.expectedJobs ?? 0) > this.#inlineJobs) this.#workers.start();
    }
  }

  static #signal(): { promise: Promise<void>; resolve: () => void } {
    let resolve!: () => void;
    const promise = new Promise<void>((done) => (resolve = done));
    return { promise, resolve };
  }

  /** Jobs the workers did (the rest ran on the calling thread). */
  get doneByWorkers(): number {
    return this.#doneByWorkers;
  }

  /**
   * Runs `job` now, or adds it to the batch being filled; await what it returns (a promise only when
   * there is something to wait for). Rejects with the first failure of any job.
   */
  add(job: FileJob): Promise<void> | undefined {
    if (this.#failed) return this.#throwWhenSettled();
    this.#added++;
    const workers = this.#workers;
    if (!workers || (!workers.started && this.#added <= this.#inlineJobs)) return this.#runHere([job]);
    workers.start();
    if (this.#queued.length > 0) this.#dispatch();
    this.#current.jobs.push(job);
    if (job.kind === 'write') this.#current.bytes += job.data.byteLength;
    if (this.#current.jobs.length >= BATCH_JOBS || this.#current.bytes >= BATCH_BYTES) return this.#seal();
    // Most calls only add to the batch: no promise for them (tens of thousands per deployment).
    return undefined;
  }

  /** Waits until every job added so far is done; rejects with the first failure. */
  async flush(): Promise<void> {
    if (this.#current.jobs.length > 0 && !this.#failed) await this.#seal();
    while (this.#queued.length > 0 && !this.#failed) {
      this.#dispatch();
      if (this.#queued.length === 0) break;
      // Nothing free: run one here rather than wait, the archive is read to the end.
      await this.#runHere(this.#queued.shift()!.jobs);
    }
    while (this.#inFlight > 0) await this.#settled.promise;
    if (this.#failed) throw this.#failure;
  }

  /** Waits for the batches in flight and gives the workers back; call once, in a finally. Jobs not yet run are dropped. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#current = { jobs: [], bytes: 0 };
    this.#queued.length = 0;
    while (this.#inFlight > 0) await this.#settled.promise;
    this.#workers?.release();
  }

  async #throwWhenSettled(): Promise<never> {
    this.#queued.length = 0;
    while (this.#inFlight > 0) await this.#settled.promise;
    throw this.#failure;
  }

  async #runHere(jobs: FileJob[]): Promise<void> {
    for (let start = 0; start < jobs.length; ) {
      const { done, error, large } = runInline(jobs, this.#context, start);
      let next = done;
      let failure = error;
      if (large) {
        try {
          await copyLargeHere(jobs[done] as CopyJob, this.#context);
          next = done + 1;
        } catch (largeError) {
          failure = largeError;
        }
      }
      if (next > start) this.#onDone?.(start === 0 && next === jobs.length ? jobs : jobs.slice(start, next));
      if (failure !== undefined) {
        markFailed(failure, jobs[next]);
        this.#fail(failure);
        return this.#throwWhenSettled();
      }
      start = next;
    }
  }

  #fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#failure = error;
    this.#queued.length = 0;
  }

  /**
   * Closes the current batch: a free worker takes it; else this thread runs it, or (`callerRuns: false`,
   * once a worker is up) it waits in a bounded queue.
   */
  async #seal(): Promise<void> {
    const batch = this.#current;
    this.#current = { jobs: [], bytes: 0 };
    this.#queued.push(batch);
    this.#dispatch();
    if (this.#queued.length === 0) return;
    if (this.#callerRuns || !this.#workers?.anyUp) {
      await this.#runHere(this.#queued.shift()!.jobs);
      // Another caller's failure (a worker's) surfaces at the next add() or flush().
      return;
    }
    while (this.#queued.length > MAX_QUEUED_BATCHES && !this.#failed) {
      // Nothing of ours in flight (a worker busy for another pool): waiting would wait for nothing.
      if (this.#inFlight === 0) await this.#runHere(this.#queued.shift()!.jobs);
      else await this.#settled.promise;
      this.#dispatch();
    }
    if (this.#failed) return this.#throwWhenSettled();
  }

  /** Hands queued batches, oldest first, to the workers that are free. */
  #dispatch(): void {
    while (this.#queued.length > 0 && !this.#failed) {
      const batch = this.#queued[0];
      if (!this.#workers?.tryRun(batch.jobs, this.#context, (reply) => this.#settle(batch, reply))) return;
      this.#queued.shift();
      this.#inFlight++;
    }
  }

  #settle(batch: Batch, reply: Reply): void {
    this.#inFlight--;
    this.#doneByWorkers += reply.done;
    const jobs = batch.jobs;
    applyReports(jobs, reply);
    if (reply.done > 0) this.#onDone?.(reply.done === jobs.length ? jobs : jobs.slice(0, reply.done));
    if (reply.failure) {
      const error = errorFrom(reply.failure);
      markFailed(error, jobs[reply.done]);
      this.#fail(error);
    }
    this.#dispatch();
    const settled = this.#settled;
    this.#settled = FileJobPool.#signal();
    settled.resolve();
  }
}
