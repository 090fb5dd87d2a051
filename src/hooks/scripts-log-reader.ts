import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/**
 * Reading what ./scripts-log.ts writes, for `codedeploy-agent logs`. A scripts.log line is
 * `YYYY-MM-DD HH:MM:SS <message>`, and the messages are `LifecycleEvent - <event>` (an event starts:
 * every later line is that event's until the next one), `Script - <location>`, `[stdout]…` and
 * `[stderr]…` (a script's output), or a note of the agent (a timeout, a warning). Lines carry no event
 * of their own, so the reader follows the LifecycleEvent lines: the cheapest faithful way, and the
 * format stays what AWS's agent writes.
 */

export interface ScriptsLogLine {
  /** `YYYY-MM-DD HH:MM:SS`, local time as written; empty when the line has no stamp. */
  time: string;
  /** The event the line belongs to, when known. */
  event?: string;
  kind: 'event' | 'script' | 'stdout' | 'stderr' | 'agent';
  /** The script running, for script and output lines. */
  script?: string;
  /** The message without its stamp (and without the [stdout]/[stderr] prefix for output). */
  text: string;
  /** The line as written. */
  raw: string;
}

const STAMP = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (.*)$/s;

/** Follows one scripts.log's lines in order, knowing which event and script each belongs to. */
export class ScriptsLogParser {
  #event: string | undefined;
  #script: string | undefined;

  /** `event`: the event running where reading starts, when the start of the file is not read. */
  constructor(event?: string) {
    this.#event = event;
  }

