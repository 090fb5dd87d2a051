import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FileJob } from '../../../src/util/file-jobs/file-job.js';
import type { InodeAttributes } from '../../../src/util/file-jobs/inode-attributes.js';
import { applyReports, reportsOf, errorFrom, failureOf, giveBack, packBatch, transferList, unpackBatch } from '../../../src/util/file-jobs/wire.js';

/** Paths as the pool sees them: anything but NUL, which no path can hold. */
const path = fc.string({ minLength: 1, maxLength: 40, unit: 'binary' }).filter((s) => !s.includes('\0'));
const seconds = fc.double({ min: 0, max: 4e9, noNaN: true });
const attributes: fc.Arbitrary<InodeAttributes> = fc.record(
  {
    mode: fc.integer({ min: 0, max: 0o7777 }),
    atime: seconds,
    mtime: seconds,
    uid: fc.integer({ min: 0, max: 2 ** 32 - 2 }),
    gid: fc.integer({ min: 0, max: 2 ** 32 - 2 }),
  },
  { requiredKeys: ['mode'] },
);
const job: fc.Arbitrary<FileJob> = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), to: path, data: fc.uint8Array({ maxLength: 300 }), attributes }),
  fc.record(
    {
      kind: fc.constant('copy' as const),
      from: path,
      to: path,
      attributes,
      keepOwner: fc.constant(true),
      override: fc.record(
        { mode: fc.integer({ min: 0, max: 0o7777 }), uid: fc.integer({ min: 0, max: 2 ** 32 - 2 }), gid: fc.integer({ min: 0, max: 2 ** 32 - 2 }) },
        { requiredKeys: [] },
      ),
      identify: fc.constant(true),
      sanitize: fc.constant(true),
    },
    { requiredKeys: ['kind', 'from', 'to'] },
  ).map((copy) => {
    // An empty override is no override: the wire does not carry it.
    if (copy.override && Object.keys(copy.override).length === 0) delete copy.override;
    return copy;
  }),
  fc.record(
    { kind: fc.constant('symlink' as const), to: path, target: fc.string({ maxLength: 40 }).filter((s) => !s.includes('\0')), from: path, attributes },
    { requiredKeys: ['kind', 'to'] },
  ),
);

/** A job with its write data as a plain Uint8Array, as toEqual compares them. */
function plain(fileJob: FileJob): FileJob {
  return fileJob.kind === 'write' ? { ...fileJob, data: Uint8Array.from(fileJob.data) } : fileJob;
}

describe('the wire format of a batch', () => {
  it('gives the worker back exactly the jobs packed, in order', () => {
    fc.assert(
      fc.property(fc.array(job, { minLength: 1, maxLength: 60 }), (jobs) => {
        const batch = packBatch(jobs);
        const unpacked = unpackBatch(structuredClone(batch, { transfer: transferList(batch) }));
        expect(unpacked.map(plain)).toEqual(jobs.map(plain));
      }),
      { numRuns: 300 },
    );
  });

  it('brings back what the copies that asked report (inode made, original owner and mode), onto the agent\'s own job objects', () => {
    const jobs: FileJob[] = [
      { kind: 'copy', from: '/a', to: '/b', identify: true },
      { kind: 'symlink', to: '/c', target: 'x' },
      { kind: 'copy', from: '/d', to: '/e', identify: true, sanitize: true },
    ];
    const batch = packBatch(jobs);
    const inWorker = unpackBatch(batch);
    expect(inWorker[2]).toMatchObject({ identify: true, sanitize: true });
    (inWorker[0] as Extract<FileJob, { kind: 'copy' }>).created = { dev: 2049, ino: 2 ** 40 + 3 };
    Object.assign(inWorker[2], { created: { dev: 2049, ino: 17 }, original: { mode: 0o4755, uid: 1000, gid: 1001 } });
    applyReports(jobs, structuredClone(reportsOf(batch, inWorker)));
    expect(jobs.map((job) => (job.kind === 'copy' ? job.created : undefined))).toEqual([{ dev: 2049, ino: 2 ** 40 + 3 }, undefined, { dev: 2049, ino: 17 }]);
    expect(jobs[2]).toMatchObject({ original: { mode: 0o4755, uid: 1000, gid: 1001 } });
    // A batch where nothing asked reports nothing, and costs no walk over its jobs.
    const plain = packBatch([jobs[1]]);
    expect(reportsOf(plain, unpackBatch(plain))).toEqual({});
  });

  it('carries write data from views into larger buffers, and reuses the buffers handed back', () => {
    const backing = Buffer.from('0123456789abcdefghij');
    const jobs: FileJob[] = [
      { kind: 'write', to: '/a', data: backing.subarray(3, 7), attributes: { mode: 0o644 } },
      { kind: 'write', to: '/b', data: new Uint8Array(0), attributes: { mode: 0o600, mtime: 12.5 } },
      { kind: 'write', to: '/c', data: backing.subarray(15), attributes: { mode: 0o4755, uid: 0, gid: 7 } },
    ];
    const first = packBatch(jobs);
    const unpacked = unpackBatch(first);
    expect(Buffer.from(unpacked[0].kind === 'write' ? unpacked[0].data : []).toString()).toBe('3456');
    expect(Buffer.from(unpacked[2].kind === 'write' ? unpacked[2].data : []).toString()).toBe('fghij');
    giveBack(first.data);
    expect(packBatch(jobs).data).toBe(first.data);
  });

  it('packs a batch without write data into paths and numbers only', () => {
    const batch = packBatch([{ kind: 'copy', from: '/src/a', to: '/dst/a' }]);
    expect(batch.data).toBeUndefined();
    expect(transferList(batch)).toEqual([batch.numbers]);
  });

  it('brings a job error back with the fields callers map', () => {
    const original = Object.assign(new Error("EEXIST: file already exists, open '/dst/a'"), { code: 'EEXIST', errno: -17, syscall: 'open', path: '/dst/a' });
    const error = errorFrom(structuredClone(failureOf(original))) as NodeJS.ErrnoException;
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ message: original.message, code: 'EEXIST', errno: -17, syscall: 'open', path: '/dst/a' });
    expect('dest' in error).toBe(false);
  });
});
