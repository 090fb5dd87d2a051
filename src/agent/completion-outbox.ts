import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import type { Envelope } from '../report/diagnostics.js';

export interface PendingCompletion {
  hostCommandIdentifier: string;
  status: 'Succeeded' | 'Failed';
  diagnostics: Envelope;
  /** When the result was decided (for the log). */
  decidedAt: string;
}

/**
 * Results that have been decided but not yet delivered to the service. A completion is written here
 * before the first attempt and removed once the service accepted it, so no result is lost across a
 * restart and none is sent with a different status later (each command completes exactly once, §10.5).
 */
export class CompletionOutbox {
  constructor(private readonly dir: string) {}

  private fileFor(hostCommandIdentifier: string): string {
    return join(this.dir, `${createHash('sha256').update(hostCommandIdentifier).digest('hex').slice(0, 32)}.json`);
  }

  put(completion: PendingCompletion): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomicSync(this.fileFor(completion.hostCommandIdentifier), JSON.stringify(completion), 0o600);
  }

  remove(hostCommandIdentifier: string): void {
    rmSync(this.fileFor(hostCommandIdentifier), { force: true });
  }

  has(hostCommandIdentifier: string): boolean {
    return this.list().some((c) => c.hostCommandIdentifier === hostCommandIdentifier);
  }

  list(): PendingCompletion[] {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n.endsWith('.json'));
    } catch {
      return [];
    }
    const result: PendingCompletion[] = [];
    for (const name of names) {
      try {
        result.push(JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as PendingCompletion);
      } catch {
        rmSync(join(this.dir, name), { force: true }); // torn or foreign file
      }
    }
    return result;
  }
}
