import fs from 'node:fs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * Creating tens of thousands of small files (unpacking, copying a revision folder, Install) costs
 * system calls, not bytes: 10-15 µs of kernel time per file on a tmpfs, as much for the agent as for
 * `cp -a` or `tar -x`, and one thread of Node.js adds its own overhead to that. The kernel creates
 * files in parallel, so this pool spreads the calls over the calling thread and worker threads; each
 * job runs with synchronous calls (an asynchronous call costs a thread-pool round trip and a promise,
 * which on small files is more than the call itself), in batches.
 *
 * The first jobs run on the calling thread, so a small revision never pays for starting workers.
 * Workers (one per CPU but one) are started once there is more work, shared by every pool of the
 * process and stopped after a few idle seconds. With one CPU everything runs on the calling thread.
 */

/** What a created inode gets. `uid`/`gid` only when ownership must change (root giving files away). */
export interface JobAttributes {
  /** Exact permission bits, setuid/setgid/sticky included (0o7777). */
  mode: number;
  /** Seconds since the epoch (fractions kept); default: now. */
  atime?: number;
  /** Seconds since the epoch; undefined leaves the time of creation. */
  mtime?: number;
  uid?: number;
  gid?: number;
}

export type FileJob =
  /** Create `to` (which must not exist) holding `data`. */
  | { kind: 'write'; to: string; data: Uint8Array; attributes: JobAttributes }
  /**
   * Create `to` (which must not exist) as a copy of the regular file `from`, which is never followed
   * if it is a symlink. Without `attributes`: the source's mode and times and, with `preserveOwner`,
   * its owner when it is not the agent's (`cp -a`), or always with `keepOwner` (a setgid folder would
   * give the copy its own group). A failed copy removes what it created.
   */
  | { kind: 'copy'; from: string; to: string; attributes?: JobAttributes; keepOwner?: boolean }
  /** Create the symlink `to` → `target`; or, with `from`, a copy of the symlink `from` (target, owner, times). */
  | { kind: 'symlink'; to: string; target?: string; from?: string; attributes?: JobAttributes };

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

/**
 * The jobs' code, as source text: it runs both in the workers (which are started from this text, so
 * the bundle needs no separate worker file) and on the calling thread. Plain JavaScript, only `fs`.
 */
