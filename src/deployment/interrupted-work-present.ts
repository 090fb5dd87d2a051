import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { installJournalFile, runningHooksDir } from './layout.js';

/**
 * Whether a killed agent may have left something to put right under `rootDir` (a running-hook record, an
 * Install journal): a few directory reads, so the daemon loads the recovery (interrupted-work.ts, which
 * pulls in the install code) only when there is something for it.
 */
export function interruptedWorkPresent(rootDir: string): boolean {
  if (names(runningHooksDir(rootDir)).length > 0) return true;
  const journal = basename(installJournalFile(rootDir));
  for (const group of names(rootDir)) {
    for (const deployment of names(join(rootDir, group))) {
      if (names(join(rootDir, group, deployment)).some((name) => name.startsWith(journal))) return true;
    }
  }
  return false;
}

function names(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
