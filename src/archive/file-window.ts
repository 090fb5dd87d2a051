import fs from 'node:fs';

/**
 * Synchronous positional reads through a window of the file, for formats read by offset (zip).
 * Listing a zip reads every central-directory record (46 bytes plus a name) and every small entry
 * reads a local header and its data: tens of thousands of tiny reads, mostly sequential. Served from
 * a window, they cost one system call per window instead of one thread-pool round trip per read.
 */
export class FileWindow {
  readonly #fd: number;
  readonly #size: number;
  readonly #windowSize: number;
  #window: Buffer = Buffer.alloc(0);
  #windowStart = 0;

  constructor(fd: number, fileSize: number, windowSize = 1024 * 1024) {
    this.#fd = fd;
    this.#size = fileSize;
    this.#windowSize = windowSize;
  }

  /**
   * `length` bytes from `position`, fewer only at the end of the file. The result may be a view of
   * the window; a later read never overwrites it (each window is a new buffer).
   */
  read(position: number, length: number): Buffer {
    const offset = position - this.#windowStart;
    if (offset >= 0 && offset + length <= this.#window.length) return this.#window.subarray(offset, offset + length);
    if (length > this.#windowSize) return this.#readAt(position, length);
    this.#window = this.#readAt(position, this.#windowSize);
    this.#windowStart = position;
    return this.#window.subarray(0, length);
  }

  #readAt(position: number, length: number): Buffer {
    const buffer = Buffer.allocUnsafe(Math.max(0, Math.min(length, this.#size - position)));
    let filled = 0;
    while (filled < buffer.length) {
      const read = fs.readSync(this.#fd, buffer, filled, buffer.length - filled, position + filled);
      if (read === 0) break;
      filled += read;
    }
    return buffer.subarray(0, filled);
  }
}
