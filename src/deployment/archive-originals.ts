import { existsSync, readFileSync } from 'node:fs';
import { formatOriginalAttributes, parseOriginalAttributes, type OriginalAttributesMap } from '../archive/original-attributes.js';
import { absentAsUndefined } from '../archive/revision-files.js';
import { secureUnpackedRevision } from '../archive/secure-archive.js';
import type { Logger } from '../log/logger.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { archiveAttributesFileFor } from './layout.js';

/**
 * The one gate before root uses an unpacked revision (runs its hooks, installs its files): the archive
 * folder must be root's (see ../archive/original-attributes.ts). DownloadBundle writes the file beside it
 * once it has unpacked the bundle that way; a folder without that file was left by an earlier agent, and
 * is made root's here first (../archive/secure-archive.ts), once, then gets the file. Returns what the
 * bundle said of its files, by archive-relative path.
 */
export async function rootsArchive(archiveDir: string, logger: Logger): Promise<OriginalAttributesMap> {
  const file = archiveAttributesFileFor(archiveDir);
  const text = absentAsUndefined(() => readFileSync(file, 'utf8'));
  if (text !== undefined) {
    try {
      return parseOriginalAttributes(text);
    } catch (error) {
      // Only the agent writes it (atomically); unreadable means damaged: check the folder again.
      logger.warn(`${file} cannot be read (${(error as Error).message}); checking ${archiveDir} again`);
    }
  }
  return secureAndRecord(archiveDir, file, logger);
}

/**
 * rootsArchive() for a hook event, which needs the folder root's but not what the bundle said: when the
 * file is there, nothing is read (it may hold an entry for each of tens of thousands of files).
 */
export async function ensureArchiveIsRoots(archiveDir: string, logger: Logger): Promise<void> {
  const file = archiveAttributesFileFor(archiveDir);
  if (existsSync(file)) return;
  await secureAndRecord(archiveDir, file, logger);
}

async function secureAndRecord(archiveDir: string, file: string, logger: Logger): Promise<OriginalAttributesMap> {
  const { originals, changed } = secureUnpackedRevision(archiveDir);
  if (changed.length > 0) {
    const shown = changed.slice(0, 5).map((path) => (path === '' ? '.' : path)).join(', ');
    logger.warn(
      `${archiveDir} was unpacked by an earlier agent with its bundle's owners and modes (${changed.length} entr${changed.length === 1 ? 'y' : 'ies'}, e.g. ${shown}): made root's and not writable by others before anything of it runs as root; installed copies still get the bundle's owners and modes`,
    );
  }
  await writeFileAtomic(file, formatOriginalAttributes(originals));
  return originals;
}
