import { Header, Pax, type HeaderData } from 'tar';
import type { ArchiveEntry, EntryContent, EntryKind } from './archive-entry.js';
import { ByteReader } from './byte-reader.js';
import { decodeCommonHeader, type TarHeaderFields } from './tar-header.js';

/**
 * Reads a tar stream (ustar, GNU and pax) into entries. node-tar's Header and Pax decode the
 * blocks; this loop owns the framing, so that every byte is read once, in order, and the source only
 * advances as fast as the writer takes content.
 */

export interface TarMember {
  entry: ArchiveEntry;
  /** Present for files; must be read (or ignored) before asking for the next member. */
  content?: EntryContent;
}

const BLOCK = 512;
/** Pax and GNU long-name bodies are held in memory; real ones are a few hundred bytes. */
const MAX_META_SIZE = 1024 * 1024;

const KIND_BY_TYPE: Record<string, EntryKind> = {
  '0': 'file',
  '': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  // A GNU dump directory: a directory whose body lists its content; the body is not needed.
  D: 'directory',
  '6': 'fifo',
};

const padded = (size: number) => Math.ceil(size / BLOCK) * BLOCK;

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/**
 * Header decodes owner names only for POSIX ustar ('ustar\0' + '00'); GNU tar's default format
 * ('ustar  \0') keeps them at the same offsets, and GNU tar restores owners by those names.
 */
function gnuOwnerName(block: Buffer, offset: number): string | undefined {
  if (block.toString('latin1', 257, 265) !== 'ustar  \0') return undefined;
  const name = block.toString('utf8', offset, offset + 32).replace(/\0[\s\S]*$/, '');
  return name === '' ? undefined : name;
}

function truncated(name: string | undefined): Error {
  return new Error(`unexpected end of archive${name ? ` inside '${name}'` : ''}`);
}

/**
 * The members of a tar stream, in archive order. Stops at the first zero block, as GNU tar does.
 * Throws a plain Error whose message says what is wrong with the stream; the caller frames it.
 */
export async function* readTarMembers(source: AsyncIterable<Buffer>): AsyncGenerator<TarMember> {
  const reader = new ByteReader(source);
  let extended: HeaderData | undefined;
  let globalExtended: HeaderData | undefined;
  try {
    for (;;) {
      const headerAt = reader.position;
      const block = await reader.read(BLOCK);
      if (block.length === 0) return;
      if (block.length < BLOCK) throw truncated(undefined);
      if (isZeroBlock(block)) return;

      // The common header without node-tar's Header (./tar-header.ts); after a pax or long-name header, Header.
      const header: TarHeaderFields =
        (extended === undefined && globalExtended === undefined && decodeCommonHeader(block)) || new Header(block, 0, extended, globalExtended);
      if (!header.cksumValid) {
        throw new Error(headerAt === 0 ? 'This does not look like a tar archive' : `invalid header checksum at byte ${headerAt}`);
      }
      const size = header.size;
      if (size === undefined || !Number.isSafeInteger(size)) {
        throw new Error(`invalid size in the header at byte ${headerAt}`);
      }
      const type = header.typeKey;

      if (type === 'x' || type === 'X' || type === 'g' || type === 'L' || type === 'N' || type === 'K') {
        const meta = await readMeta(reader, size, header.path);
        if (type === 'g') {
          globalExtended = Pax.parse(meta, globalExtended, true);
        } else if (type === 'x' || type === 'X') {
          // GNU's pax sparse formats store a map in front of the data; unpacking them as plain
          // files would write that map into the file.
          if (meta.includes('GNU.sparse.')) throw new Error(`'${header.path}' holds a GNU sparse file, which is not supported`);
          extended = Pax.parse(meta, extended, false);
        } else {
          extended ??= Object.create(null) as HeaderData;
          extended[type === 'K' ? 'linkpath' : 'path'] = meta.replace(/\0[\s\S]*$/, '');
        }
        continue;
      }
      // Header applies most pax fields itself, but decodes the link name after them and joins a
      // ustar prefix onto a pax path; the long forms win, as node-tar's ReadEntry also makes them.
      const name = extended?.path ?? header.path ?? '';
      const linkTarget = extended?.linkpath ?? header.linkpath;
      extended = undefined;

      if (type === 'V') {
        // A tape volume label: not a file, nothing to unpack (GNU tar skips it too).
        await skipBody(reader, padded(size), name);
        continue;
      }
      if (type === 'S') throw new Error(`'${name}' is a GNU sparse file, which is not supported`);

      if (name === '') throw new Error(`entry without a name at byte ${headerAt}`);
      const kind: EntryKind = KIND_BY_TYPE[type] ?? 'unsupported';
      if ((kind === 'symlink' || kind === 'hardlink') && !linkTarget) {
        throw new Error(`link '${name}' has no target`);
      }
      const entry: ArchiveEntry = {
        path: name,
        kind,
        mode: (header.mode ?? (kind === 'directory' ? 0o755 : 0o644)) & 0o7777,
        size: kind === 'file' ? size : 0,
        mtime: header.mtime,
        linkTarget: kind === 'symlink' || kind === 'hardlink' ? linkTarget : undefined,
        owner: {
          uid: header.uid,
          gid: header.gid,
          uname: header.uname ?? gnuOwnerName(block, 265),
          gname: header.gname ?? gnuOwnerName(block, 297),
        },
        typeLabel: kind === 'unsupported' ? `tar type '${type}'` : undefined,
      };

      if (kind !== 'file') {
        yield { entry };
        await skipBody(reader, padded(size), name);
        continue;
      }

      let remaining = size;
      const content: EntryContent = {
        size,
        async readAll() {
          const data = await reader.read(remaining);
          remaining -= data.length;
          if (remaining > 0) throw truncated(name);
          return data;
        },
        async *chunks() {
          while (remaining > 0) {
            const data = await reader.readSome(remaining);
            if (data.length === 0) throw truncated(name);
            remaining -= data.length;
            yield data;
          }
        },
      };
      yield { entry, content };
      // Whatever the writer did not read, plus the padding to the next block.
      await skipBody(reader, remaining + padded(size) - size, name);
    }
  } finally {
    await reader.close();
  }
}

async function readMeta(reader: ByteReader, size: number, name: string | undefined): Promise<string> {
  if (size > MAX_META_SIZE) throw new Error(`extended header of ${size} bytes is too large`);
  const body = await reader.read(size);
  if (body.length < size) throw truncated(name);
  await skipBody(reader, padded(size) - size, name);
  return body.toString('utf8');
}

/** Skips exactly `length` bytes (callers include the padding). */
async function skipBody(reader: ByteReader, length: number, name: string | undefined): Promise<void> {
  if ((await reader.skip(length)) < length) throw truncated(name);
}
