import type { FileJob, RunContext } from './file-job.js';
import type { InodeAttributes } from './inode-attributes.js';

/**
 * What passes between the agent's thread and a file worker. Structured cloning of thousands of small
 * job objects cost more than the copies they describe, so a batch travels as one string of paths
 * (NUL-separated: no path holds NUL), one array of numbers and one buffer of write data, the last two
 * transferred, not copied; the worker hands the data buffer back with its answer, for the next batch.
 */

/**
 * Numbers per job, in order: kind, which fields are present (bits), mode, atime, mtime, uid, gid, data
 * offset, data length, and a copy's override: mode, uid, gid.
 */
const FIELDS = 12;
const KINDS = ['write', 'copy', 'symlink'] as const;
const HAS = {
  attributes: 1,
  atime: 2,
  mtime: 4,
  uid: 8,
  gid: 16,
  from: 32,
  target: 64,
  keepOwner: 128,
  overrideMode: 256,
  overrideUid: 512,
  overrideGid: 1024,
  identify: 2048,
  sanitize: 4096,
} as const;

export interface PackedBatch {
  paths: string;
  numbers: ArrayBuffer;
  data?: ArrayBuffer;
}

/** Agent's thread → worker. */
export interface BatchMessage {
  batch: PackedBatch;
  context: RunContext;
}

/** A job's error, as it crosses back: the fields callers map (ENOSPC, EEXIST, ...). */
export interface Failure {
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
  dest?: string;
}

/** Worker → agent's thread. */
export interface Reply {
  /** Jobs done, from the first: the job at this index failed when `failure` is set. */
  done: number;
  /** For copies that asked (`identify`): index in the batch, device, inode, one after another. */
  created?: number[];
  /** For copies made `sanitize`d that differ: index in the batch, mode, uid, gid, one after another. */
  originals?: number[];
  failure?: Failure;
  /** The batch's data buffer, handed back. */
  data?: ArrayBuffer;
}

/**
 * How a worker says, without a message, that it is up and how many batches it has finished: two cells
 * of a shared Int32Array. The agent's thread, busy running batches itself, cannot see messages until it
 * yields.
 */
export interface WorkerData {
  state: SharedArrayBuffer;
  readyAt: number;
  finishedAt: number;
}

/** Transfer buffers the workers gave back, for the next batches. */
const spareBuffers: ArrayBuffer[] = [];
const TRANSFER_BUFFER_SIZE = 2 * 1024 * 1024;

/**
 * A buffer for a batch's write data. Allocating a fresh one per batch cost a page fault per 4 KiB
 * (20,000 of them on 80 MB of small files).
 */
function transferBuffer(bytes: number): ArrayBuffer {
  if (bytes > TRANSFER_BUFFER_SIZE) return new ArrayBuffer(bytes);
  return spareBuffers.pop() ?? new ArrayBuffer(TRANSFER_BUFFER_SIZE);
}

/** Keeps a buffer a worker handed back, for the next batch. */
export function giveBack(buffer: ArrayBuffer | undefined): void {
  if (buffer?.byteLength === TRANSFER_BUFFER_SIZE && spareBuffers.length < 8) spareBuffers.push(buffer);
}

/** The buffers to transfer (not copy) with a batch. */
export function transferList(batch: PackedBatch): ArrayBuffer[] {
  return batch.data ? [batch.numbers, batch.data] : [batch.numbers];
}

