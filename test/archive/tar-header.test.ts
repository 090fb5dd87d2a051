import { Header } from 'tar';
import { describe, expect, it } from 'vitest';
import { decodeCommonHeader } from '../../src/archive/tar-header.js';

/** xorshift32: the same blocks on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 2 ** 32;
  };
}

function setChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += block[i];
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}

const NAME_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789._-/ ';

/** A header as tar tools write them (node-tar's encoder, or GNU magic), then sometimes damaged on purpose. */
function makeBlock(next: () => number): Buffer {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
  const name = (max: number) => Array.from({ length: Math.floor(next() * max) }, () => pick([...NAME_CHARS])).join('');
  const header = new Header({
    path: pick([name(20), name(99), `${name(120)}/${name(60)}`, name(200), 'dir/']),
    mode: pick([0o644, 0o755, 0o4755, 0o777, 0o7777, 0]),
    uid: pick([0, 1000, 65534, 2 ** 20, 2 ** 30]),
    gid: pick([0, 1000, 2 ** 21]),
    size: pick([0, 1, 4096, 2 ** 32, 2 ** 40]),
    mtime: new Date(pick([0, 1_700_000_000, 2 ** 34]) * 1000),
    type: pick(['File', 'File', 'File', 'OldFile', 'Link', 'SymbolicLink', 'Directory', 'Directory', 'CharacterDevice', 'FIFO', 'ExtendedHeader', 'NextFileHasLongPath']),
    linkpath: pick([undefined, name(30), name(100)]),
    uname: pick([undefined, 'root', name(40)]),
    gname: pick([undefined, 'wheel', name(10)]),
  });
  const block = Buffer.alloc(512);
  header.encode(block, 0);
  if (next() < 0.4) {
    // GNU tar's own format
    block.write('ustar  \0', 257, 8, 'latin1');
    setChecksum(block);
  }
  const damage = next();
  if (damage < 0.4) {
    const at = Math.floor(next() * 512);
    block[at] = pick([0, 0x0a, 0x0d, 0x20, 0x2d, 0x2b, 0x38, 0x80, 0xc3, 0xff, 0x30, 0x37, 0x2f]);
    if (next() < 0.7) setChecksum(block);
  }
  return block;
}

describe('decodeCommonHeader', () => {
  it('gives what node-tar gives for every block it accepts, and accepts the common ones', () => {
    const next = random(7);
    let accepted = 0;
    const total = 20_000;
    for (let n = 0; n < total; n++) {
      const block = makeBlock(next);
      const fast = decodeCommonHeader(block);
      if (!fast) continue;
      accepted++;
      const reference = new Header(block, 0);
      const view = (h: typeof fast) => ({
        cksumValid: h.cksumValid,
        path: h.path,
        linkpath: h.linkpath,
        mode: h.mode,
        uid: h.uid,
        gid: h.gid,
        size: h.size,
        mtime: h.mtime?.getTime(),
        uname: h.uname,
        gname: h.gname,
        typeKey: h.typeKey,
      });
      expect(view(fast), `block ${n}: ${block.toString('latin1').replace(/\0/g, '·')}`).toEqual(view(reference));
    }
    expect(accepted).toBeGreaterThan(total / 10);
  });

  it('leaves pax, long-name and device headers, base-256 numbers and non-ASCII names to node-tar', () => {
    const plain = new Header({ path: 'a.txt', mode: 0o644, size: 1, mtime: new Date(0), type: 'File' });
    const block = Buffer.alloc(512);
    plain.encode(block, 0);
    expect(decodeCommonHeader(block)?.path).toBe('a.txt');
    for (const type of ['ExtendedHeader', 'GlobalExtendedHeader', 'NextFileHasLongPath', 'CharacterDevice', 'FIFO'] as const) {
      const other = Buffer.alloc(512);
      new Header({ path: 'a.txt', mode: 0o644, size: 1, mtime: new Date(0), type }).encode(other, 0);
      expect(decodeCommonHeader(other), type).toBeUndefined();
    }
    const big = Buffer.alloc(512);
    new Header({ path: 'big', mode: 0o644, size: 2 ** 40, mtime: new Date(0), type: 'File' }).encode(big, 0);
    expect(big[124] & 0x80).toBe(0x80);
    expect(decodeCommonHeader(big)).toBeUndefined();
    const utf8 = Buffer.alloc(512);
    new Header({ path: 'café.txt', mode: 0o644, size: 1, mtime: new Date(0), type: 'File' }).encode(utf8, 0);
    expect(decodeCommonHeader(utf8)).toBeUndefined();
  });
});
