import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import { lastSuccessfulInstallFile, mostRecentInstallFile } from './layout.js';

/**
 * The two pointer files of a deployment group (agent-spec §3.3): each holds one deployment folder, with
 * no trailing newline, exactly as the Ruby agent writes it, so a host can switch agents either way.
 */

/** The deployment folder a pointer file names, or undefined when the file is missing or empty. */
export function readMarker(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  // The anchor reads with the trailing newline stripped; a file edited by hand may carry one.
  const deploymentDir = text.replace(/\r?\n$/, '');
  return deploymentDir === '' ? undefined : deploymentDir;
}

/** Atomic, because the next ApplicationStop depends on it: a torn pointer would lose the previous revision. */
export function writeMarker(file: string, deploymentDir: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomicSync(file, deploymentDir);
}

export function readLastSuccessfulInstall(rootDir: string, groupId: string): string | undefined {
  return readMarker(lastSuccessfulInstallFile(rootDir, groupId));
}

export function writeLastSuccessfulInstall(rootDir: string, groupId: string, deploymentDir: string): void {
  writeMarker(lastSuccessfulInstallFile(rootDir, groupId), deploymentDir);
}

export function readMostRecentInstall(rootDir: string, groupId: string): string | undefined {
  return readMarker(mostRecentInstallFile(rootDir, groupId));
}

export function writeMostRecentInstall(rootDir: string, groupId: string, deploymentDir: string): void {
  writeMarker(mostRecentInstallFile(rootDir, groupId), deploymentDir);
}
