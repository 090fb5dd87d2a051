import { closeSync, fstatSync, renameSync, statSync, unlinkSync, write } from 'node:fs';
import { openLogForAppend } from '../log/log-file-mode.js';

/**
 * An append-only log file rotated by size: `name` → `name.1` → … → `name.<maxFiles-1>`, the oldest
 * dropped (users-and-peers theme 12; the anchor's scripts.log grew without bound).
 *
 * Appends are queued, so a caller that awaits each append never has more than one write in flight:
 * that is the backpressure that keeps memory flat while a script prints gigabytes. Several writers may
 * share a path (every deployment appends to the deployments log): before each write the file is
 * re-checked, and if another writer rotated it, this one reopens the new file instead of rotating again.
 */
export class RotatingAppendFile {
  private fd: number | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
    private readonly maxFiles: number,
    private readonly onError: (error: unknown) => void = () => {},
  ) {
    // 0640 in a 0750 folder: hook output is for root, not for every local user.
    this.fd = openLogForAppend(path);
  }

  /** Resolves once `data` is written; write errors go to `onError`, never to the caller. */
  append(data: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.queue = this.queue.then(() => this.write(Buffer.from(data, 'utf8'))).catch((error) => this.onError(error));
    return this.queue;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // already gone
      }
      this.fd = undefined;
    }
  }

  private async write(data: Buffer): Promise<void> {
    const fd = this.prepare(data.length);
    let offset = 0;
    while (offset < data.length) {
      offset += await new Promise<number>((resolveWrite, rejectWrite) => {
        write(fd, data, offset, data.length - offset, null, (error, written) => (error ? rejectWrite(error) : resolveWrite(written)));
      });
    }
  }

  /** Synchronous, so no other writer in this process can interleave between the check and the rotation. */
  private prepare(incoming: number): number {
    if (this.fd === undefined || this.rotatedElsewhere(this.fd)) this.reopen();
    const size = fstatSync(this.fd as number).size;
    if (size > 0 && size + incoming > this.maxBytes) {
      this.rotate();
      this.reopen();
    }
    return this.fd as number;
  }

  private rotatedElsewhere(fd: number): boolean {
    try {
      return statSync(this.path).ino !== fstatSync(fd).ino;
    } catch {
      return true;
    }
  }

  private reopen(): void {
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // ignore
      }
    }
    this.fd = undefined;
    this.fd = openLogForAppend(this.path);
  }

  private rotate(): void {
    const keep = Math.max(1, Math.floor(this.maxFiles));
    if (keep === 1) {
      unlinkSync(this.path);
      return;
    }
    for (let index = keep - 1; index >= 2; index -= 1) {
      try {
        renameSync(`${this.path}.${index - 1}`, `${this.path}.${index}`);
      } catch {
        // that generation does not exist yet
      }
    }
    renameSync(this.path, `${this.path}.1`);
  }
}
