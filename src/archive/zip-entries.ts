import fs from 'node:fs';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { crc32, inflateRawSync } from 'node:zlib';
import yauzl from 'yauzl';
import type { ArchiveEntry, EntryContent, EntryKind } from './archive-entry.js';
import { FileWindow } from './file-window.js';

/**
 * Reads a zip bundle into entries. yauzl parses the central directory (zip64, UTF-8 flags, Info-ZIP
 * extra fields) and streams large entries; small entries are read and inflated here, synchronously
 * from a window of the file, because going through a stream per entry made a 20,000-file zip four
 * times slower than unzip.
 *
 * Names are decoded here rather than by yauzl, which would reject unsafe names with its own wording,
 * so that ./entry-safety.ts gives the one refusal message for tar and zip alike. Modes and symlinks
 * come from the Unix external attributes, as unzip reads them.
 */

export interface ZipMember {
  entry: ArchiveEntry;
  content?: EntryContent;
}

/** Hosts whose "version made by" means the high 16 bits of the external attributes are a Unix mode. */
const UNIX_HOSTS = new Set([3 /* Unix */, 19 /* OS X */]);
const S_IFMT = 0o170000;
const KIND_BY_FILE_TYPE: Record<number, EntryKind> = {
  0o100000: 'file',
  0o040000: 'directory',
  0o120000: 'symlink',
  0o020000: 'character-device',
  0o060000: 'block-device',
  0o010000: 'fifo',
  0o140000: 'socket',
};
const MSDOS_READ_ONLY = 0x01;
const MSDOS_DIRECTORY = 0x10;
/** PATH_MAX: a symlink "target" longer than this is not one. */
const MAX_SYMLINK_TARGET = 4096;
/** Entries up to this size are read whole from the window; larger ones are streamed. */
const WHOLE_READ_LIMIT = 1024 * 1024;
const LOCAL_HEADER_SIGNATURE = 0x04034b50;
const LOCAL_HEADER_SIZE = 30;
const STREAM_CHUNK = 1024 * 1024;

const readFd = promisify(fs.read);

/** Kind and mode of a zip entry from its name and external attributes. */
export function describeZipEntry(
  name: string,
  versionMadeBy: number,
  externalFileAttributes: number,
): { kind: EntryKind; mode: number } {
  const unixMode = UNIX_HOSTS.has(versionMadeBy >> 8) ? externalFileAttributes >>> 16 : 0;
  const namedLikeDirectory = name.endsWith('/') || (externalFileAttributes & MSDOS_DIRECTORY) !== 0;
  let kind: EntryKind = KIND_BY_FILE_TYPE[unixMode & S_IFMT] ?? 'file';
  if (namedLikeDirectory && (kind === 'file' || unixMode === 0)) kind = 'directory';
  if (unixMode !== 0) return { kind, mode: unixMode & 0o7777 };
  // No Unix mode recorded (made on Windows): unzip's defaults, and the DOS read-only flag.
  const mode = kind === 'directory' ? 0o755 : 0o644;
  return { kind, mode: externalFileAttributes & MSDOS_READ_ONLY ? mode & ~0o222 : mode };
}

/**
 * yauzl's view of the file: positional reads served from a window, streams for large entries.
 * The descriptor has one owner, close() (which yauzl calls once its last user is done): nothing else
 * may close it. A second close, or a read after close, would hit whatever file the process opened
 * next under the same number (a worker's destination, say): closing it under its writer, or reading
 * its bytes as the zip's.
 */
class WindowedReader extends yauzl.RandomAccessReader {
  readonly #fd: number;
  readonly #window: FileWindow;
  #closed = false;

  constructor(fd: number, size: number) {
    super();
    this.#fd = fd;
    this.#window = new FileWindow(fd, size);
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    let error: Error | null = null;
    try {
      this.#assertOpen();
      const data = this.#window.read(position, length);
      if (data.length < length) error = new Error('unexpected EOF');
      else data.copy(buffer, offset);
    } catch (caught) {
      error = caught as Error;
    }
    process.nextTick(callback, error);
  }