const RUNNER_SOURCE = String.raw`(fs, bufferSize) => {
  const c = fs.constants;
  const CREATE = c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW;
  const COPY_FLAGS = c.COPYFILE_EXCL | c.COPYFILE_FICLONE;
  const buffer = Buffer.allocUnsafe(bufferSize);
  let context;

  const now = () => Date.now() / 1000;
  const chowns = (a) => a.uid !== undefined || a.gid !== undefined;
  // The umask strips bits from open(2)'s mode, and chown(2) clears setuid and setgid.
  const needsChmod = (a) => chowns(a) || (a.mode & 0o7000) !== 0 || (a.mode & context.umask) !== 0;

  const sourceAttributes = (stats, job) => {
    const a = { mode: stats.mode & 0o7777, atime: stats.atimeMs / 1000, mtime: stats.mtimeMs / 1000 };
    if (context.preserveOwner && (job.keepOwner || stats.uid !== context.uid || stats.gid !== context.gid)) {
      a.uid = stats.uid;
      a.gid = stats.gid;
    }
    return a;
  };

  // When a chmod follows, the file starts private rather than briefly wider than it should be.
  const create = (path, a) => fs.openSync(path, CREATE, needsChmod(a) ? 0o600 : a.mode & 0o777);

  // chown before chmod: chown(2) clears setuid and setgid.
  const finishFd = (fd, a) => {
    if (chowns(a)) fs.fchownSync(fd, a.uid ?? -1, a.gid ?? -1);
    if (needsChmod(a)) fs.fchmodSync(fd, a.mode);
    if (a.mtime !== undefined) fs.futimesSync(fd, a.atime ?? now(), a.mtime);
  };

  const write = (job) => {
    const fd = create(job.to, job.attributes);
    try {
      const data = job.data;
      for (let offset = 0; offset < data.length; ) offset += fs.writeSync(fd, data, offset, data.length - offset);
      finishFd(fd, job.attributes);
    } finally {
      fs.closeSync(fd);
    }
  };

  // Large files: copyFile (copy_file_range, or a reflink where the file system has them), which gives
  // the copy the source's exact mode; then owner and times by path, on the inode this job created.
  const copyLarge = (job, a) => {
    fs.copyFileSync(job.from, job.to, COPY_FLAGS);
    try {
      if (chowns(a)) {
        fs.lchownSync(job.to, a.uid ?? -1, a.gid ?? -1);
        fs.chmodSync(job.to, a.mode);
      }
      fs.utimesSync(job.to, a.atime ?? now(), a.mtime ?? now());
    } catch (error) {
      fs.rmSync(job.to, { force: true });
      throw error;
    }
  };

  // Small files: read and write through one reused buffer, fewer calls than copyFile makes.
  const copy = (job) => {
    // O_NONBLOCK: a FIFO put in the file's place would otherwise block the open forever.
    const source = fs.openSync(job.from, c.O_RDONLY | c.O_NOFOLLOW | c.O_NONBLOCK);
    let target;
    try {
      const stats = fs.fstatSync(source);
      if (!stats.isFile()) throw Object.assign(new Error(job.from + ' is not a regular file'), { code: 'EINVAL' });
      // On the agent's own thread a large copy is handed back, to be made without holding the event loop.
      if (stats.size > buffer.length && context.inline) return 'large';
      const a = job.attributes ?? sourceAttributes(stats, job);
      if (stats.size > buffer.length) return copyLarge(job, a);
      target = create(job.to, a);
      for (let position = 0; position < stats.size; ) {
        const read = fs.readSync(source, buffer, 0, buffer.length, position);
        if (read === 0) break;
        for (let written = 0; written < read; ) written += fs.writeSync(target, buffer, written, read - written);
        position += read;
      }
      finishFd(target, a);
    } catch (error) {
      if (target !== undefined) {
        fs.closeSync(target);
        target = undefined;
        fs.rmSync(job.to, { force: true });
      }
      throw error;
    } finally {
      fs.closeSync(source);
      if (target !== undefined) fs.closeSync(target);
    }
  };

  const symlink = (job) => {
    let target = job.target ?? '';
    let a = job.attributes;
    if (job.from !== undefined) {
      const stats = fs.lstatSync(job.from);
      target = fs.readlinkSync(job.from);
      a = sourceAttributes(stats, job);
    }
    fs.symlinkSync(target, job.to);
    if (a && chowns(a)) fs.lchownSync(job.to, a.uid ?? -1, a.gid ?? -1);
    if (a && a.mtime !== undefined) fs.lutimesSync(job.to, a.atime ?? now(), a.mtime);
  };

  const run = { write, copy, symlink };
  // Runs jobs in order from 'start' until one fails or is handed back: how many were done, and why it stopped.
  return (jobs, jobContext, start = 0) => {
    context = jobContext;
    for (let index = start; index < jobs.length; index++) {
      try {
        if (run[jobs[index].kind](jobs[index]) === 'large') return { done: index, large: true };
      } catch (error) {
        return { done: index, error };
      }
    }
    return { done: jobs.length };
  };
}`;

/** Files up to this size are copied through a buffer; larger ones with copyFile. */
const COPY_BUFFER_SIZE = 64 * 1024;

interface RunnerContext {
  umask: number;
  uid: number;
  gid: number;
  preserveOwner: boolean;
  /** Running on the agent's own thread: large copies are handed back (see copyLargeHere). */
  inline?: boolean;
}

interface RunResult {
  /** Index of the first job not done (all of them when it equals the length). */
  done: number;
  error?: unknown;
  /** The job at `done` is a large copy handed back. */
  large?: boolean;
}

type JobRunner = (jobs: readonly FileJob[], context: RunnerContext, start?: number) => RunResult;

interface Failure {
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
  dest?: string;
}

interface Reply {
  done: number;
  failure?: Failure;
  /** The batch's transfer buffer, handed back. */
  data?: ArrayBuffer;
}

let inlineRunner: JobRunner | undefined;

/** The same text the workers run, compiled once on this thread. */
function runInline(jobs: readonly FileJob[], context: RunnerContext, start: number): RunResult {
  inlineRunner ??= (new Function(`return ${RUNNER_SOURCE}`)() as (nodeFs: typeof fs, bufferSize: number) => JobRunner)(fs, COPY_BUFFER_SIZE);
  return inlineRunner(jobs, { ...context, inline: true }, start);
}

