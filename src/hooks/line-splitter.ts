import { StringDecoder } from 'node:string_decoder';

/** Longest line kept in one piece; longer lines are logged as several entries so memory stays bounded. */
export const MAX_LINE_LENGTH = 64 * 1024;

/**
 * Turns a byte stream into lines (without their `\n`, and without a trailing `\r`). UTF-8 sequences cut
 * between chunks are decoded correctly. A line longer than `maxLineLength` characters is emitted in
 * pieces of that length, so a process printing megabytes without a newline cannot make us buffer them.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';

  constructor(private readonly maxLineLength = MAX_LINE_LENGTH) {}

  push(chunk: Buffer | string): string[] {
    const text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    return this.take(text, false);
  }

  /** The last line when the stream ends without a newline. */
  end(): string[] {
    return this.take(this.decoder.end(), true);
  }

  private take(text: string, final: boolean): string[] {
    const lines: string[] = [];
    let start = 0;
    let newline = text.indexOf('\n');
    while (newline !== -1) {
      this.emit(this.partial + text.slice(start, newline), lines);
      this.partial = '';
      start = newline + 1;
      newline = text.indexOf('\n', start);
    }
    this.partial += text.slice(start);
    while (this.partial.length > this.maxLineLength) {
      const cut = safeCut(this.partial, this.maxLineLength);
      lines.push(this.partial.slice(0, cut));
      this.partial = this.partial.slice(cut);
    }
    if (final && this.partial.length > 0) {
      this.emit(this.partial, lines);
      this.partial = '';
    }
    return lines;
  }

  private emit(line: string, into: string[]): void {
    let rest = line.endsWith('\r') ? line.slice(0, -1) : line;
    while (rest.length > this.maxLineLength) {
      const cut = safeCut(rest, this.maxLineLength);
      into.push(rest.slice(0, cut));
      rest = rest.slice(cut);
    }
    into.push(rest);
  }
}

/** A cut position at or before `at` that does not split a surrogate pair. */
function safeCut(text: string, at: number): number {
  const code = text.charCodeAt(at - 1);
  return code >= 0xd800 && code <= 0xdbff ? at - 1 : at;
}