  /**
   * Not fs.createReadStream({ fd, autoClose: false }): autoClose only stops the close at the end of
   * the data, and yauzl destroys every entry stream once it is read, which closes the fd anyway.
   */
  override _readStreamForRange(start: number, end: number): Readable {
    return Readable.from(this.#range(start, end), { objectMode: false });
  }

  async *#range(start: number, end: number): AsyncGenerator<Buffer> {
    for (let position = start; position < end; ) {
      this.#assertOpen();
      const length = Math.min(STREAM_CHUNK, end - position);
      const { bytesRead, buffer } = await readFd(this.#fd, Buffer.allocUnsafe(length), 0, length, position);
      if (bytesRead === 0) throw new Error('unexpected EOF');
      position += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  }

  override close(callback: (err: Error | null) => void): void {
    if (this.#closed) return process.nextTick(callback, null);
    this.#closed = true;
    fs.close(this.#fd, callback);
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('the zip file was read after it was closed');
  }
}

/** An entry's bytes straight from its local header, inflated in one call; checked like unzip does. */
function readWholeEntry(window: FileWindow, entry: yauzl.Entry, name: string): Buffer {
  if (entry.isEncrypted()) throw new Error(`'${name}' is encrypted, which is not supported`);
  const header = window.read(entry.relativeOffsetOfLocalHeader, LOCAL_HEADER_SIZE);
  if (header.length < LOCAL_HEADER_SIZE || header.readUInt32LE(0) !== LOCAL_HEADER_SIGNATURE) {
    throw new Error(`invalid local file header for '${name}'`);
  }
  const dataStart = entry.relativeOffsetOfLocalHeader + LOCAL_HEADER_SIZE + header.readUInt16LE(26) + header.readUInt16LE(28);
  const stored = window.read(dataStart, entry.compressedSize);
  if (stored.length < entry.compressedSize) throw new Error(`unexpected end of file inside '${name}'`);
  let data: Buffer;
  if (entry.compressionMethod === 0) {
    data = stored;
  } else if (entry.compressionMethod === 8) {
    try {
      // Capped at the recorded size, so a lying header cannot make one entry fill the memory.
      data = inflateRawSync(stored, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new Error(`'${name}' inflates to more than the ${entry.uncompressedSize} bytes its header says`);
      }
      throw new Error(`'${name}' cannot be inflated: ${(error as Error).message}`);
    }
  } else {
    throw new Error(`'${name}' uses compression method ${entry.compressionMethod}, which is not supported`);
  }
  if (data.length !== entry.uncompressedSize) {
    throw new Error(`'${name}' holds ${data.length} bytes but its header says ${entry.uncompressedSize}`);
  }
  if (crc32(data) !== entry.crc32) throw new Error(`'${name}' is corrupt (CRC mismatch)`);
  return data;
}

function nextEntry(zip: yauzl.ZipFile): Promise<yauzl.Entry | undefined> {
  return new Promise((resolve, reject) => {
    const onEntry = (entry: yauzl.Entry) => settle(() => resolve(entry));
    const onEnd = () => settle(() => resolve(undefined));
    const onError = (error: Error) => settle(() => reject(error));
    const settle = (action: () => void) => {
      zip.off('entry', onEntry).off('end', onEnd).off('error', onError);
      action();
    };
    zip.on('entry', onEntry).on('end', onEnd).on('error', onError);
    zip.readEntry();
  });
}

/** Opens a zip bundle; members() lists it, close() releases the file. */
export async function openZip(path: string): Promise<{ members: () => AsyncGenerator<ZipMember>; close: () => void }> {
  const fd = fs.openSync(path, 'r');
  let zip: yauzl.ZipFile;
  let window: FileWindow;
  try {
    const size = fs.fstatSync(fd).size;
    window = new FileWindow(fd, size);
    zip = await yauzl.fromRandomAccessReaderPromise(new WindowedReader(fd, size), size, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
      validateEntrySizes: true,
    });
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
  // An error while no read is pending must not crash the process; reads report their own errors.
  zip.on('error', () => {});
  let closed = false;
  // The window reads the fd too: after close, its number may be another file's (see WindowedReader).
  const readWhole = (source: yauzl.Entry, name: string): Buffer => {
    if (closed) throw new Error(`'${name}' was read after the zip file was closed`);
    return readWholeEntry(window, source, name);
  };

  async function* members(): AsyncGenerator<ZipMember> {
    for (let raw = await nextEntry(zip); raw; raw = await nextEntry(zip)) {
      // Backslashes become slashes, as unzip does for archives made on Windows.
      const name = yauzl.getFileNameLowLevel(raw.generalPurposeBitFlag, raw.fileNameRaw, raw.extraFields, false);
      const { kind, mode } = describeZipEntry(name, raw.versionMadeBy, raw.externalFileAttributes);
      const source = raw;
      const content: EntryContent = {
        size: source.uncompressedSize,
        readAll: async () => readWhole(source, name),
        async *chunks() {
          if (source.uncompressedSize <= WHOLE_READ_LIMIT) {
            yield readWhole(source, name);
            return;
          }
          yield* (await zip.openReadStreamPromise(source)) as AsyncIterable<Buffer>;
        },
      };
      let linkTarget: string | undefined;
      if (kind === 'symlink') {
        if (source.uncompressedSize > MAX_SYMLINK_TARGET) throw new Error(`symbolic link '${name}' has a target of ${source.uncompressedSize} bytes`);
        linkTarget = readWhole(source, name).toString('utf8');
        if (linkTarget === '') throw new Error(`symbolic link '${name}' has no target`);
      }
      const entry: ArchiveEntry = {
        path: name,
        kind,
        mode,
        size: kind === 'file' ? source.uncompressedSize : 0,
        mtime: source.getLastModDate(),
        linkTarget,
      };
      yield kind === 'file' ? { entry, content } : { entry };
    }
  }

  const close = () => {
    closed = true;
    zip.close();
  };
  return { members, close };
}
