/**
 * The dependency list matches the imports: every package the agent's code imports is declared in
 * package.json `dependencies` (so `npm ci --omit=dev` and the bundle get it, rather than finding it
 * only because another package pulled it in), and every package the tests, benchmarks and scripts
 * import is declared in one of the two lists. Declared production dependencies are all imported.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';

const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const dependencies = new Set(Object.keys(manifest.dependencies));
const devDependencies = new Set(Object.keys(manifest.devDependencies));

/** Declared for work under way on another branch, not imported yet (none today). */
const DECLARED_AHEAD_OF_USE = new Set<string>([]);

/**
 * Development packages that src/ may name, each for one file the build replaces: running from source
 * (the tests), `worker-text.ts` compiles the file worker with esbuild; the bundle holds the compiled text.
 */
const SOURCE_ONLY: Record<string, string> = { esbuild: 'src/util/file-jobs/worker-text.ts' };

const BUILTINS = new Set(builtinModules);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && /\.(ts|mts|mjs|js)$/.test(entry.name) && !entry.name.endsWith('.d.ts'))
    .map((entry) => join(entry.parentPath, entry.name));
}

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`; undefined for relative paths and Node built-ins. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) return undefined;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  return BUILTINS.has(name) ? undefined : name;
}

/** Package → the files importing it (static, dynamic and `typeof import(...)` alike), by the compiler's own scan. */
function importsIn(dirs: string[]): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of dirs.flatMap((dir) => sourceFiles(join(REPO_ROOT, dir)))) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      const name = packageOf(fileName);
      if (name) found.set(name, [...(found.get(name) ?? []), relative(REPO_ROOT, file)]);
    }
  }
  return found;
}

describe('declared dependencies', () => {
  const shipped = importsIn(['src']);

  it('every package src/ imports is a production dependency', () => {
    const sourceOnly = (name: string, files: string[]) => devDependencies.has(name) && files.every((file) => file === SOURCE_ONLY[name]);
    const undeclared = [...shipped]
      .filter(([name, files]) => !dependencies.has(name) && !sourceOnly(name, files))
      .map(([name, files]) => `${name} (${files[0]})`);
    expect(undeclared, 'add them with npm install --save-exact').toEqual([]);
  });

  it('every production dependency is imported by src/', () => {
    const unused = [...dependencies].filter((name) => !shipped.has(name) && !DECLARED_AHEAD_OF_USE.has(name));
    expect(unused, 'remove them, or move build-only ones to devDependencies').toEqual([]);
  });

  it('every package the tests, benchmarks and scripts import is declared', () => {
    const used = importsIn(['test', 'bench', 'scripts', 'bin']);
    const undeclared = [...used].filter(([name]) => !dependencies.has(name) && !devDependencies.has(name)).map(([name, files]) => `${name} (${files[0]})`);
    expect(undeclared).toEqual([]);
  });
});
