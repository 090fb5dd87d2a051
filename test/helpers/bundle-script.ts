import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/**
 * Bundles a TypeScript entry (a child process a test measures, or a module it loads) into one file that
 * plain Node runs, so the measurement sees the agent's code and not vitest's. Returns `outfile`.
 */
export async function bundleScript(entry: URL, outfile: string, format: 'esm' | 'cjs' = 'esm'): Promise<string> {
  await build({
    entryPoints: [fileURLToPath(entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format,
    target: 'node20',
    logLevel: 'warning',
    // CommonJS dependencies bundled into ESM call require(): give the file one.
    ...(format === 'esm'
      ? { banner: { js: "import { createRequire as __cdaCreateRequire } from 'node:module'; const require = __cdaCreateRequire(import.meta.url);" } }
      : {}),
  });
  return outfile;
}
