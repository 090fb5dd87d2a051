import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTarMembers } from '../../src/archive/tar-entries.js';
import { rawTar, paxEntry } from '../archive/helpers/raw-tar.js';
import { caseRoot, makeFuzzTree, unpackCase } from './archive-fuzz.js';
import { fuzz, mutatedBytes, testTimeout } from './fuzz.js';

/**
 * Tar bundles as S3 or GitHub deliver them, damaged: real archives (GNU, pax, ustar, gzip, and crafted
 * pax/long-name/label entries) with bytes flipped, cut short, spliced, and header fields rewritten with
 * a valid checksum so the damage reaches past the checksum test. See ./archive-fuzz.ts for the property.
 */

let base: { dir: string; cleanup: () => void };
let caseNumber = 0;
const seeds: { name: string; tar: Buffer }[] = [];

beforeAll(() => {
  base = caseRoot('cda-fuzz-tar-');
  const tree = join(base.dir, 'tree', 'revision');
  mkdirSync(tree, { recursive: true });
  makeFuzzTree(tree);
  const tar = (name: string, ...args: string[]) => {
    const file = join(base.dir, name);
    execFileSync('tar', ['-cf', file, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', ...args]);
    seeds.push({ name, tar: readFileSync(file) });
  };
  tar('gnu.tar', '--format=gnu', '-C', tree, '.');
  tar('pax.tar', '--format=pax', '-C', tree, '.');
  tar('ustar.tar', '--format=ustar', '--exclude=long-directory-name-*', '-C', tree, '.');
  // Wrapped in one top folder, as GitHub tarballs are: the strip-top-directory rule runs.
  tar('wrapped.tar', '--format=gnu', '-C', join(base.dir, 'tree'), 'revision');
  seeds.push({
    name: 'crafted.tar',
    tar: rawTar([
      paxEntry({ comment: 'global' }, 'g'),
      { name: 'appspec.yml', data: 'version: 0.0\n' },
      paxEntry({ path: 'pax/long/' + 'p'.repeat(120), mtime: '1600000000.5' }),
      { name: 'placeholder', data: 'pax named\n' },
      { name: '././@LongLink', type: 'L', data: `${'g'.repeat(130)}\0` },
      { name: 'short', data: 'gnu long name\n' },
      { name: 'label', type: 'V' },
      { name: 'dir/', type: '5' },
      { name: 'dir/link', type: '2', linkname: '../appspec.yml' },
      { name: 'dir/hard', type: '1', linkname: 'appspec.yml' },
    ]),
  });
});

afterAll(() => base.cleanup());

/** The header blocks of a tar: where each starts. */
function headerOffsets(tar: Buffer): number[] {
  const offsets: number[] = [];
  for (let at = 0; at + 512 <= tar.length; ) {
    const block = tar.subarray(at, at + 512);
    if (block.every((byte) => byte === 0)) break;
    offsets.push(at);
    const size = Number.parseInt(block.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8) || 0;
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return offsets;
}

const FIELDS = {
  name: [0, 100], mode: [100, 8], uid: [108, 8], gid: [116, 8], size: [124, 12], mtime: [136, 12], type: [156, 1],
  linkname: [157, 100], magic: [257, 8], uname: [265, 32], gname: [297, 32], prefix: [345, 155],
} as const;
type Field = keyof typeof FIELDS;

const NUMBERS = ['77777777777\0', '7777777\0', '00000000000\0', '-1\0', '-0000001\0', '', ' 12 \0', '1e3\0', '99999999999\0', '\x80\0\0\0\0\0\0\x01\0\0\0\0', '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff', '\x80\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00'];
const NAMES = ['../outside/pwned', '../../outside/keep.txt', '/tmp/abs', '.', '..', '', './', 'a/../../outside', 'x\0y', 'appspec.yml', 'dir/link/through', 'links/to-dir/x', 'ü'.repeat(60), '\u0000'];
const TYPES = ['0', '1', '2', '3', '4', '5', '6', '7', 'x', 'g', 'L', 'K', 'V', 'S', 'D', 'M', 'N', '\0', 'Z'];

const fieldValue = (field: Field): fc.Arbitrary<string> => {
  if (field === 'type') return fc.constantFrom(...TYPES);
  if (field === 'magic') return fc.constantFrom('ustar\u000000', 'ustar  \0', 'garbage!', '\0'.repeat(8));
  if (field === 'name' || field === 'linkname' || field === 'prefix' || field === 'uname' || field === 'gname') return fc.oneof(fc.constantFrom(...NAMES), fc.string({ maxLength: 20 }));
  return fc.oneof(fc.constantFrom(...NUMBERS), fc.integer({ min: 0, max: 0o77777777777 }).map((n) => `${n.toString(8).padStart(FIELDS[field][1] - 1, '0')}\0`));
};

/** Rewrites one field of one header (then fixes that header's checksum) a few times. */
function headerEdits(tar: Buffer): fc.Arbitrary<Buffer> {
  const offsets = headerOffsets(tar);
  const edit = fc.tuple(fc.nat({ max: offsets.length - 1 }), fc.constantFrom(...(Object.keys(FIELDS) as Field[])))
    .chain(([header, field]) => fieldValue(field).map((value) => ({ header, field, value })));
  return fc.array(edit, { minLength: 1, maxLength: 3 }).map((edits) => {
    const copy = Buffer.from(tar);
    for (const { header, field, value } of edits) {
      const at = offsets[header];
      const [start, length] = FIELDS[field];
      const bytes = Buffer.from(value, field === 'name' || field === 'linkname' || field === 'prefix' ? 'utf8' : 'latin1');
      copy.fill(0, at + start, at + start + length);
      bytes.copy(copy, at + start, 0, Math.min(bytes.length, length));
      copy.fill(' ', at + 148, at + 156);
      let sum = 0;
      for (let i = at; i < at + 512; i++) sum += copy[i];
      copy.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 8, 'latin1');
    }
    return Object.defineProperty(copy, fc.toStringMethod, { value: () => `headerEdits(${JSON.stringify(edits)})` });
  });
}

function seedArbitrary(): fc.Arbitrary<{ name: string; tar: Buffer }> {
  return fc.constantFrom(...seeds);
}

describe('fuzz: tar bundles', () => {
  const budget = { runs: 300, timeMs: 3_000, caseTimeoutMs: 20_000 };

  it('the real archives unpack (the mutations start from working bundles)', async () => {
    for (const { tar } of seeds) await unpackCase(base.dir, caseNumber++, tar, 'tar');
  });

  it('bytes flipped, cut, spliced or inserted', { timeout: testTimeout(budget.timeMs) }, async () => {
    const damaged = seedArbitrary().chain((seed) => mutatedBytes(seed.tar, 6));
    await fuzz(import.meta.url, fc.asyncProperty(damaged, (tar) => unpackCase(base.dir, caseNumber++, tar, 'tar')), budget);
  });

  it('header fields rewritten with a valid checksum', { timeout: testTimeout(budget.timeMs) }, async () => {
    const edited = seedArbitrary().chain((seed) => headerEdits(seed.tar));
    await fuzz(import.meta.url, fc.asyncProperty(edited, (tar) => unpackCase(base.dir, caseNumber++, tar, 'tar')), budget);
  });

  it('gzip: damaged tars compressed, and compressed tars damaged', { timeout: testTimeout(budget.timeMs) }, async () => {
    const gzipped = fc.oneof(
      seedArbitrary().chain((seed) => headerEdits(seed.tar)).map((tar) => gzipSync(tar)),
      seedArbitrary().chain((seed) => mutatedBytes(gzipSync(seed.tar), 3)),
    );
    await fuzz(import.meta.url, fc.asyncProperty(gzipped, fc.constantFrom('tgz', 'tar') as fc.Arbitrary<'tgz' | 'tar'>, (tgz, type) => unpackCase(base.dir, caseNumber++, tgz, type)), budget);
  });

  it('the reader alone: members in order or a plain Error with a message, never a TypeError', { timeout: testTimeout(budget.timeMs) }, async () => {
    const any = seedArbitrary().chain((seed) => fc.oneof(mutatedBytes(seed.tar, 6), headerEdits(seed.tar)));
    await fuzz(import.meta.url, fc.asyncProperty(any, async (tar) => {
      try {
        for await (const member of readTarMembers(Readable.from([tar]))) {
          expect(typeof member.entry.path).toBe('string');
          expect(member.entry.mode).toBeGreaterThanOrEqual(0);
          expect(member.entry.mode).toBeLessThanOrEqual(0o7777);
          if (member.content) {
            expect(Number.isSafeInteger(member.content.size)).toBe(true);
            // Read what fits; a header may claim more than the archive holds.
            await member.content.readAll().catch((error: unknown) => {
              expect((error as Error).constructor).toBe(Error);
            });
          }
        }
      } catch (error) {
        expect(error, String((error as Error).stack)).toBeInstanceOf(Error);
        expect((error as Error).constructor, String((error as Error).stack)).toBe(Error);
        expect((error as Error).message.trim()).not.toBe('');
      }
    }), budget);
  });
});
