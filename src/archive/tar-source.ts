import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

/**
 * Opens a tar bundle as a stream of plain tar bytes. Like GNU tar, the compression is recognised by
 * its magic bytes rather than trusted from the bundle type: GitHub tarballs are gzip although
 * CodeDeploy calls them `tar`, and users upload `.tar` files that are really `.tar.gz`.
 */

export type TarCompression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'compress';

/** Large reads: the bundle is read once, front to back, and fewer round trips is most of the speed. */
const READ_CHUNK = 1024 * 1024;
const INFLATE_CHUNK = 256 * 1024;

export function detectCompression(head: Buffer): TarCompression {
  const starts = (...bytes: number[]) => bytes.every((byte, i) => head[i] === byte);
  if (starts(0x1f, 0x8b)) return 'gzip';
  if (starts(0x42, 0x5a, 0x68)) return 'bzip2';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (starts(0x1f, 0x9d)) return 'compress';
  return 'none';
}

async function readHead(path: string): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(8);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** The uncompressed tar bytes of `path`. Errors of the file or the decompressor surface while iterating. */
export async function openTarSource(path: string): Promise<Readable> {
  const compression = detectCompression(await readHead(path));
  if (compression !== 'none' && compression !== 'gzip') {
    throw new Error(`${compression}-compressed tar archives are not supported; use a plain or gzip-compressed tar`);
  }
  const file = createReadStream(path, { highWaterMark: READ_CHUNK });
  if (compression === 'none') return file;
  // Inflating runs on libuv's thread pool, in parallel with parsing and writing on the main thread.
  return pipeline(file, createGunzip({ chunkSize: INFLATE_CHUNK }), () => {});
}
