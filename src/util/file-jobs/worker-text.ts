import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as Esbuild from 'esbuild';

/**
 * The file worker (./worker.ts and what it imports) as one self-contained script, which workers are
 * started from with `new Worker(text, { eval: true })`: a single-executable build has no folder to hold
 * a worker file, and the code-split bundle needs none either.
 *
 * The build (scripts/build.mjs, through the plugin in scripts/file-job-worker.mjs) replaces this module
 * with the text itself, so the bundle holds the compiled worker and never loads esbuild. Running from
 * source (the tests), the worker is compiled here, once, with esbuild (a devDependency) and the same
 * options; a test checks both give the same text.
 */

let compiled: string | undefined;

export function fileJobWorkerText(): string {
  compiled ??= compileFromSource();
  return compiled;
}

/** The worker's build options, as in scripts/file-job-worker.mjs. */
function compileFromSource(): string {
  // Only the TypeScript source compiles; a bundle made without the plugin gets a clear error, not esbuild.
  if (typeof import.meta.url !== 'string' || !import.meta.url.endsWith('.ts')) {
    throw new Error('the file worker was not embedded in this build: add embedFileJobWorker() from scripts/file-job-worker.mjs to its esbuild plugins');
  }
  const require = createRequire(import.meta.url);
  const { buildSync } = require('esbuild') as typeof Esbuild;
  const result = buildSync({
    absWorkingDir: fileURLToPath(new URL('../../..', import.meta.url)),
    entryPoints: [fileURLToPath(new URL('./worker.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    legalComments: 'none',
    logLevel: 'warning',
    write: false,
  });
  return result.outputFiles[0].text;
}
