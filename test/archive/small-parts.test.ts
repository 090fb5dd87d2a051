import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ByteReader } from '../../src/archive/byte-reader.js';
import { FileWindow } from '../../src/archive/file-window.js';
import { OwnerLookup, parseIdFile } from '../../src/archive/owner-lookup.js';
import { describeZipEntry } from '../../src/archive/zip-entries.js';
import { useTempDir } from '../helpers/tmp.js';

const tmp = useTempDir('cda-parts-');

describe('ByteReader', () => {
  const source = () => Readable.from([Buffer.from('abc'), Buffer.from('defgh'), Buffer.from('ij')]);

  it('reads exact lengths across chunks and reports the position', async () => {
    const reader = new ByteReader(source());
    expect((await reader.read(2)).toString()).toBe('ab');
    expect((await reader.read(4)).toString()).toBe('cdef');
    expect(reader.position).toBe(6);
    expect((await reader.readSome(10)).toString()).toBe('gh');
    expect(await reader.skip(5)).toBe(2);
    expect((await reader.read(1)).length).toBe(0);
  });

  it('returns a short read at the end of the source', async () => {
    const reader = new ByteReader(source());
    expect((await reader.read(100)).toString()).toBe('abcdefghij');
  });

  it('closes the source early', async () => {
    const stream = source();
    const reader = new ByteReader(stream);
    await reader.read(1);
    await reader.close();
    expect(stream.destroyed).toBe(true);
  });
});

describe('FileWindow', () => {
  it('serves reads from a window and reads past it when needed', () => {
    const path = join(tmp.dir, 'data');
    writeFileSync(path, Buffer.from(Array.from({ length: 100 }, (_, i) => i)));
    const fd = openSync(path, 'r');
    try {
      const window = new FileWindow(fd, 100, 16);
      expect([...window.read(0, 4)]).toEqual([0, 1, 2, 3]);
      expect([...window.read(10, 4)]).toEqual([10, 11, 12, 13]);
      expect([...window.read(14, 4)]).toEqual([14, 15, 16, 17]);
      const first = window.read(20, 2);
      window.read(80, 2);
      expect([...first]).toEqual([20, 21]);
      expect(window.read(50, 40).length).toBe(40);
      expect([...window.read(98, 10)]).toEqual([98, 99]);
      expect(window.read(100, 4).length).toBe(0);
    } finally {
      closeSync(fd);
    }
  });
});

describe('OwnerLookup', () => {
  it('parses passwd and group files', () => {
    expect(parseIdFile('root:x:0:0:root:/root:/bin/bash\n# comment\nbroken\nweb:x:33:33::/var/www:/bin/sh\nweb:x:99:99::/:/bin/sh\n')).toEqual(
      new Map([
        ['root', 0],
        ['web', 33],
      ]),
    );
  });

  it('prefers names that exist here, then the numeric ids', () => {
    const passwd = join(tmp.dir, 'passwd');
    const group = join(tmp.dir, 'group');
    writeFileSync(passwd, 'deploy:x:1500:1500::/home/deploy:/bin/sh\n');
    writeFileSync(group, 'deployers:x:1600:\n');
    const owners = new OwnerLookup(passwd, group);
    expect(owners.resolve({ uid: 1, gid: 2, uname: 'deploy', gname: 'deployers' })).toEqual({ uid: 1500, gid: 1600 });
    expect(owners.resolve({ uid: 1, gid: 2, uname: 'stranger', gname: '' })).toEqual({ uid: 1, gid: 2 });
    expect(owners.resolve({})).toEqual({ uid: undefined, gid: undefined });
  });

  it('drops ids chown cannot set, so the entry keeps the agent\'s owner (found by test/fuzz/tar.test.ts)', () => {
    const owners = new OwnerLookup(join(tmp.dir, 'none'), join(tmp.dir, 'none'));
    expect(owners.resolve({ uid: 2 ** 32, gid: -5 })).toEqual({ uid: undefined, gid: undefined });
    expect(owners.resolve({ uid: 2 ** 32 - 1, gid: 1.5 })).toEqual({ uid: undefined, gid: undefined });
    expect(owners.resolve({ uid: 2 ** 32 - 2, gid: 0 })).toEqual({ uid: 2 ** 32 - 2, gid: 0 });
  });
});

describe('describeZipEntry', () => {
  const unix = (3 << 8) | 30;
  const windows = 20;
  it('reads kind and mode from Unix external attributes', () => {
    expect(describeZipEntry('a', unix, (0o100755 << 16) >>> 0)).toEqual({ kind: 'file', mode: 0o755 });
    expect(describeZipEntry('a', unix, (0o104755 << 16) >>> 0)).toEqual({ kind: 'file', mode: 0o4755 });
    expect(describeZipEntry('d/', unix, (0o040700 << 16) >>> 0)).toEqual({ kind: 'directory', mode: 0o700 });
    expect(describeZipEntry('l', unix, (0o120777 << 16) >>> 0)).toEqual({ kind: 'symlink', mode: 0o777 });
    expect(describeZipEntry('c', unix, (0o020666 << 16) >>> 0).kind).toBe('character-device');
    expect(describeZipEntry('b', unix, (0o060660 << 16) >>> 0).kind).toBe('block-device');
    expect(describeZipEntry('p', unix, (0o010644 << 16) >>> 0).kind).toBe('fifo');
    expect(describeZipEntry('s', unix, (0o140755 << 16) >>> 0).kind).toBe('socket');
  });

  it("falls back to unzip's defaults when no Unix mode is recorded", () => {
    expect(describeZipEntry('a.txt', windows, 0x20)).toEqual({ kind: 'file', mode: 0o644 });
    expect(describeZipEntry('ro.txt', windows, 0x21)).toEqual({ kind: 'file', mode: 0o444 });
    expect(describeZipEntry('dir/', windows, 0x10)).toEqual({ kind: 'directory', mode: 0o755 });
    expect(describeZipEntry('dir-no-slash', windows, 0x10).kind).toBe('directory');
    expect(describeZipEntry('plain', unix, 0)).toEqual({ kind: 'file', mode: 0o644 });
  });
});
