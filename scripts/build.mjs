#!/usr/bin/env node
// Bundles the agent into one ESM file so the host needs no node_modules and start-up
// does not walk thousands of files (the `start` benchmark).
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'dist'), { recursive: true });
await build({
  entryPoints: [join(root, 'src/cli/main.ts')],
  outfile: join(root, 'dist/codedeploy-agent.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  splitting: false,
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  // Some CommonJS dependencies call require(); give the ESM bundle a require of its own.
  banner: {
    js: "import { createRequire as __cdaCreateRequire } from 'node:module'; const require = __cdaCreateRequire(import.meta.url);",
  },
});
