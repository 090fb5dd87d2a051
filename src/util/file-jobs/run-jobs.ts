import fs, { type Stats } from 'node:fs';
import { copyIntoNewFile, copyIntoNewFileSync, createFileSync, createSymlinkSync, finishFileSync, removeCreatedSync } from './destination.js';
import type { CopyJob, FileJob, RunContext } from './file-job.js';
import { attributesOf, withoutSharedWrite, type InodeAttributes } from './inode-attributes.js';

/**
 * Runs file jobs with synchronous calls, one after another: the same code in the file workers
 * (./worker.ts) and on the agent's thread. An asynchronous call costs a thread-pool round trip and a
 * promise, which on a small file is more than the call itself. What touches the destination comes
 * from ./destination.ts.
 */

/** Files up to this size are copied through a buffer; larger ones with copyFile. */
export const COPY_BUFFER_SIZE = 64 * 1024;

export interface RunResult {
  /** Index of the first job not done (all of them when it equals the length). */
  done: number;
  error?: unknown;
  /** The job at `done` is a large copy handed back (on the agent's thread only, see copyLargeHere). */
  large?: boolean;
}

/** Runs `jobs` in order from `start` until one fails or is handed back. */
export type JobRunner = (jobs: readonly FileJob[], context: RunContext, start?: number) => RunResult;

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
/** O_NONBLOCK: a FIFO put in the file's place would otherwise block the open forever. */
const SOURCE_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;

/** What a copy without attributes gives its target: the source's mode and times, and maybe its owner. */
function sourceAttributes(stats: Stats, job: FileJob, context: RunContext): InodeAttributes {
  const keepOwner = job.kind === 'copy' && job.keepOwner === true;
  return attributesOf(stats, context.preserveOwner && (keepOwner || stats.uid !== context.uid || stats.gid !== context.gid));
}

/** A copy's attributes: given, or the source's, with the job's override on top; made `sanitize`d last. */
function copyAttributes(stats: Stats, job: CopyJob, context: RunContext): InodeAttributes {
  let attributes = job.attributes ?? sourceAttributes(stats, job, context);
  const override = job.override;
  if (override) {
    attributes = { ...attributes };
    if (override.mode !== undefined) attributes.mode = override.mode;
    if (override.uid !== undefined) attributes.uid = override.uid;
    if (override.gid !== undefined) attributes.gid = override.gid;
  }
  if (!job.sanitize) return attributes;
  const mode = withoutSharedWrite(attributes.mode);
  if (mode !== attributes.mode || attributes.uid !== undefined || attributes.gid !== undefined) {
    job.original = { mode: attributes.mode, uid: attributes.uid ?? context.uid, gid: attributes.gid ?? context.gid };
  }
  return { mode, atime: attributes.atime, mtime: attributes.mtime };
}

function identify(job: CopyJob, fd: number): void {
  if (!job.identify) return;
  const { dev, ino } = fs.fstatSync(fd);
  job.created = { dev, ino };
}

function notRegularFile(path: string): Error {
  return Object.assign(new Error(`${path} is not a regular file`), { code: 'EINVAL' });
}

function writeAllSync(fd: number, data: Uint8Array, length: number): void {
  for (let offset = 0; offset < length; ) offset += fs.writeSync(fd, data, offset, length - offset);
}

/** A runner with its own copy buffer: one per thread. */
export function createJobRunner(bufferSize = COPY_BUFFER_SIZE): JobRunner {
  const buffer = Buffer.allocUnsafe(bufferSize);

  const write = (job: Extract<FileJob, { kind: 'write' }>, context: RunContext): void => {
    const fd = createFileSync(job.to, job.attributes, context.umask);
    try {
      writeAllSync(fd, job.data, job.data.length);
      finishFileSync(fd, job.attributes, context.umask);
    } finally {
      fs.closeSync(fd);
    }
  };

  // Small files: read and write through one reused buffer, fewer calls than copyFile makes.
  const copy = (job: CopyJob, context: RunContext): 'large' | undefined => {
    const source = fs.openSync(job.from, SOURCE_FLAGS);
    let target: number | undefined;
    try {
      const stats = fs.fstatSync(source);
      if (!stats.isFile()) throw notRegularFile(job.from);
      // On the agent's own thread a large copy is handed back, to be made without holding the event loop.
      if (stats.size > buffer.length && context.inline) return 'large';
      const attributes = copyAttributes(stats, job, context);
      if (stats.size > buffer.length) {
        const copied = copyIntoNewFileSync(source, job.to, attributes);
        try {
          identify(job, copied);
        } finally {
          fs.closeSync(copied);
        }
        return undefined;
      }
      target = createFileSync(job.to, attributes, context.umask);
      for (let position = 0; position < stats.size; ) {
        const read = fs.readSync(source, buffer, 0, buffer.length, position);
        if (read === 0) break;
        writeAllSync(target, buffer, read);
        position += read;
      }
      finishFileSync(target, attributes, context.umask);
      identify(job, target);
    } catch (error) {
      if (target !== undefined) {
        fs.closeSync(target);
        target = undefined;
        removeCreatedSync(job.to);
      }
      throw error;
    } finally {
      fs.closeSync(source);
      if (target !== undefined) fs.closeSync(target);
    }
    return undefined;
  };

  const symlink = (job: Extract<FileJob, { kind: 'symlink' }>, context: RunContext): void => {
    if (job.from === undefined) {
      createSymlinkSync(job.to, job.target ?? '', job.attributes);
    } else {
      const stats = fs.lstatSync(job.from);
      createSymlinkSync(job.to, fs.readlinkSync(job.from), sourceAttributes(stats, job, context));
    }
  };

  const runOne = (job: FileJob, context: RunContext): 'large' | undefined => {
    switch (job.kind) {
      case 'write':
        write(job, context);
        return undefined;
      case 'copy':
        return copy(job, context);
      case 'symlink':
        symlink(job, context);
        return undefined;
    }
  };

  return (jobs, context, start = 0) => {
    for (let index = start; index < jobs.length; index++) {
      try {
        if (runOne(jobs[index], context) === 'large') return { done: index, large: true };
      } catch (error) {
        return { done: index, error };
      }
    }
    return { done: jobs.length };
  };
}

/**
 * A large copy on the agent's own thread: asynchronous (libuv's thread pool), so a 1 GiB file does not
 * hold the event loop, and the daemon keeps polling and sending heartbeats meanwhile.
 */
export async function copyLargeHere(job: CopyJob, context: RunContext): Promise<void> {
  const source = fs.openSync(job.from, SOURCE_FLAGS);
  try {
    const stats = fs.fstatSync(source);
    if (!stats.isFile()) throw notRegularFile(job.from);
    const copied = await copyIntoNewFile(source, job.to, copyAttributes(stats, job, context));
    try {
      identify(job, copied);
    } finally {
      fs.closeSync(copied);
    }
  } finally {
    fs.closeSync(source);
  }
}
