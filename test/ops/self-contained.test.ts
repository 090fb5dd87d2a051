import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';

/**
 * The repository explains itself: no comment, test or document points to notes outside it (a private
 * specification's section numbers, its file names, the reference folder beside the repository) or calls AWS's agent by private shorthand.
 * Facts about AWS's agent are stated where they are used or in docs/compatibility.md. (A YAML anchor or a
 * PKI trust anchor is fine: only "the anchor" as a name is refused.)
 */
const FOLDERS = ['src', 'test', 'bench', 'scripts', 'docs', 'examples', 'packaging', 'systemd', 'conf', 'man', 'completions'];
const FILES = ['README.md', 'CHANGELOG.md', 'BENCHMARKS.md', 'install.sh', 'package.json'];
const FORBIDDEN = new RegExp(['agent-spec', 'users-and-peers', '\\.\\./shared\\b', '§\\s?\\d', '\\bthe anchor\\b'].join('|'), 'i');

function* filesUnder(dir: string): Generator<string> {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* filesUnder(path);
    else if (entry.isFile()) yield path;
  }
}

describe('the repository stands alone', () => {
  it('points to no notes outside it and names AWS\'s agent plainly', () => {
    const self = relative(REPO_ROOT, import.meta.filename ?? new URL(import.meta.url).pathname);
    const paths = [...FOLDERS.flatMap((folder) => [...filesUnder(join(REPO_ROOT, folder))]), ...FILES.map((file) => join(REPO_ROOT, file))];
    const found: string[] = [];
    for (const path of paths) {
      const name = relative(REPO_ROOT, path);
      // This file spells the patterns out, and docs.test.ts checks the README with its own.
      if (name === self || name === 'test/ops/docs.test.ts') continue;
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        continue;
      }
      text.split('\n').forEach((line, index) => {
        if (FORBIDDEN.test(line)) found.push(`${name}:${index + 1}: ${line.trim()}`);
      });
    }
    expect(found, 'say the fact, or point into docs/compatibility.md, docs/architecture.md or docs/decisions.md').toEqual([]);
  });
});
