import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, renameSync, existsSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { localDate } from '../util/local-time.js';

/**
 * A log file rotated once a day the way the anchor's agent log is (users-and-peers §3.4): lines go to
 * `<dir>/codedeploy-agent.log`; the first line of a new day renames yesterday's file to
 * `codedeploy-agent.YYYYMMDD.log` (the day its lines were written, instance local time) and starts a fresh
 * one; only the newest `keep` rotated files are kept. The current file keeps its name, so `tail -F` and
 * log shippers configured for the anchor keep working.
 *
 * Writes are synchronous appends: a line is in the file before the call returns, so a crash loses nothing,
 * and agent log volume is far too low for this to matter.
 */
export interface DailyFileOptions {
  dir: string;
  /** e.g. `codedeploy-agent.log`. */
  fileName: string;
  /** Rotated files to keep (`log_retention_days`). */
  keep: number;
  /** Mode of a newly created file. */
  mode?: number;
  /** The clock that decides when a day ends (tests). */
  now?: () => Date;
  /** Told once when the file cannot be written (the caller decides where that goes). */
  onError?: (error: Error) => void;
}

/** `YYYYMMDD` of a date in local time: the day a rotated file is named for. */
export function dayStamp(date: Date): string {
  return localDate(date, '');
}

/** `codedeploy-agent.log` + `20240131` → `codedeploy-agent.20240131.log`. */
export function rotatedFileName(fileName: string, day: string, sequence = 0): string {
  const base = fileName.endsWith('.log') ? fileName.slice(0, -4) : fileName;
  return `${base}.${day}${sequence > 0 ? `-${sequence}` : ''}.log`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class DailyFile {
  readonly path: string;
  private readonly options: Required<Omit<DailyFileOptions, 'onError'>> & Pick<DailyFileOptions, 'onError'>;
  private fd: number | undefined;
  /** The day the lines in the current file were written. */
  private day: string;
  private reportedError = false;

  constructor(options: DailyFileOptions) {
    this.options = { mode: 0o640, now: () => new Date(), ...options };
    this.path = join(options.dir, options.fileName);
    this.day = dayStamp(this.options.now());
    this.open(true);
    try { this.prune(); } catch { /* the folder is unreadable; writing will report it */ }
  }

  /** Appends one line (a newline is added). Never throws: logging must not take the agent down. */
  write(line: string): void {
    try {
      const today = dayStamp(this.options.now());
      if (today !== this.day) this.rotate(today);
      if (this.fd !== undefined && fstatSync(this.fd).nlink === 0) {
        // Someone deleted the file under us; the anchor then logged into the void until a restart.
        this.reopen();
      }
      if (this.fd === undefined) this.open(false);
      if (this.fd !== undefined) writeSync(this.fd, `${line}\n`);
    } catch (error) {
      this.fail(error as Error);
    }
  }

  /** Closes and reopens the file by name (SIGHUP; after an external logrotate moved it away). */
  reopen(): void {
    this.closeFd();
    this.open(false);
  }

  close(): void {
    this.closeFd();
  }

  private open(initial: boolean): void {
    try {
      mkdirSync(this.options.dir, { recursive: true, mode: 0o750 });
      this.fd = openSync(this.path, 'a', this.options.mode);
      const stat = fstatSync(this.fd);
      if (stat.size === 0) {
        this.day = dayStamp(this.options.now());
      } else if (initial) {
        // Lines left by an earlier run belong to the day they were written.
        this.day = dayStamp(stat.mtime);
      }
      this.reportedError = false;
    } catch (error) {
      this.fd = undefined;
      this.fail(error as Error);
    }
  }

  private closeFd(): void {
    if (this.fd === undefined) return;
    try { closeSync(this.fd); } catch { /* nothing left to do */ }
    this.fd = undefined;
  }

  private rotate(today: string): void {
    this.closeFd();
    try {
      if (existsSync(this.path) && statSync(this.path).size > 0) {
        let sequence = 0;
        // Normally free; taken only if the clock went backwards or two runs wrote the same day.
        while (existsSync(join(this.options.dir, rotatedFileName(this.options.fileName, this.day, sequence)))) sequence++;
        renameSync(this.path, join(this.options.dir, rotatedFileName(this.options.fileName, this.day, sequence)));
      }
    } finally {
      this.day = today;
      this.open(false);
      this.prune();
    }
  }

  /** Keeps the newest `keep` rotated files. */
  private prune(): void {
    const base = this.options.fileName.endsWith('.log') ? this.options.fileName.slice(0, -4) : this.options.fileName;
    const pattern = new RegExp(`^${escapeRegExp(base)}\\.(\\d{8})(?:-(\\d+))?\\.log$`);
    const rotated = readdirSync(this.options.dir)
      .map((name) => ({ name, match: pattern.exec(name) }))
      .filter((entry): entry is { name: string; match: RegExpExecArray } => entry.match !== null)
      .sort((a, b) => (a.match[1] === b.match[1] ? Number(b.match[2] ?? 0) - Number(a.match[2] ?? 0) : b.match[1].localeCompare(a.match[1])));
    for (const entry of rotated.slice(Math.max(0, this.options.keep))) {
      try { unlinkSync(join(this.options.dir, entry.name)); } catch { /* removed by someone else */ }
    }
  }

  private fail(error: Error): void {
    if (this.reportedError) return;
    this.reportedError = true;
    this.options.onError?.(error);
  }
}
