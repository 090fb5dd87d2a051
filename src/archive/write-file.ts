import fs from 'node:fs';
import { promisify } from 'node:util';
import { createFileSync, finishFileSync } from '../util/file-jobs/destination.js';
import type { InodeAttributes } from '../util/file-jobs/inode-attributes.js';

/**
 * Unpacking's large files: streamed, asynchronously, one chunk at a time, so the event loop is never
 * held for long. The file is created and finished by the rules every created file follows
 * (../util/file-jobs/destination.ts); small files are written by a FileJobPool with the same rules, in
 * worker threads.
 */

const writeFd = promisify(fs.write);

/**
 * Creates `path` from content too large to hold in memory. Each chunk is written before the next is
 * read, so the source is paused for as long as the disk is slower than it.
 */
export async function writeStreamedFile(
  path: string,
  chunks: AsyncIterable<Buffer>,
  attributes: InodeAttributes,
  umask: number,
  signal?: AbortSignal,
): Promise<void> {
  const fd = createFileSync(path, attributes, umask);
  try {
    for await (const chunk of chunks) {
      signal?.throwIfAborted();
      for (let offset = 0; offset < chunk.length; ) {
        offset += (await writeFd(fd, chunk, offset, chunk.length - offset, null)).bytesWritten;
      }
    }
    finishFileSync(fd, attributes, umask);
  } finally {
    fs.closeSync(fd);
  }
}