/**
 * A large copy on the agent's own thread: asynchronous (libuv's thread pool), so a 1 GiB file does not
 * hold the event loop, and the daemon keeps polling and sending heartbeats meanwhile.
 */
async function copyLargeHere(job: Extract<FileJob, { kind: 'copy' }>, context: RunnerContext): Promise<void> {
  const stats = await fs.promises.lstat(job.from);
  if (!stats.isFile()) throw Object.assign(new Error(`${job.from} is not a regular file`), { code: 'EINVAL' });
  let attributes = job.attributes;
  if (!attributes) {
    attributes = { mode: stats.mode & 0o7777, atime: stats.atimeMs / 1000, mtime: stats.mtimeMs / 1000 };
    if (context.preserveOwner && (job.keepOwner || stats.uid !== context.uid || stats.gid !== context.gid)) {
      attributes.uid = stats.uid;
      attributes.gid = stats.gid;
    }
  }
  const { COPYFILE_EXCL, COPYFILE_FICLONE } = fs.constants;
  await fs.promises.copyFile(job.from, job.to, COPYFILE_EXCL | COPYFILE_FICLONE);
  try {
    // copyFile gave the copy the source's exact mode; chown(2) clears setuid and setgid again.
    if (attributes.uid !== undefined || attributes.gid !== undefined) {
      await fs.promises.lchown(job.to, attributes.uid ?? -1, attributes.gid ?? -1);
      await fs.promises.chmod(job.to, attributes.mode);
    }
    const now = Date.now() / 1000;
    await fs.promises.utimes(job.to, attributes.atime ?? now, attributes.mtime ?? now);
  } catch (error) {
    await fs.promises.rm(job.to, { force: true });
    throw error;
  }
}

/** Rebuilds a worker's error with the fields callers map (ENOSPC, EEXIST, ...). */
function errorFrom(failure: Failure): Error {
  const error = new Error(failure.message);
  for (const key of ['code', 'errno', 'syscall', 'path', 'dest'] as const) {
    if (failure[key] !== undefined) (error as unknown as Record<string, unknown>)[key] = failure[key];
  }
  return error;
}

const failedJobs = new WeakMap<object, FileJob>();

/** The job whose failure `error` is, when it came from a pool. */
export function failedJob(error: unknown): FileJob | undefined {
  return typeof error === 'object' && error !== null ? failedJobs.get(error) : undefined;
}

function markFailed(error: unknown, job: FileJob | undefined): void {
  if (job && typeof error === 'object' && error !== null) failedJobs.set(error, job);
}

/** Idle workers are stopped after this long, so an idle daemon does not keep them. */
const IDLE_SHUTDOWN_MS = 5_000;

/**
 * A batch as a worker receives it. Structured cloning of thousands of small objects cost more than the
 * copies they describe, so a batch travels as one string of paths (NUL-separated: no path holds NUL),
 * one array of numbers and one buffer of write data, the last two transferred, not copied.
 * Numbers per job, in order: kind (0 write, 1 copy, 2 symlink), which fields are present (bits), mode,
 * atime, mtime, uid, gid, data offset, data length.
 */
const FIELDS = 9;
const KINDS = ['write', 'copy', 'symlink'] as const;
const HAS = { attributes: 1, atime: 2, mtime: 4, uid: 8, gid: 16, from: 32, target: 64, keepOwner: 128 } as const;

interface PackedBatch {
  paths: string;
  numbers: ArrayBuffer;
  data?: ArrayBuffer;
}

