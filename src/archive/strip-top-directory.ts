import { readdir, rename, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Names that make a lone top-level directory "the revision itself" (the anchor's test, §3.4). */
const APPSPEC_NAME = /appspec/i;

/** The anchor's transient sibling: `deployment-archive` → `deployment-archive-temp`. */
export function stripTempDirFor(archiveDir: string): string {
  return join(dirname(archiveDir), `${basename(archiveDir)}-temp`);
}

/** The rule's first half: the name of the archive folder's only entry, when that entry is a directory. */
export function loneTopDirectory(entries: readonly { name: string; isDirectory(): boolean }[]): string | undefined {
  return entries.length === 1 && entries[0].isDirectory() ? entries[0].name : undefined;
}

/** The rule's second half: that directory's listing has a name matching /appspec/i. */
export function namesAnAppSpec(names: readonly string[]): boolean {
  return names.some((name) => APPSPEC_NAME.test(name));
}

/**
 * The anchor rule for wrapped bundles (GitHub tarballs and zipballs always wrap the tree in one
 * `<owner>-<repo>-<sha>/` folder): if `archiveDir` holds exactly one entry, that entry is a
 * directory (not a symlink to one), and its listing has a name matching /appspec/i, the directory's
 * content moves up one level. Only one level is stripped.
 *
 * Moves by rename through the temp sibling, as the anchor does: archiveDir → temp,
 * temp/<top> → archiveDir, rmdir temp. Two renames on one file system, so nothing is copied.
 *
 * @returns the stripped directory's name, or undefined when the rule did not apply
 */
export async function stripTopDirectory(archiveDir: string): Promise<string | undefined> {
  const top = loneTopDirectory(await readdir(archiveDir, { withFileTypes: true }));
  if (top === undefined || !namesAnAppSpec(await readdir(join(archiveDir, top)))) return undefined;

  const tempDir = stripTempDirFor(archiveDir);
  await rm(tempDir, { recursive: true, force: true });
  await rename(archiveDir, tempDir);
  try {
    await rename(join(tempDir, top), archiveDir);
  } catch (error) {
    // Put the tree back where the caller expects it rather than leave it under the temp name.
    await rename(tempDir, archiveDir).catch(() => {});
    throw error;
  }
  await rmdir(tempDir);
  return top;
}
