import { copyFile, rm, symlink } from 'node:fs/promises';
import { RevisionError } from '../report/errors.js';

/**
 * A Local File revision becomes `bundle.tar` as a symlink to the file (AWS's layout), falling back
 * to a copy when links are not possible.
 */
export async function linkLocalBundle(location: string, bundleFile: string): Promise<void> {
  await rm(bundleFile, { force: true });
  try {
    await symlink(location, bundleFile);
  } catch {
    try {
      await copyFile(location, bundleFile);
    } catch (error) {
      throw new RevisionError(`Could not read the local bundle ${location}: ${(error as Error).message}`);
    }
  }
}
