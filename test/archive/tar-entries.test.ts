import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readTarMembers, type TarMember } from '../../src/archive/tar-entries.js';
import { detectCompression } from '../../src/archive/tar-source.js';
import { paxEntry, rawTar } from './helpers/raw-tar.js';

/** The archive split into odd-sized chunks, so headers and bodies straddle chunk boundaries. */
function chunked(data: Buffer, size = 333): AsyncIterable<Buffer> {
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) chunks.push(data.subarray(at, at + size));
  return Readable.from(chunks);
}

async function readAll(data: Buffer, options: { readContent?: boolean } = {}): Promise<{ members: TarMember[]; contents: string[] }> {
  const members: TarMember[] = [];
  const contents: string[] = [];
  for await (const member of readTarMembers(chunked(data))) {
    members.push(member);
    if (member.content && options.readContent !== false) contents.push((await member.content.readAll()).toString());
  }
  return { members, contents };
}

describe('readTarMembers', () => {
  it('reads entries across chunk boundaries, kinds, modes and owners', async () => {
    const { members, contents } = await readAll(
      rawTar([
        { name: 'dir/', type: '5', mode: 0o2750, uid: 7, gid: 8, uname: 'seven', gname: 'eight', mtime: 1_500_000_000 },
        { name: 'dir/file', data: 'x'.repeat(700), mode: 0o100644 },
        { name: 'dir/link', type: '2', linkname: 'file' },
        { name: 'dir/hard', type: '1', linkname: 'dir/file' },
        { name: 'dev', type: '3', devmajor: 1, devminor: 3 },
        { name: 'fifo', type: '6' },
      ]),
    );
    expect(members.map(({ entry }) => [entry.path, entry.kind])).toEqual([
      ['dir/', 'directory'],
      ['dir/file', 'file'],
      ['dir/link', 'symlink'],
      ['dir/hard', 'hardlink'],
      ['dev', 'character-device'],
      ['fifo', 'fifo'],
    ]);
    expect(members[0].entry).toMatchObject({ mode: 0o2750, owner: { uid: 7, gid: 8, uname: 'seven', gname: 'eight' }, mtime: new Date(1_500_000_000_000) });
    // File-type bits some tars put in the mode field are dropped.
    expect(members[1].entry.mode).toBe(0o644);
    expect(members[2].entry.linkTarget).toBe('file');
    expect(contents).toEqual(['x'.repeat(700)]);
  });

  it('skips content the consumer did not read', async () => {
    const { members } = await readAll(rawTar([{ name: 'a', data: 'a'.repeat(1000) }, { name: 'b', data: 'b' }]), { readContent: false });
    expect(members.map(({ entry }) => entry.path)).toEqual(['a', 'b']);
  });

  it('streams content in chunks without reading past the entry', async () => {
    const chunks: number[] = [];
    const names: string[] = [];
    for await (const { entry, content } of readTarMembers(chunked(rawTar([{ name: 'big', data: 'z'.repeat(5000) }, { name: 'next', data: 'n' }])))) {
      names.push(entry.path);
      if (entry.path === 'big') for await (const chunk of content!.chunks()) chunks.push(chunk.length);
    }
    expect(chunks.reduce((a, b) => a + b, 0)).toBe(5000);
    expect(chunks.length).toBeGreaterThan(1);
    expect(names).toEqual(['big', 'next']);
  });

  it('applies a pax header to the next entry only, and a global one to all', async () => {
    const { members } = await readAll(
      rawTar([
        paxEntry({ uname: 'global-user' }, 'g'),
        paxEntry({ path: 'from-pax', linkpath: 'ignored-for-files', size: '3' }),
        { name: 'short', data: 'abc' },
        { name: 'plain', data: 'x' },
      ]),
    );
    expect(members.map(({ entry }) => entry.path)).toEqual(['from-pax', 'plain']);
    expect(members.map(({ entry }) => entry.owner?.uname)).toEqual(['global-user', 'global-user']);
  });

  it('reads GNU long names and long link targets', async () => {
    const longName = 'n'.repeat(300);
    const longTarget = 't'.repeat(200);
    const { members } = await readAll(
      rawTar([
        { name: '././@LongLink', type: 'L', data: `${longName}\0` },
        { name: '././@LongLink', type: 'K', data: `${longTarget}\0` },
        { name: 'cut', type: '2', linkname: 'cut' },
      ]),
    );
    expect(members[0].entry).toMatchObject({ path: longName, linkTarget: longTarget });
  });

  it('stops at the first zero block, as GNU tar does', async () => {
    const data = Buffer.concat([rawTar([{ name: 'a', data: 'a' }]), Buffer.from('garbage after the end')]);
    const { members } = await readAll(data);
    expect(members.map(({ entry }) => entry.path)).toEqual(['a']);
  });

  it('accepts an archive without end blocks and an empty one', async () => {
    expect((await readAll(rawTar([{ name: 'a', data: 'a' }], { endBlocks: false }))).members).toHaveLength(1);
    expect((await readAll(Buffer.alloc(0))).members).toHaveLength(0);
  });

  it('refuses GNU sparse files rather than unpack their map as content', async () => {
    await expect(readAll(rawTar([{ name: 'sparse', type: 'S', data: 'x' }]))).rejects.toThrow("'sparse' is a GNU sparse file, which is not supported");
    await expect(readAll(rawTar([paxEntry({ 'GNU.sparse.major': '1' }), { name: 'f', data: 'x' }]))).rejects.toThrow('GNU sparse file');
  });

  it('refuses oversized extended headers', async () => {
    await expect(readAll(rawTar([{ name: 'PaxHeader', type: 'x', data: Buffer.alloc(1024 * 1024 + 1, 0x31) }]))).rejects.toThrow(
      'extended header of 1048577 bytes is too large',
    );
  });

  it('refuses links without a target', async () => {
    await expect(readAll(rawTar([{ name: 'l', type: '2' }]))).rejects.toThrow("link 'l' has no target");
  });
});

describe('detectCompression', () => {
  it('recognises compressions by their magic bytes', () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('gzip');
    expect(detectCompression(Buffer.from('BZh9'))).toBe('bzip2');
    expect(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))).toBe('xz');
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
    expect(detectCompression(Buffer.from([0x1f, 0x9d]))).toBe('compress');
    expect(detectCompression(rawTar([{ name: 'a' }]))).toBe('none');
    expect(detectCompression(Buffer.alloc(0))).toBe('none');
  });
});
