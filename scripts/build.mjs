#!/usr/bin/env node
// Bundles the agent so the host needs no node_modules and start-up does not walk thousands of files (the
// `start` benchmark). Code splitting: dist/codedeploy-agent.mjs holds what every command needs; each
// subcommand and each part loaded on demand (S3, GitHub, archives, PKCS7, the engine, the control-plane SDK)
// lives in dist/chunks/, so an idle `run` never parses them (issue 4: idle RSS ≤ 60 MiB).
import { build } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentBundleOptions } from './bundle-options.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
mkdirSync(dist, { recursive: true });
const result = await build({
  ...agentBundleOptions(root),
  outdir: dist,
  outExtension: { '.js': '.mjs' },
  target: 'node20',
  sourcemap: 'linked',
  metafile: true,
  // Some CommonJS dependencies call require(); give each ESM chunk a require of its own.
  banner: {
    js: "import { createRequire as __cdaCreateRequire } from 'node:module'; const require = __cdaCreateRequire(import.meta.url);",
  },
});

// Chunk names carry a content hash, so earlier builds leave theirs behind. Remove those, but only once they
// are ten minutes old: an agent started from the previous build (a test run, say) still loads its chunks.
const produced = new Set(Object.keys(result.metafile.outputs).map((file) => relative(dist, join(root, file))));
const chunks = join(dist, 'chunks');
for (const name of existsSync(chunks) ? readdirSync(chunks) : []) {
  const file = join(chunks, name);
  if (!produced.has(`chunks/${name}`) && Date.now() - statSync(file).mtimeMs > 10 * 60_000) rmSync(file, { force: true });
}
