import { lstat, mkdir, rm, stat } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { formatMs } from '../util/duration.js';
import { MB } from '../util/byte-size.js';
import { removeTree } from '../util/remove-tree.js';
import type { ArchiveEntry, EntryContent } from './archive-entry.js';
import { toArchiveFailure } from './archive-failure.js';
import { BundleBudget, DEFAULT_MAX_BUNDLE_COMPRESSION_RATIO, DEFAULT_MAX_BUNDLE_UNPACKED_MB, type BundleLimits } from './bundle-limits.js';
import { refuseSymlinksEscapingAfterStrip } from './entry-safety.js';
import { EntryWriter, type WriterResult } from './entry-writer.js';
import { afterStrippingTop, type OriginalAttributesMap } from './original-attributes.js';
import { stripTempDirFor, stripTopDirectory } from './strip-top-directory.js';
import { readTarMembers } from './tar-entries.js';
import { openTarSource } from './tar-source.js';
import { openZip } from './zip-entries.js';

export type ArchiveBundleType = 'tar' | 'tgz' | 'zip';

export interface UnpackOptions {
  /** Apply the anchor's top-level directory rule (./strip-top-directory.ts). Default true. */
  stripSingleTopDirectory?: boolean;
  logger?: Logger;
  signal?: AbortSignal;
  /** What the bundle may unpack to (bundle-limits.ts); default the configuration's defaults. */
  limits?: BundleLimits;
}

export const DEFAULT_BUNDLE_LIMITS: BundleLimits = {
  maxUnpackedBytes: DEFAULT_MAX_BUNDLE_UNPACKED_MB * MB,
  maxCompressionRatio: DEFAULT_MAX_BUNDLE_COMPRESSION_RATIO,
};

export interface UnpackResult {
  /** Files, directories and links created. */
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
  /** Name of the top-level directory whose content was moved up, when the rule applied. */
  strippedTopDirectory?: string;
  /** The archive's modes and owners that the unpacked copy does not keep, by path in `destDir`. */
  originals: OriginalAttributesMap;
}

/**
 * Unpacks a revision bundle into `destDir` (DownloadBundle step 3, agent-spec §3.4), in place of the
 * anchor's `tar -xpsf` / `tar -zxpsf` / `unzip -qo`.
 *
 * - `destDir` is emptied first (the anchor `rm -rf`s the archive folder) and created.
 * - `tar` and `tgz` both accept plain and gzip tar, recognised by magic bytes as GNU tar does.
 * - Modes are kept exactly (no umask), with mtimes, symlinks as links and empty directories, except
 *   that the unpacked copy, which hooks run from as root, is the agent's and has no setuid, setgid, or
 *   write for group and others: the archive's own modes and, as root, a tar's owners (as `tar -p` would
 *   restore them: names first, then numeric ids) are returned in `originals` for Install.
 * - Unsafe entries are refused (./entry-safety.ts). On any refusal or failure nothing has been
 *   written outside `destDir` and `destDir` is removed, so no half-unpacked revision is left behind.
 * - Streams: memory stays flat whatever the bundle or entry sizes.
 */
export async function unpackBundle(
  bundlePath: string,
  bundleType: ArchiveBundleType,
  destDir: string,
  options: UnpackOptions = {},
): Promise<UnpackResult> {
  const { stripSingleTopDirectory = true, logger = silentLogger, signal } = options;
  const format = bundleType === 'zip' ? 'zip' : 'tar';
  signal?.throwIfAborted();
  const started = performance.now();
  let stripping = false;
  try {
    const budget = new BundleBudget(options.limits ?? DEFAULT_BUNDLE_LIMITS, (await stat(bundlePath)).size);
    // unzip (without -X) never restores owners; tar -p does, but only as root.
    const writer = new EntryWriter(destDir, { preserveOwner: format === 'tar' && process.getuid?.() === 0, logger, signal, budget });
    // A folder an earlier agent unpacked may hold folders of the archive's owners: removed without following a symlink.
    if (await exists(destDir)) await removeTree(destDir);
    await mkdir(destDir, { recursive: true });
    const written = await readArchiveInto(bundlePath, format, writer);
    let strippedTopDirectory: string | undefined;
    if (stripSingleTopDirectory) {
      stripping = true;
      strippedTopDirectory = await stripTopDirectory(destDir);
      if (strippedTopDirectory !== undefined) refuseSymlinksEscapingAfterStrip(written.symlinks, strippedTopDirectory);
    }
    logger.info(`Unpacked ${written.entries} entries (${written.bytes} bytes) from ${bundlePath} into ${destDir} in ${formatMs(performance.now() - started)}`);
    if (strippedTopDirectory !== undefined) {
      logger.info(`Moved the content of the bundle's single top-level directory '${strippedTopDirectory}' up one level`);
    }
    const originals = strippedTopDirectory === undefined ? written.originals : afterStrippingTop(written.originals, strippedTopDirectory);
    return { entries: written.entries, bytes: written.bytes, strippedTopDirectory, originals };
  } catch (error) {
    // Every folder unpacked is the agent's and nobody else can write it: fs.rm is safe and costs no process.
    await rm(destDir, { recursive: true, force: true }).catch(() => {});
    if (stripping) await rm(stripTempDirFor(destDir), { recursive: true, force: true }).catch(() => {});
    throw toArchiveFailure(error, `Error extracting ${format} archive`, signal);
  }
}

/** Every entry of the archive through `writer` (which checks each), then its finish; the writer is closed either way. */
export async function readArchiveInto(bundlePath: string, format: 'tar' | 'zip', writer: EntryWriter): Promise<WriterResult> {
  try {
    await forEachMember(bundlePath, format, (entry, content) => writer.add(entry, content));
    return await writer.finish();
  } finally {
    await writer.close();
  }
}

/** Each member of the archive in order, unchecked; a file's content must be read (or left) before the next. */
export async function forEachMember(
  bundlePath: string,
  format: 'tar' | 'zip',
  visit: (entry: ArchiveEntry, content: EntryContent | undefined) => Promise<void>,
): Promise<void> {
  if (format === 'tar') {
    const source = await openTarSource(bundlePath);
    for await (const { entry, content } of readTarMembers(source)) await visit(entry, content);
    return;
  }
  const zip = await openZip(bundlePath);
  try {
    for await (const { entry, content } of zip.members()) await visit(entry, content);
  } finally {
    zip.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
