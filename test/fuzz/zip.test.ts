import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openZip } from '../../src/archive/zip-entries.js';
import { rawZip } from '../archive/helpers/raw-zip.js';
import { zipTree } from '../archive/helpers/sample-tree.js';
import { caseRoot, makeFuzzTree, unpackCase } from './archive-fuzz.js';
import { fuzz, mutatedBytes, testTimeout } from './fuzz.js';

/**
 * Zip bundles, damaged: real archives (Info-ZIP's zip with symlinks, stored and deflated, yazl's, a
 * crafted one, one wrapped in a top folder) with bytes flipped, cut short or spliced, and the numbers
 * of their records rewritten (sizes, offsets, name lengths, methods, flags, Unix modes) so the damage
 * reaches past yauzl's structure checks. See ./archive-fuzz.ts for the property.
 */

let base: { dir: string; cleanup: () => void };
let caseNumber = 0;
const seeds: { name: string; zip: Buffer }[] = [];

beforeAll(async () => {
  base = caseRoot('cda-fuzz-zip-');
  const tree = join(base.dir, 'tree', 'revision');
  mkdirSync(tree, { recursive: true });
  makeFuzzTree(tree);
  const zip = (name: string, cwd: string, ...args: string[]) => {
    const file = join(base.dir, name);
    execFileSync('zip', ['-q', '-r', '-y', ...args, file, '.'], { cwd });
    seeds.push({ name, zip: readFileSync(file) });
  };
  zip('deflated.zip', tree);
  zip('stored.zip', tree, '-0');
  // Wrapped in one top folder, as GitHub zipballs are: the strip-top-directory rule runs.
  zip('wrapped.zip', join(base.dir, 'tree'));
  await zipTree(tree, join(base.dir, 'yazl.zip'));
  seeds.push({ name: 'yazl.zip', zip: readFileSync(join(base.dir, 'yazl.zip')) });
  seeds.push({
    name: 'crafted.zip',
    zip: rawZip([
      { name: 'appspec.yml', data: 'version: 0.0\n', deflate: true },
      { name: 'dir/', mode: 0o040755 },
      { name: 'dir/link', data: '../appspec.yml', mode: 0o120777 },
      { name: 'dir\\windows\\name.txt', data: 'backslashes' },
      { name: 'dir/big.txt', data: 'z'.repeat(70_000), deflate: true },
    ]),
  });
  // Above the zip reader's whole-read limit (1 MiB), so yauzl's streamed reads are fuzzed too.
  seeds.push({ name: 'streamed.zip', zip: rawZip([{ name: 'appspec.yml', data: 'version: 0.0\n' }, { name: 'large.bin', data: Buffer.alloc(1_200_000, 7), deflate: true }]) });
});

afterAll(() => base.cleanup());

const SIGNATURES = { local: 0x04034b50, central: 0x02014b50, end: 0x06054b50 } as const;
type Record = keyof typeof SIGNATURES;

/** [offset, length] of the numbers in each record that readers trust. */
const FIELDS: { [R in Record]: [string, number, 2 | 4][] } = {
  local: [['version', 4, 2], ['flags', 6, 2], ['method', 8, 2], ['crc', 14, 4], ['compressedSize', 18, 4], ['size', 22, 4], ['nameLength', 26, 2], ['extraLength', 28, 2]],
  central: [['madeBy', 4, 2], ['flags', 8, 2], ['method', 10, 2], ['crc', 16, 4], ['compressedSize', 20, 4], ['size', 24, 4], ['nameLength', 28, 2],
    ['extraLength', 30, 2], ['commentLength', 32, 2], ['disk', 34, 2], ['attributes', 38, 4], ['localOffset', 42, 4]],
  end: [['disk', 4, 2], ['directoryDisk', 6, 2], ['entriesHere', 8, 2], ['entries', 10, 2], ['directorySize', 12, 4], ['directoryOffset', 16, 4], ['commentLength', 20, 2]],
};

function recordOffsets(zip: Buffer): { record: Record; at: number }[] {
  const found: { record: Record; at: number }[] = [];
  for (let at = 0; at + 4 <= zip.length; at++) {
    const signature = zip.readUInt32LE(at);
    for (const [record, value] of Object.entries(SIGNATURES) as [Record, number][]) if (signature === value) found.push({ record, at });
  }
  return found;
}

