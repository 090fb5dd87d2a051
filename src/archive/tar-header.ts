/**
 * The common tar header, decoded without node-tar's Header: a file, folder or link entry with ustar or
 * GNU magic, octal numbers and ASCII names, and no pax or GNU long-name header before it. Header
 * spends a few microseconds a block on string conversions and regular expressions, a third of the
 * agent's own work when unpacking 20,000 small files (the many-files benchmark).
 *
 * Anything else gives undefined, and the caller uses Header. For the blocks it accepts, the fields are
 * exactly Header's (test/archive/tar-header.test.ts compares the two over generated blocks), so the
 * entry-safety rules see the same names either way.
 */

/** The fields of a header that readTarMembers uses; node-tar's Header has them under the same names. */
export interface TarHeaderFields {
  cksumValid: boolean;
  path?: string;
  linkpath?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  mtime?: Date;
  uname?: string;
  gname?: string;
  typeKey: string;
}

const POSIX_MAGIC = Buffer.from('ustar\u000000', 'latin1');
const GNU_MAGIC = Buffer.from('ustar  \u0000', 'latin1');
/** File (also the old empty flag), hard link, symbolic link, directory: the entries of an application bundle. */
const COMMON_TYPES = new Set([0, 0x30, 0x31, 0x32, 0x35]);

const NUL = 0;
const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}

/**
 * A text field as Header decodes it (UTF-8, cut at the first NUL by `/\0.*`/), or undefined when that
 * could differ from the plain reading here: bytes outside ASCII, or a line break after the NUL (the
 * regular expression's `.` stops at one, so Header keeps what follows it).
 */
function textField(block: Buffer, start: number, length: number): string | undefined {
  const end = start + length;
  let cut = end;
  for (let i = start; i < end; i++) {
    const byte = block[i];
    if (byte >= 0x80) return undefined;
    if (byte === NUL && cut === end) cut = i;
    else if (cut !== end && (byte === NEWLINE || byte === CARRIAGE_RETURN)) return undefined;
  }
  return block.toString('latin1', start, cut);
}

/**
 * An octal field as Header decodes it: cut at the first NUL, trimmed, `parseInt(…, 8)` (an optional
 * sign, then octal digits up to the first other character; none is undefined). `null` when Header
 * would read it differently: base-256 numbers (the high bit set) or bytes outside ASCII.
 */
function octalField(block: Buffer, start: number, length: number): number | undefined | null {
  if (block[start] & 0x80) return null;
  let end = start + length;
  for (let i = start; i < end; i++) {
    if (block[i] >= 0x80) return null;
    if (block[i] === NUL) {
      end = i;
      break;
    }
  }
  let i = start;
  while (i < end && isWhitespace(block[i])) i++;
  let sign = 1;
  if (i < end && (block[i] === 0x2b || block[i] === 0x2d)) {
    if (block[i] === 0x2d) sign = -1;
    i++;
  }
  let value = 0;
  let digits = 0;
  for (; i < end && block[i] >= 0x30 && block[i] <= 0x37; i++, digits++) value = value * 8 + (block[i] - 0x30);
  return digits === 0 ? undefined : sign * value;
}

function sameBytes(block: Buffer, start: number, expected: Buffer): boolean {
  for (let i = 0; i < expected.length; i++) if (block[start + i] !== expected[i]) return false;
  return true;
}

/** The header of `block` (512 bytes) when it is a common one; see the top of this file. */
export function decodeCommonHeader(block: Buffer): TarHeaderFields | undefined {
  const typeByte = block[156];
  if (!COMMON_TYPES.has(typeByte)) return undefined;
  const posix = sameBytes(block, 257, POSIX_MAGIC);
  if (!posix && !sameBytes(block, 257, GNU_MAGIC)) return undefined;

  let path = textField(block, 0, 100);
  const linkpath = textField(block, 157, 100);
  const mode = octalField(block, 100, 8);
  const uid = octalField(block, 108, 8);
  const gid = octalField(block, 116, 8);
  const size = octalField(block, 124, 12);
  const mtime = octalField(block, 136, 12);
  // 12 bytes from 148, as Header reads them: the checksum field and what follows it.
  const cksum = octalField(block, 148, 12);
  if (path === undefined || linkpath === undefined) return undefined;
  if (mode === null || uid === null || gid === null || size === null || mtime === null || cksum === null) return undefined;

  let typeKey = typeByte === NUL ? '0' : String.fromCharCode(typeByte);
  // Old tars mark a folder as a file whose name ends with '/' (the name field alone, as Header checks it).
  if (typeKey === '0' && path.endsWith('/')) typeKey = '5';

  let uname: string | undefined;
  let gname: string | undefined;
  if (posix) {
    uname = textField(block, 265, 32);
    gname = textField(block, 297, 32);
    if (uname === undefined || gname === undefined) return undefined;
    // Header's test for a 155-byte prefix (no room left for its atime and ctime).
    const prefix = block[475] !== NUL ? textField(block, 345, 155) : textField(block, 345, 130);
    if (prefix === undefined) return undefined;
    if (block[475] !== NUL || prefix !== '') path = `${prefix}/${path}`;
  }

  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += block[i];
  for (let i = 156; i < 512; i++) sum += block[i];

  return {
    cksumValid: sum === cksum,
    path,
    linkpath,
    mode,
    uid,
    gid,
    size: typeKey === '5' ? 0 : size === undefined || size < 0 ? undefined : size,
    mtime: mtime === undefined ? undefined : new Date(mtime * 1000),
    uname,
    gname,
    typeKey,
  };
}
