/**
 * Writes tar bytes by hand. node-tar and GNU tar both sanitise what they pack (leading '/', '..'),
 * so malicious archives have to be crafted header by header.
 */

export interface RawTarEntry {
  name: string;
  /** The typeflag character: '0' file, '1' hard link, '2' symlink, '3' char device, '5' directory, '6' FIFO, 'x' pax, 'L' GNU long name... */
  type?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch. */
  mtime?: number;
  data?: Buffer | string;
  linkname?: string;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
}

function writeString(block: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`'${value}' does not fit in ${length} bytes; use a long-name entry`);
  bytes.copy(block, offset);
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(value.toString(8).padStart(length - 1, '0') + '\0', offset, length, 'ascii');
}

/** One 512-byte ustar header with a valid checksum. */
export function tarHeader(entry: RawTarEntry, size: number): Buffer {
  const block = Buffer.alloc(512);
  writeString(block, 0, 100, entry.name);
  writeOctal(block, 100, 8, entry.mode ?? (entry.type === '5' ? 0o755 : 0o644));
  writeOctal(block, 108, 8, entry.uid ?? 0);
  writeOctal(block, 116, 8, entry.gid ?? 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, entry.mtime ?? 1_600_000_000);
  block.fill(' ', 148, 156);
  block.write(entry.type ?? '0', 156, 1, 'ascii');
  writeString(block, 157, 100, entry.linkname ?? '');
  block.write('ustar\0' + '00', 257, 8, 'ascii');
  writeString(block, 265, 32, entry.uname ?? '');
  writeString(block, 297, 32, entry.gname ?? '');
  writeOctal(block, 329, 8, entry.devmajor ?? 0);
  writeOctal(block, 337, 8, entry.devminor ?? 0);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return block;
}

/** Header, content padded to 512 bytes, for each entry; then the two zero blocks that end an archive. */
export function rawTar(entries: RawTarEntry[], { endBlocks = true } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const data = typeof entry.data === 'string' ? Buffer.from(entry.data) : (entry.data ?? Buffer.alloc(0));
    parts.push(tarHeader(entry, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  if (endBlocks) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A pax extended header ('x', or 'g' for global) carrying `records` for the next entry. */
export function paxEntry(records: Record<string, string>, type: 'x' | 'g' = 'x'): RawTarEntry {
  let body = '';
  for (const [key, value] of Object.entries(records)) {
    const line = ` ${key}=${value}\n`;
    // The length prefix counts itself, so find the fixed point.
    let length = Buffer.byteLength(line);
    while (String(length).length + Buffer.byteLength(line) !== length) length = String(length).length + Buffer.byteLength(line);
    body += `${length}${line}`;
  }
  return { name: type === 'g' ? 'pax_global_header' : 'PaxHeader', type, data: body };
}