  parse(raw: string): ScriptsLogLine {
    const match = STAMP.exec(raw);
    const time = match?.[1] ?? '';
    const message = match?.[2] ?? raw;
    if (message.startsWith('LifecycleEvent - ')) {
      this.#event = message.slice('LifecycleEvent - '.length);
      this.#script = undefined;
      return { time, event: this.#event, kind: 'event', text: message, raw };
    }
    if (message.startsWith('Script - ')) {
      this.#script = message.slice('Script - '.length);
      return { time, event: this.#event, kind: 'script', script: this.#script, text: message, raw };
    }
    const base = { time, ...(this.#event === undefined ? {} : { event: this.#event }), ...(this.#script === undefined ? {} : { script: this.#script }), raw };
    if (message.startsWith('[stdout]')) return { ...base, kind: 'stdout', text: message.slice(8) };
    if (message.startsWith('[stderr]')) return { ...base, kind: 'stderr', text: message.slice(8) };
    return { ...base, kind: 'agent', text: message };
  }
}

/** The files of one log, oldest first: `scripts.log.<n>` … `scripts.log.1`, `scripts.log` (those that exist). */
export function logGenerations(path: string, maxFiles = 64): string[] {
  const older: string[] = [];
  for (let index = 1; index < maxFiles; index++) {
    if (!existsSync(`${path}.${index}`)) break;
    older.unshift(`${path}.${index}`);
  }
  return existsSync(path) ? [...older, path] : older;
}

const CHUNK = 64 * 1024;
/** Polls without new bytes after which the descriptor is closed (a follower of many idle logs holds few). */
const IDLE_POLLS = 8;

/**
 * Reads a log as it grows, across rotation. While the log is written, it is read through the
 * descriptor it was opened with, so a rotation (rename to `.1`, or unlink when only one file is kept)
 * loses nothing: once the path names another file, the old one is read to its end and the new one
 * from its start. An idle log's descriptor is closed and only its inode and offset kept; if it was
 * rotated meanwhile, the rest of the old file is found by its inode among `.1`, `.2`… Only whole lines
 * are returned; a line being written is held until its newline comes.
 */
export class LogFollower {
  #fd: number | undefined;
  #ino: number | undefined;
  #offset = 0;
  #idle = 0;
  /** Whether a file of this log was opened yet. */
  #opened = false;
  #partial = '';
  /** Keeps a character whose bytes a read cut in two. */
  #decoder = new StringDecoder('utf8');
  readonly #buffer = Buffer.alloc(CHUNK);

  /**
   * `from`: `start` reads the file from its beginning (a deployment that started after following did);
   * `end` only what is written from now on; a number, the last that many lines and then what follows.
   * A file that does not exist yet is read from its start once it does.
   */
  constructor(readonly path: string, private from: 'start' | 'end' | number) {}

  /** The whole lines written since the last call. Throws what opening or reading throws, except ENOENT. */
  poll(): string[] {
    const lines: string[] = [];
    if (this.#fd === undefined) {
      if (this.#ino === undefined) {
        // Read from the start, a log's rotated files are part of it: a deployment noticed late has rotated already.
        if (!this.#opened && this.from === 'start') {
          this.#catchUp(lines, undefined);
          return lines;
        }
        if (!this.#open()) return lines;
      } else if (!this.#wake(lines)) {
        return lines;
      }
    }
    const before = this.#offset;
    this.#drain(lines);
    // Rotated: the path now names a new file (or none yet). The old one got its last write before the rename.
    if (this.#currentIno() !== this.#ino) {
      this.#drain(lines);
      const at = this.#rotatedIndex();
      this.#nextFile(lines);
      this.#catchUp(lines, at);
      return lines;
    }
    this.#idle = this.#offset === before ? this.#idle + 1 : 0;
    if (this.#idle >= IDLE_POLLS) this.#closeFd();
    return lines;
  }

  close(): void {
    this.#closeFd();
  }

  #closeFd(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  /** Done with the current file: its unfinished last line, if any, and a fresh start for the next. */
  #nextFile(lines: string[]): void {
    const rest = this.#partial + this.#decoder.end();
    if (rest !== '') lines.push(rest);
    this.#closeFd();
    this.#partial = '';
    this.#decoder = new StringDecoder('utf8');
    this.#ino = undefined;
    this.from = 'start';
  }

  /**
   * An idle log again: nothing to do while the same file has not grown (no descriptor opened); reopened
   * when it has; when it was rotated meanwhile, the old file's rest first. False when there is nothing to read.
   */
  #wake(lines: string[]): boolean {
    const current = statOrUndefined(this.path);
    if (current !== undefined && current.ino === this.#ino) {
      if (current.size === this.#offset) return false;
      return this.#reopen(this.path);
    }
    const at = this.#rotatedIndex();
    if (at !== undefined && this.#reopen(`${this.path}.${at}`)) this.#drain(lines);
    this.#nextFile(lines);
    this.#catchUp(lines, at);
    return false;
  }

  /**
   * After the file this follower read was rotated to `.<at>`: the files rotated after it (`.<at-1>` …
   * `.1`, all of them when it was dropped), whole, then the live file from its start.
   */
  #catchUp(lines: string[], at: number | undefined): void {
    let newest = at === undefined ? this.#oldestIndex() + 1 : at;
    while (--newest >= 1) {
      this.#ino = statOrUndefined(`${this.path}.${newest}`)?.ino;
      if (this.#ino !== undefined && this.#reopen(`${this.path}.${newest}`)) {
        this.#opened = true;
        this.#offset = 0;
        this.#drain(lines);
      }
      this.#nextFile(lines);
    }
    if (this.#open()) this.#drain(lines);
  }

  /** The highest `.<n>` that exists (0 when none does). */
  #oldestIndex(): number {
    let index = 0;
    while (index < 64 && statOrUndefined(`${this.path}.${index + 1}`) !== undefined) index++;
    return index;
  }

  #reopen(path: string): boolean {
    try {
      const fd = openSync(path, 'r');
      if (fstatSync(fd).ino !== this.#ino) {
        closeSync(fd);
        return false;
      }
      this.#fd = fd;
      this.#idle = 0;
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  /** Where the file this follower was reading went when it was rotated (`.<n>`, by inode); undefined when dropped. */
  #rotatedIndex(): number | undefined {
    for (let index = 1; index < 64; index++) {
      const stats = statOrUndefined(`${this.path}.${index}`);
      if (stats === undefined) return undefined;
      if (stats.ino === this.#ino) return index;
    }
    return undefined;
  }

  #open(): boolean {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      // Whatever appears there later is all new.
      this.from = 'start';
      return false;
    }
    const { ino, size } = fstatSync(fd);
    this.#opened = true;
    this.#fd = fd;
    this.#ino = ino;
    this.#idle = 0;
    this.#offset = this.from === 'start' ? 0 : this.from === 'end' ? size : this.#tailStart(fd, size, this.from);
    return true;
  }

  /** Where the last `count` lines of the file start (looking back at most a few chunks). */
  #tailStart(fd: number, size: number, count: number): number {
    if (count <= 0) return size;
    const look = Math.min(size, CHUNK * 4);
    const buffer = Buffer.alloc(look);
    const read = readSync(fd, buffer, 0, look, size - look);
    let newlines = 0;
    // The file's last byte is normally a newline that ends the last line, not one before it.
    for (let index = read - 2; index >= 0; index--) {
      if (buffer[index] === 0x0a && ++newlines === count) return size - look + index + 1;
    }
    // Fewer lines than asked in the window: from its first whole line (or the file's start).
    if (look === size) return 0;
    const first = buffer.indexOf(0x0a);
    return first === -1 ? size : size - look + first + 1;
  }

  #drain(lines: string[]): void {
    const fd = this.#fd as number;
    if (fstatSync(fd).size < this.#offset) this.#offset = 0; // truncated in place
    for (;;) {
      const read = readSync(fd, this.#buffer, 0, CHUNK, this.#offset);
      if (read === 0) break;
      this.#offset += read;
      const text = this.#partial + this.#decoder.write(this.#buffer.subarray(0, read));
      const parts = text.split('\n');
      this.#partial = parts.pop() as string;
      lines.push(...parts);
    }
  }

  #currentIno(): number | undefined {
    return statOrUndefined(this.path)?.ino;
  }
}

function statOrUndefined(path: string): { ino: number; size: number } | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
