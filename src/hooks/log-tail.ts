import { redact } from '../log/redact.js';

/** Characters of script output sent with a lifecycle event's diagnostics (AWS's limit). */
export const LOG_TAIL_LIMIT = 2048;

// CSI (colours, cursor moves), OSC (titles, hyperlinks) and two-character escapes.
// eslint-disable-next-line no-control-regex
const ANSI_ESCAPE = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;

export function stripAnsi(text: string): string {
  return text.includes('\u001b') ? text.replace(ANSI_ESCAPE, '') : text;
}

/**
 * The diagnostics tail: the newest whole entries whose total length fits `limit`; if even the newest
 * entry alone is longer, its last `limit` characters. Entries are whole logged messages such as
 * `[stdout]hello\n`, oldest first.
 *
 * AWS's agent is off by one entry: a newest entry of ≥ 2048 characters empties the tail,
 * [1500, 10] keeps only [10] although both fit, and [10, 2047] keeps both (2057 characters). Here the
 * result is never longer than `limit`, never empty when there was output, and keeps every entry that fits.
 */
export function tailOf(entries: readonly string[], limit = LOG_TAIL_LIMIT): string {
  if (entries.length === 0 || limit <= 0) return '';
  let start = entries.length;
  let kept = 0;
  while (start > 0 && kept + entries[start - 1].length <= limit) {
    kept += entries[start - 1].length;
    start -= 1;
  }
  if (start === entries.length) return lastChars(entries[entries.length - 1], limit);
  return entries.slice(start).join('');
}

/** The last `count` characters, not starting in the middle of a surrogate pair. */
function lastChars(text: string, count: number): string {
  const tail = text.slice(text.length - count);
  const first = tail.charCodeAt(0);
  return first >= 0xdc00 && first <= 0xdfff ? tail.slice(1) : tail;
}

/**
 * Collects logged messages for the tail in bounded memory: only the newest entries that could still
 * matter are kept (twice the limit, since redaction may change their length).
 */
export class LogTail {
  private entries: string[] = [];
  private first = 0;
  private length = 0;

  constructor(private readonly limit = LOG_TAIL_LIMIT) {}

  /** `entry` is one logged message including its trailing newline. */
  push(entry: string): void {
    let clean = stripAnsi(entry);
    const keep = this.limit * 2;
    if (clean.length > keep) clean = lastChars(clean, keep);
    this.entries.push(clean);
    this.length += clean.length;
    while (this.entries.length - this.first > 1 && this.length - this.entries[this.first].length >= keep) {
      this.length -= this.entries[this.first].length;
      this.first += 1;
    }
    if (this.first > 1024 && this.first * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.first);
      this.first = 0;
    }
  }

  /** Messages without their newline, oldest first; only the newest ones that can still matter are kept. */
  pushMessages(messages: readonly string[]): void {
    const keep = this.limit * 2;
    let first = messages.length;
    let length = 0;
    while (first > 0 && length < keep) {
      first -= 1;
      length += messages[first].length + 1;
    }
    for (let index = first; index < messages.length; index += 1) this.push(`${messages[index]}\n`);
  }

  /** The tail for the diagnostics payload, with known secrets redacted. */
  text(): string {
    return tailOf(this.entries.slice(this.first).map(redact), this.limit);
  }
}
