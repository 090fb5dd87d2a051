import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * AWS's ongoing-deployment tracking files (docs/compatibility.md, "Crash recovery"): `ROOT/ongoing-deployment/<deployment>`
 * holding the HostCommandIdentifier while a command runs, so a restart can fail what was cut short
 * instead of leaving the service waiting for up to an hour.
 */
export const STALE_AFTER_MS = 86_400_000;

export interface TrackedCommand {
  deploymentId: string;
  hostCommandIdentifier: string;
  mtimeMs: number;
}

export class CommandTracker {
  constructor(private readonly dir: string) {}

  start(deploymentId: string, hostCommandIdentifier: string): void {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(join(this.dir, deploymentId), hostCommandIdentifier);
  }

  finish(deploymentId: string): void {
    rmSync(join(this.dir, deploymentId), { force: true });
  }

  /** Tracked commands younger than a day; older files are stale and removed (as AWS's agent). */
  inProgress(now = Date.now()): TrackedCommand[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const found: TrackedCommand[] = [];
    for (const name of names) {
      const path = join(this.dir, name);
      try {
        const { mtimeMs, isFile } = { mtimeMs: statSync(path).mtimeMs, isFile: statSync(path).isFile() };
        if (!isFile) continue;
        if (now - mtimeMs > STALE_AFTER_MS) {
          rmSync(path, { force: true });
          continue;
        }
        found.push({ deploymentId: name, hostCommandIdentifier: readFileSync(path, 'utf8').trim(), mtimeMs });
      } catch {
        // removed while we looked: not in progress
      }
    }
    return found.sort((a, b) => b.mtimeMs - a.mtimeMs);
  }
}