const UNIX = (mode: number) => (mode * 0x10000) >>> 0;
const VALUES = [0, 1, 2, 8, 12, 99, 0x7f, 0xff, 0x800, 0x801, 0xffff, 0x7fffffff, 0xffffffff,
  UNIX(0o120777), UNIX(0o040755), UNIX(0o010644), UNIX(0o020644), UNIX(0o060644), UNIX(0o140644), UNIX(0o104755), (3 << 8) | 30, (19 << 8) | 20];

/** Rewrites a few numbers of the zip's records. */
function recordEdits(zip: Buffer): fc.Arbitrary<Buffer> {
  const records = recordOffsets(zip);
  const edit = fc.nat({ max: records.length - 1 }).chain((index) => {
    const { record } = records[index];
    return fc.tuple(fc.constant(index), fc.nat({ max: FIELDS[record].length - 1 }), fc.oneof(fc.constantFrom(...VALUES), fc.integer({ min: -3, max: 3 }).map((delta) => ({ delta }))));
  });
  return fc.array(edit, { minLength: 1, maxLength: 3 }).map((edits) => {
    const copy = Buffer.from(zip);
    const shown: string[] = [];
    for (const [index, fieldIndex, value] of edits) {
      const { record, at } = records[index];
      const [name, offset, size] = FIELDS[record][fieldIndex];
      const max = size === 2 ? 0xffff : 0xffffffff;
      const current = size === 2 ? copy.readUInt16LE(at + offset) : copy.readUInt32LE(at + offset);
      const next = typeof value === 'number' ? value & max : (current + value.delta + max + 1) % (max + 1);
      if (size === 2) copy.writeUInt16LE(next & 0xffff, at + offset);
      else copy.writeUInt32LE(next >>> 0, at + offset);
      shown.push(`${record}@${at}.${name}=${next}`);
    }
    return Object.defineProperty(copy, fc.toStringMethod, { value: () => `recordEdits(${shown.join(', ')})` });
  });
}

function seedArbitrary(): fc.Arbitrary<{ name: string; zip: Buffer }> {
  return fc.constantFrom(...seeds);
}

describe('fuzz: zip bundles', () => {
  const budget = { runs: 300, timeMs: 3_000, caseTimeoutMs: 20_000 };

  it('the real archives unpack (the mutations start from working bundles)', async () => {
    for (const { zip } of seeds) await unpackCase(base.dir, caseNumber++, zip, 'zip');
  });

  it('bytes flipped, cut, spliced or inserted', { timeout: testTimeout(budget.timeMs) }, async () => {
    const damaged = seedArbitrary().chain((seed) => mutatedBytes(seed.zip, 6));
    await fuzz(import.meta.url, fc.asyncProperty(damaged, (zip) => unpackCase(base.dir, caseNumber++, zip, 'zip')), budget);
  });

  it('record numbers rewritten (sizes, offsets, lengths, methods, flags, modes)', { timeout: testTimeout(budget.timeMs) }, async () => {
    const edited = seedArbitrary().chain((seed) => recordEdits(seed.zip));
    await fuzz(import.meta.url, fc.asyncProperty(edited, (zip) => unpackCase(base.dir, caseNumber++, zip, 'zip')), budget);
  });

  it('the reader alone: members or a plain Error with a message, never a TypeError', { timeout: testTimeout(budget.timeMs) }, async () => {
    const any = seedArbitrary().chain((seed) => fc.oneof(mutatedBytes(seed.zip, 6), recordEdits(seed.zip)));
    await fuzz(import.meta.url, fc.asyncProperty(any, async (zip) => {
      const path = join(base.dir, `reader-${caseNumber++}.zip`);
      const { writeFileSync, rmSync } = await import('node:fs');
      writeFileSync(path, zip);
      try {
        const opened = await openZip(path);
        try {
          for await (const member of opened.members()) {
            expect(typeof member.entry.path).toBe('string');
            expect(member.entry.mode).toBeGreaterThanOrEqual(0);
            expect(member.entry.mode).toBeLessThanOrEqual(0o7777);
            if (member.content && member.content.size <= 1024 * 1024) {
              await member.content.readAll().catch((error: unknown) => {
                expect((error as Error).constructor, String((error as Error).stack)).toBe(Error);
              });
            }
          }
        } finally {
          opened.close();
        }
      } catch (error) {
        expect((error as Error).constructor, String((error as Error).stack)).toBe(Error);
        expect((error as Error).message.trim()).not.toBe('');
      } finally {
        rmSync(path, { force: true });
      }
    }), budget);
  });
});
