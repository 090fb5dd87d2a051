import { createWriteStream, readdirSync, readlinkSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, expect, it } from 'vitest';
import yazl from 'yazl';
import { openZip } from '../../src/archive/zip-entries.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * The zip's descriptor is closed once, by close(), and by nothing else. Streaming an entry above the
 * whole-read limit used to close it as a side effect (yauzl destroys each entry stream it has read,
 * and an fs read stream closes its fd on destroy even with autoClose: false): the next read then hit
 * a closed fd, or whatever file had since taken its number, and close() closed that file under its
 * owner (a file-job worker's destination: EBADF on its close, or a lost write).
 */
const tmp = makeTempDir('cda-zipfd-');
afterAll(tmp.cleanup);

/** The descriptors this process has open on `path`. */
function descriptorsOf(path: string): number[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path;
      } catch {
        return false;
      }
    });
}

async function writeZip(path: string, members: [string, Buffer][]): Promise<void> {
  const zip = new yazl.ZipFile();
  // Stored, so the data after a large entry lies beyond the reader's 1 MiB window and needs a fresh read.
  for (const [name, data] of members) zip.addBuffer(data, name, { compress: false });
  zip.end();
  const out = createWriteStream(path);
  zip.outputStream.pipe(out);
  await once(out, 'close');
}

it('streaming a large entry leaves the descriptor open, reads after it see the zip, close() closes it', async () => {
  const path = join(tmp.dir, 'large-then-small.zip');
  const large = Buffer.alloc(3 * 1024 * 1024, 0x5a);
  await writeZip(path, [
    ['large.bin', large],
    ['after.txt', Buffer.from('after the large entry\n')],
  ]);
  const zip = await openZip(path);
  const [fd] = descriptorsOf(path);
  expect(fd, 'openZip holds the zip open').toBeTypeOf('number');

  const read: Record<string, Buffer> = {};
  for await (const { entry, content } of zip.members()) {
    const chunks: Buffer[] = [];
    for await (const chunk of content!.chunks()) chunks.push(chunk);
    read[entry.path] = Buffer.concat(chunks);
    // Time for a close the stream may have started on the thread pool to land.
    await sleep(100);
    expect(descriptorsOf(path), `after '${entry.path}' the descriptor is still the zip's`).toEqual([fd]);
  }
  expect(read['large.bin']!.equals(large)).toBe(true);
  expect(read['after.txt']!.toString()).toBe('after the large entry\n');

  zip.close();
  for (let waited = 0; descriptorsOf(path).length > 0 && waited < 5000; waited += 20) await sleep(20);
  expect(descriptorsOf(path), 'close() released the zip').toEqual([]);
});

it('a read after close() fails instead of reading whatever file took the number', async () => {
  const path = join(tmp.dir, 'small.zip');
  await writeZip(path, [['a.txt', Buffer.from('a\n')]]);
  const zip = await openZip(path);
  const members = zip.members();
  const first = await members.next();
  zip.close();
  const content = first.done ? undefined : first.value.content;
  await expect(content!.readAll()).rejects.toThrow(/read after the zip file was closed/);
  await members.return(undefined);
});
