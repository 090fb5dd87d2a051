/**
 * Reads exact byte counts from a stream of chunks, for formats laid out in fixed blocks (tar).
 * Consumes the source through its async iterator, so the source pauses whenever the reader is not
 * asking for bytes: backpressure without buffering more than the chunk in hand.
 */
export class ByteReader {
  readonly #iterator: AsyncIterator<Buffer>;
  #chunk: Buffer = Buffer.alloc(0);
  #offset = 0;
  #ended = false;
  /** Bytes consumed so far, for error messages. */
  position = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  /** Makes sure unread bytes are in hand; false once the source is exhausted. */
  async #fill(): Promise<boolean> {
    while (this.#offset >= this.#chunk.length) {
      if (this.#ended) return false;
      const next = await this.#iterator.next();
      if (next.done) {
        this.#ended = true;
        return false;
      }
      this.#chunk = next.value;
      this.#offset = 0;
    }
    return true;
  }

  #take(length: number): Buffer {
    const slice = this.#chunk.subarray(this.#offset, this.#offset + length);
    this.#offset += slice.length;
    this.position += slice.length;
    return slice;
  }

  /** Exactly `length` bytes, or fewer only where the source ends. A view when one chunk holds them all. */
  async read(length: number): Promise<Buffer> {
    if (this.#chunk.length - this.#offset >= length) return this.#take(length);
    const parts: Buffer[] = [];
    let missing = length;
    while (missing > 0 && (await this.#fill())) {
      const part = this.#take(missing);
      parts.push(part);
      missing -= part.length;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, length - missing);
  }

  /** Up to `limit` bytes of what is next, without copying; empty only at the end of the source. */
  async readSome(limit: number): Promise<Buffer> {
    if (!(await this.#fill())) return Buffer.alloc(0);
    return this.#take(limit);
  }

  /** Discards up to `length` bytes; returns how many there were. */
  async skip(length: number): Promise<number> {
    let skipped = 0;
    while (skipped < length && (await this.#fill())) {
      skipped += this.#take(length - skipped).length;
    }
    return skipped;
  }

  /** Stops the source early (the tar end marker may come long before the end of the file). */
  async close(): Promise<void> {
    if (!this.#ended) {
      this.#ended = true;
      await this.#iterator.return?.();
    }
  }
}
