import { parentPort, workerData } from 'node:worker_threads';
import { createJobRunner } from './run-jobs.js';
import { failureOf, reportsOf, unpackBatch, type BatchMessage, type Reply, type WorkerData } from './wire.js';

/**
 * A file worker: runs the batches the agent's thread posts, one at a time, and answers each. This is
 * its own build entry: ./worker-text.ts makes it one self-contained script, which the worker is
 * started from (`eval`), so no worker file is needed next to the bundle or the single executable.
 */

const { state: sharedState, readyAt, finishedAt } = workerData as WorkerData;
const state = new Int32Array(sharedState);
const runJobs = createJobRunner();
const port = parentPort!;

port.on('message', ({ batch, context }: BatchMessage) => {
  const jobs = unpackBatch(batch);
  const { done, error } = runJobs(jobs, context);
  const reply: Reply = { done, ...reportsOf(batch, jobs), failure: error === undefined ? undefined : failureOf(error), data: batch.data };
  // Counted before the answer is sent: the agent's thread, on reading the answer, must find this worker free.
  Atomics.add(state, finishedAt, 1);
  port.postMessage(reply, batch.data ? [batch.data] : []);
});
Atomics.store(state, readyAt, 1);