export function packBatch(jobs: readonly FileJob[]): PackedBatch {
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
    if (job.kind === 'copy') {
      if (job.keepOwner) has |= HAS.keepOwner;
      if (job.identify) has |= HAS.identify;
      if (job.sanitize) has |= HAS.sanitize;
      const override = job.override;
      if (override?.mode !== undefined) (has |= HAS.overrideMode), (numbers[at + 9] = override.mode);
      if (override?.uid !== undefined) (has |= HAS.overrideUid), (numbers[at + 10] = override.uid);
      if (override?.gid !== undefined) (has |= HAS.overrideGid), (numbers[at + 11] = override.gid);
    }
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

/** packBatch undone, in the worker; write data are views into the batch's buffer. */
export function unpackBatch({ paths, numbers, data }: PackedBatch): FileJob[] {
  const n = new Float64Array(numbers);
  const names = paths.split('\0');
  const jobs: FileJob[] = [];
  let name = 0;
  for (let at = 0; at < n.length; at += FIELDS) {
    const has = n[at + 1];
    const kind = KINDS[n[at]];
    const to = names[name++];
    const from = has & HAS.from ? names[name++] : undefined;
    const target = has & HAS.target ? names[name++] : undefined;
    let attributes: InodeAttributes | undefined;
    if (has & HAS.attributes) {
      attributes = { mode: n[at + 2] };
      if (has & HAS.atime) attributes.atime = n[at + 3];
      if (has & HAS.mtime) attributes.mtime = n[at + 4];
      if (has & HAS.uid) attributes.uid = n[at + 5];
      if (has & HAS.gid) attributes.gid = n[at + 6];
    }
    if (kind === 'write') {
      const bytes = data ? new Uint8Array(data, n[at + 7], n[at + 8]) : new Uint8Array(0);
      jobs.push({ kind, to, data: bytes, attributes: attributes! });
    } else if (kind === 'copy') {
      const job: FileJob = { kind, to, from: from! };
      if (attributes) job.attributes = attributes;
      if (has & HAS.keepOwner) job.keepOwner = true;
      if (has & HAS.identify) job.identify = true;
      if (has & HAS.sanitize) job.sanitize = true;
      if (has & (HAS.overrideMode | HAS.overrideUid | HAS.overrideGid)) {
        job.override = {};
        if (has & HAS.overrideMode) job.override.mode = n[at + 9];
        if (has & HAS.overrideUid) job.override.uid = n[at + 10];
        if (has & HAS.overrideGid) job.override.gid = n[at + 11];
      }
      jobs.push(job);
    } else {
      const job: FileJob = { kind, to };
      if (from !== undefined) job.from = from;
      if (target !== undefined) job.target = target;
      if (attributes) job.attributes = attributes;
      jobs.push(job);
    }
  }
  return jobs;
}

/** What the copies of a batch report back (Reply.created, Reply.originals), for the jobs that asked. */
export function reportsOf(batch: PackedBatch, jobs: readonly FileJob[]): Pick<Reply, 'created' | 'originals'> {
  const n = new Float64Array(batch.numbers);
  let asked = 0;
  for (let at = 1; at < n.length; at += FIELDS) asked |= n[at];
  if (!(asked & (HAS.identify | HAS.sanitize))) return {};
  let created: number[] | undefined;
  let originals: number[] | undefined;
  jobs.forEach((job, index) => {
    if (job.kind !== 'copy') return;
    if (job.created) (created ??= []).push(index, job.created.dev, job.created.ino);
    if (job.original) (originals ??= []).push(index, job.original.mode, job.original.uid, job.original.gid);
  });
  return { created, originals };
}

/** Puts what a worker's copies reported on the agent's own job objects. */
export function applyReports(jobs: readonly FileJob[], { created, originals }: Pick<Reply, 'created' | 'originals'>): void {
  if (created) {
    for (let at = 0; at < created.length; at += 3) {
      const job = jobs[created[at]];
      if (job?.kind === 'copy') job.created = { dev: created[at + 1], ino: created[at + 2] };
    }
  }
  if (originals) {
    for (let at = 0; at < originals.length; at += 4) {
      const job = jobs[originals[at]];
      if (job?.kind === 'copy') job.original = { mode: originals[at + 1], uid: originals[at + 2], gid: originals[at + 3] };
    }
  }
}

/** A job's error as it can cross threads. */
export function failureOf(error: unknown): Failure {
  const e = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as Partial<NodeJS.ErrnoException> & { dest?: string };
  return { message: String(e.message), code: e.code, errno: e.errno, syscall: e.syscall, path: e.path, dest: e.dest };
}

/** Rebuilds a worker's error with the fields callers map. */
export function errorFrom(failure: Failure): Error {
  const error = new Error(failure.message);
  for (const key of ['code', 'errno', 'syscall', 'path', 'dest'] as const) {
    if (failure[key] !== undefined) (error as unknown as Record<string, unknown>)[key] = failure[key];
  }
  return error;
}