function packBatch(jobs: readonly FileJob[]): PackedBatch {
  const numbers = new Float64Array(jobs.length * FIELDS);
  const paths: string[] = [];
  let dataBytes = 0;
  for (const job of jobs) if (job.kind === 'write') dataBytes += job.data.byteLength;
  const data = dataBytes > 0 ? new Uint8Array(transferBuffer(dataBytes), 0, dataBytes) : undefined;
  let dataOffset = 0;
  jobs.forEach((job, index) => {
    const at = index * FIELDS;
    let has = 0;
    paths.push(job.to);
    if (job.kind !== 'write' && job.from !== undefined) {
      has |= HAS.from;
      paths.push(job.from);
    }
    if (job.kind === 'copy' && job.keepOwner) has |= HAS.keepOwner;
    if (job.kind === 'symlink' && job.target !== undefined) {
      has |= HAS.target;
      paths.push(job.target);
    }
    const a = job.attributes;
    if (a) {
      has |= HAS.attributes;
      numbers[at + 2] = a.mode;
      if (a.atime !== undefined) (has |= HAS.atime), (numbers[at + 3] = a.atime);
      if (a.mtime !== undefined) (has |= HAS.mtime), (numbers[at + 4] = a.mtime);
      if (a.uid !== undefined) (has |= HAS.uid), (numbers[at + 5] = a.uid);
      if (a.gid !== undefined) (has |= HAS.gid), (numbers[at + 6] = a.gid);
    }
    if (job.kind === 'write' && data) {
      data.set(job.data, dataOffset);
      numbers[at + 7] = dataOffset;
      numbers[at + 8] = job.data.byteLength;
      dataOffset += job.data.byteLength;
    }
    numbers[at] = KINDS.indexOf(job.kind);
    numbers[at + 1] = has;
  });
  return { paths: paths.join('\0'), numbers: numbers.buffer, data: data?.buffer };
}

/** Transfer buffers the workers gave back, for the next batches. */
const spareBuffers: ArrayBuffer[] = [];
const TRANSFER_BUFFER_SIZE = 2 * 1024 * 1024;

/**
 * A buffer for a batch's write data. The workers hand each one back with their answer: allocating a
 * fresh one per batch cost a page fault per 4 KiB (20,000 of them on 80 MB of small files).
 */
function transferBuffer(bytes: number): ArrayBuffer {
  if (bytes > TRANSFER_BUFFER_SIZE) return new ArrayBuffer(bytes);
  return spareBuffers.pop() ?? new ArrayBuffer(TRANSFER_BUFFER_SIZE);
}

function giveBack(buffer: ArrayBuffer | undefined): void {
  if (buffer?.byteLength === TRANSFER_BUFFER_SIZE && spareBuffers.length < 8) spareBuffers.push(buffer);
}

/** packBatch undone, in the worker: the same text runs there. */
const UNPACK_SOURCE = String.raw`({ paths, numbers, data }) => {
  const n = new Float64Array(numbers);
  const names = paths.split('\0');
  const kinds = ['write', 'copy', 'symlink'];
  const jobs = [];
  let name = 0;
  for (let at = 0; at < n.length; at += ${FIELDS}) {
    const has = n[at + 1];
    const job = { kind: kinds[n[at]], to: names[name++] };
    if (has & ${HAS.from}) job.from = names[name++];
    if (has & ${HAS.target}) job.target = names[name++];
    if (has & ${HAS.keepOwner}) job.keepOwner = true;
    if (has & ${HAS.attributes}) {
      const a = { mode: n[at + 2] };
      if (has & ${HAS.atime}) a.atime = n[at + 3];
      if (has & ${HAS.mtime}) a.mtime = n[at + 4];
      if (has & ${HAS.uid}) a.uid = n[at + 5];
      if (has & ${HAS.gid}) a.gid = n[at + 6];
      job.attributes = a;
    }
    if (job.kind === 'write') job.data = new Uint8Array(data, n[at + 7], n[at + 8]);
    jobs.push(job);
  }
  return jobs;
}`;

