import { Worker } from 'node:worker_threads';
import type { FileJob, RunContext } from './file-job.js';
import { fileJobWorkerText } from './worker-text.js';
import { giveBack, packBatch, transferList, type BatchMessage, type Reply, type WorkerData } from './wire.js';

/** Idle workers are stopped after this long, so an idle daemon does not keep them. */
const IDLE_SHUTDOWN_MS = 5_000;

let script: string | undefined;

/**
 * The worker's script (CommonJS) wrapped so it runs however Node.js evaluates it: a worker inherits the
 * process's options, and with `--input-type=module` (or a default type of module) its text is an ES
 * module, where `require` does not exist: the worker would fail at its first line, and the calling
 * thread would do all the work, unnoticed.
 */
function workerScript(): string {
  script ??= `((require) => {\n${fileJobWorkerText()}\n})(typeof require === "function" ? require : process.getBuiltinModule);\n`;
  return script;
}

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
 * The file workers, shared by every pool of the process, so a deployment's DownloadBundle and Install
 * pay for starting them once. Each worker runs one batch at a time; a worker keeps the process alive
 * only while a batch of it is unanswered. Stopped after a few idle seconds.
 */
export class WorkerSet {
  readonly #slots: Slot[] = [];
  /** Per worker: ready flag, batches finished (see WorkerData). */
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
      const workerData: WorkerData = { state: this.#state.buffer as SharedArrayBuffer, readyAt: cells, finishedAt: cells + 1 };
      const worker = new Worker(workerScript(), { eval: true, workerData });
      const slot: Slot = { worker, readyAt: cells, finishedAt: cells + 1, posted: 0, replies: [] };
      worker.unref();
      worker.on('message', (reply: Reply) => this.#answer(slot, reply));
      worker.once('error', (error) => {
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
  tryRun(jobs: readonly FileJob[], context: RunContext, onReply: (reply: Reply) => void): boolean {
    const slot = this.#slots.find(
      (candidate) => Atomics.load(this.#state, candidate.readyAt) === 1 && Atomics.load(this.#state, candidate.finishedAt) === candidate.posted,
    );
    if (!slot) return false;
    slot.posted++;
    slot.replies.push(onReply);
    slot.worker.ref();
    const message: BatchMessage = { batch: packBatch(jobs), context };
    slot.worker.postMessage(message, transferList(message.batch));
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

/** The process's set of `size` workers. */
export function workerSet(size: number): WorkerSet {
  let set = workerSets.get(size);
  if (!set) {
    set = new WorkerSet(size);
    workerSets.set(size, set);
  }
  return set;
}
