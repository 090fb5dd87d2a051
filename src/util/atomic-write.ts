import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync, fchmodSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Replace a file so that a crash leaves either the old or the new content, never a torn mix: write a
 * temp file in the same folder (rename is only atomic within one file system), fsync it, rename it over
 * the target, then fsync the folder so the rename itself survives a power cut.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const { open, rename, rm } = fsPromises();
  const temp = tempPathFor(path);
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(data);
      // The open mode is filtered by the umask; the caller asked for this exact mode.
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(dirname(path));
}

/**
 * The synchronous twin, for the small pointer files written between steps. `durable: false` skips the
 * two fsyncs, for files rewritten often that only describe what is happening (a crash may lose the
 * last update, never tear the file).
 */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, mode = 0o644, { durable = true }: { durable?: boolean } = {}): void {
  const temp = tempPathFor(path);
  try {
    const fd = openSync(temp, 'wx', mode);
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
      fchmodSync(fd, mode);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  if (durable) syncDirectorySync(dirname(path));
}

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * node:fs/promises, loaded by the first asynchronous write: the idle daemon writes only with the
 * synchronous twin, and loading it costs 0.8 MB (docs/decisions.md, "Single executable").
 */
function fsPromises(): typeof import('node:fs/promises') {
  return process.getBuiltinModule('node:fs/promises');
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await fsPromises().open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function syncDirectorySync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