// The data of a batch's write jobs travels in one transferred buffer (no copy); each job names its slice.
// `state` (shared memory) says, without a message, that this worker is up and how many batches it has
// finished: the agent's thread, busy running batches itself, cannot see messages until it yields.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const runJobs = (${RUNNER_SOURCE})(require('node:fs'), ${COPY_BUFFER_SIZE});
const state = new Int32Array(workerData.state);
const { readyAt, finishedAt } = workerData;
const unpack = ${UNPACK_SOURCE};
parentPort.on('message', ({ batch, context }) => {
  const { done, error } = runJobs(unpack(batch), context);
  const failure = error && { message: String(error.message), code: error.code, errno: error.errno, syscall: error.syscall, path: error.path, dest: error.dest };
  // Counted before the answer is sent: the agent's thread, on reading the answer, must find this worker free.
  Atomics.add(state, finishedAt, 1);
  parentPort.postMessage({ done, failure, data: batch.data }, batch.data ? [batch.data] : []);
});
Atomics.store(state, readyAt, 1);
`;

interface Slot {
  worker: Worker;
  /** Where in the shared state this worker says it is ready, and counts the batches it finished. */
  readyAt: number;
  finishedAt: number;
  /** Batches posted to it. */
  posted: number;
  /** Reply callbacks of the batches posted and not yet answered, oldest first. */
  replies: ((reply: Reply) => void)[];
}

/**
 * The worker threads, shared by every pool of the process, so a deployment's DownloadBundle and Install
 * pay for starting them once. Each worker runs one batch at a time; a worker keeps the process alive
 * only while a batch of it is unanswered. Stopped after a few idle seconds.
 */
class WorkerSet {
  readonly #slots: Slot[] = [];
  /** Per worker: ready flag, batches finished. */
  readonly #state: Int32Array;
  #users = 0;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(readonly size: number) {
    this.#state = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * 2 * size));
  }

  acquire(): void {
    this.#users++;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  release(): void {
    this.#users--;
    if (this.#users > 0 || this.#slots.length === 0) return;
    this.#idleTimer = setTimeout(() => this.#stopAll(), IDLE_SHUTDOWN_MS);
    this.#idleTimer.unref();
  }

  start(): void {
    for (let index = this.#slots.length; index < this.size; index++) {
      // A pair of cells no live worker uses.
      const used = new Set(this.#slots.map((slot) => slot.readyAt));
      let cells = 0;
      while (used.has(cells)) cells += 2;
      Atomics.store(this.#state, cells, 0);
      Atomics.store(this.#state, cells + 1, 0);
      const workerData = { state: this.#state.buffer, readyAt: cells, finishedAt: cells + 1 };
      const slot: Slot = { worker: new Worker(WORKER_SOURCE, { eval: true, workerData }), readyAt: cells, finishedAt: cells + 1, posted: 0, replies: [] };
      slot.worker.unref();
      slot.worker.on('message', (reply: Reply) => this.#answer(slot, reply));
      slot.worker.once('error', (error) => {
        // A worker that died (out of memory, say) fails its batches and leaves the set.
        const at = this.#slots.indexOf(slot);
        if (at >= 0) this.#slots.splice(at, 1);
        while (slot.replies.length > 0) this.#answer(slot, { done: 0, failure: { message: `a file worker stopped: ${error.message}` } });
      });
      this.#slots.push(slot);
    }
  }

  get started(): boolean {
    return this.#slots.length > 0;
  }

  /** Whether any worker is up (it may be busy). */
  get anyUp(): boolean {
    return this.#slots.some((slot) => Atomics.load(this.#state, slot.readyAt) === 1);
  }

  /** Hands `jobs` to a worker that is up and idle; false when there is none. */
  tryRun(jobs: readonly FileJob[], context: RunnerContext, onReply: (reply: Reply) => void): boolean {
    const slot = this.#slots.find(
      (candidate) => Atomics.load(this.#state, candidate.readyAt) === 1 && Atomics.load(this.#state, candidate.finishedAt) === candidate.posted,
    );
    if (!slot) return false;
    slot.posted++;
    slot.replies.push(onReply);
    slot.worker.ref();
    const batch = packBatch(jobs);
    slot.worker.postMessage({ batch, context }, batch.data ? [batch.numbers, batch.data] : [batch.numbers]);
    return true;
  }

  #answer(slot: Slot, reply: Reply): void {
    giveBack(reply.data);
    const onReply = slot.replies.shift();
    if (slot.replies.length === 0) slot.worker.unref();
    onReply?.(reply);
  }

  #stopAll(): void {
    if (this.#users > 0) return;
    for (const slot of this.#slots.splice(0)) void slot.worker.terminate();
  }
}

const workerSets = new Map<number, WorkerSet>();

function workerSet(size: number): WorkerSet {
  let set = workerSets.get(size);
  if (!set) {
    set = new WorkerSet(size);
    workerSets.set(size, set);
  }
  return set;
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
  readonly #context: RunnerContext;
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
          await copyLargeHere(jobs[done] as Extract<FileJob, { kind: 'copy' }>, this.#context);
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
