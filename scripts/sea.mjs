#!/usr/bin/env node
// Builds `codedeploy-agent` as a Node.js single executable application (docs/packaging.md): a small CommonJS
// loader as the main script (scripts/sea-loader.cjs), the agent's code-split chunks as assets with a V8 code
// cache each (made by the very binary they ship in: a cache is only valid for that V8 and that CPU), all
// injected with postject into a copy of the official Node.js binary (scripts/runtime.mjs).
//
//   node scripts/sea.mjs [--arch x64|arm64] [--out FILE]
//     default: this machine's architecture, release/linux-<arch>/codedeploy-agent
//
// Builds are cached in .build-cache/sea/ by the hash of everything that goes in (the chunks, the loader, the
// blob settings, the runtime version): building twice from the same sources costs a copy.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, transform } from 'esbuild';
import { embedFileJobWorker } from './file-job-worker.mjs';
import { ARCHES, CACHE, checkBinary, cannotRunReason, ensureRuntime, HOST_ARCH, ROOT, runFor, runnerFor, SEA_FUSE } from './runtime.mjs';

const require = createRequire(import.meta.url);

/**
 * The blob's settings (docs/decisions.md, "Single executable"). No start-up snapshot: the agent's modules
 * open files and sockets as they load, which a snapshot cannot hold, and a snapshot cannot be combined with
 * loading chunks on demand. No code cache for the main script: it is only the loader (scripts/sea-loader.cjs);
 * each chunk carries its own. A 1 MiB young generation (V8's default grows to 16 MiB): 1.6 MB less resident
 * when idle and about 30 MB less at the peak of a 20,000-file deployment, for the same CPU time.
 */
export const SEA_SETTINGS = { disableExperimentalSEAWarning: true, useCodeCache: false, useSnapshot: false, execArgv: ['--max-semi-space-size=1'] };

/**
 * The agent's modules for the executable: the same code-split build as `npm run build` (one entry, a chunk
 * per part loaded on demand), each chunk turned into a CommonJS function body for scripts/sea-loader.cjs.
 * Returns { 'codedeploy-agent.js': text, 'chunks/run-XXXX.js': text, ... }.
 */
export async function bundleChunks() {
  const result = await build({
    entryPoints: { 'codedeploy-agent': join(ROOT, 'src/cli/entry.ts') },
    // The file workers' text, embedded where the pool is (the single executable has no worker file either).
    plugins: [embedFileJobWorker(ROOT)],
    outdir: '/sea',
    chunkNames: 'chunks/[name]-[hash]',
    write: false,
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    legalComments: 'none',
    logLevel: 'warning',
    // Whitespace and syntax only: names stay, so a stack trace in a log still says where it was.
    minifyWhitespace: true,
    minifySyntax: true,
  });
  const chunks = {};
  for (const file of result.outputFiles) {
    const id = file.path.slice('/sea/'.length);
    const cjs = await transform(file.text, {
      format: 'cjs', platform: 'node', target: 'node24', minifyWhitespace: true, minifySyntax: true, logLevel: 'warning',
      // import() of a chunk becomes a require() the loader answers.
      supported: { 'dynamic-import': false },
    });
    const text = `(function (exports, require, module) {${cjs.code}\n})`;
    // The loader reads assets as Latin-1: esbuild writes non-ASCII characters as escapes, check it did.
    if (/[^\x00-\x7f]/.test(text)) throw new Error(`${id} holds a non-ASCII character`);
    chunks[id] = text;
  }
  if (!chunks['codedeploy-agent.js']) throw new Error(`no entry chunk among ${Object.keys(chunks).join(', ')}`);
  return chunks;
}

function hashOf(...parts) {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(typeof part === 'string' ? part : JSON.stringify(part)).update('\0');
  return hash.digest('hex').slice(0, 20);
}

/** Made by the target binary: a V8 code cache for each chunk, written beside it as `<chunk>.cache`. */
const MAKE_CODE_CACHE = `
const fs = require('node:fs'); const vm = require('node:vm');
for (const file of process.argv.slice(1)) {
  const script = new vm.Script(fs.readFileSync(file, 'latin1'), { filename: file });
  fs.writeFileSync(file + '.cache', script.createCachedData());
}`;

/**
 * Builds (or takes from the cache) the executable for `arch`; copies it to `out` when given. Returns the
 * path of the executable.
 */
export async function buildExecutable({ arch = HOST_ARCH, out, log = () => {} } = {}) {
  if (!ARCHES.includes(arch)) throw new Error(`unknown architecture ${arch}; known: ${ARCHES.join(', ')}`);
  const runtime = ensureRuntime(arch, { log });
  const chunks = await bundleChunks();
  const loader = readFileSync(join(ROOT, 'scripts/sea-loader.cjs'), 'utf8');
  const postjectVersion = require('postject/package.json').version;
  // A code cache made by another CPU's V8 would be rejected at every start: the target binary makes it
  // (under qemu for a foreign architecture). Without qemu the chunks go without one.
  const codeCache = runnerFor(arch) !== undefined;
  const key = hashOf(chunks, loader, SEA_SETTINGS, codeCache, runtime.version, arch, postjectVersion, readFileSync(fileURLToPath(import.meta.url), 'utf8'));
  const cached = join(CACHE, 'sea', `${arch}-${key}`, 'codedeploy-agent');
  if (!existsSync(cached)) {
    mkdirSync(dirname(dirname(cached)), { recursive: true });
    const work = mkdtempSync(join(dirname(dirname(cached)), `.${arch}-`));
    try {
      const assets = {};
      for (const [id, text] of Object.entries(chunks)) {
        mkdirSync(dirname(join(work, 'modules', id)), { recursive: true });
        writeFileSync(join(work, 'modules', id), text);
        assets[id] = join('modules', id);
      }
      if (codeCache) {
        log(`making the ${arch} code caches with Node.js ${runtime.version}${arch === HOST_ARCH ? '' : ' under qemu'}`);
        runFor(arch, runtime.node, ['-e', MAKE_CODE_CACHE, ...Object.values(assets)], { cwd: work, stdio: 'pipe' });
        for (const id of Object.keys(chunks)) assets[`${id}.cache`] = `${assets[id]}.cache`;
      } else {
        log(`${cannotRunReason(arch)}: building the ${arch} executable without code caches`);
      }
      writeFileSync(join(work, 'sea-loader.cjs'), loader);
      writeFileSync(join(work, 'sea-config.json'), JSON.stringify({ main: 'sea-loader.cjs', output: 'sea.blob', ...SEA_SETTINGS, assets }));
      // Without code caches the blob is the same for every CPU: this machine's binary can prepare it.
      const preparer = codeCache ? { arch, node: runtime.node } : { arch: HOST_ARCH, node: ensureRuntime(HOST_ARCH, { log }).node };
      runFor(preparer.arch, preparer.node, ['--experimental-sea-config', 'sea-config.json'], { cwd: work, stdio: 'pipe' });
      const executable = join(work, 'codedeploy-agent');
      copyFileSync(runtime.node, executable);
      chmodSync(executable, 0o755);
      log(`injecting into a copy of node-linux-${arch} ${runtime.version} (postject ${postjectVersion})`);
      execFileSync(process.execPath, [
        require.resolve('postject/dist/cli.js'), executable, 'NODE_SEA_BLOB', join(work, 'sea.blob'), '--sentinel-fuse', SEA_FUSE,
      ], { stdio: 'pipe' });
      checkBinary(executable, arch, { fuse: `${SEA_FUSE}:1` });
      if (runnerFor(arch)) {
        const version = runFor(arch, executable, ['--version']).trim();
        const expected = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
        if (version !== expected) throw new Error(`the ${arch} executable says ${JSON.stringify(version)} to --version, not ${expected}`);
      }
      rmSync(dirname(cached), { recursive: true, force: true });
      mkdirSync(dirname(cached), { recursive: true });
      renameSync(executable, cached);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    pruneCache(arch, dirname(cached));
  }
  if (!out) return cached;
  mkdirSync(dirname(out), { recursive: true });
  copyFileSync(cached, `${out}.new`);
  chmodSync(`${out}.new`, 0o755);
  renameSync(`${out}.new`, out);
  return out;
}

/**
 * Each build is 125 MB: keep the newest three of an architecture, and any made in the last ten minutes
 * (a test run or the bench may still be starting it).
 */
function pruneCache(arch, keep) {
  const dir = join(CACHE, 'sea');
  const builds = readdirSync(dir).filter((name) => name.startsWith(`${arch}-`)).map((name) => join(dir, name))
    .map((path) => ({ path, mtime: statSync(path).mtimeMs })).sort((a, b) => b.mtime - a.mtime);
  for (const { path, mtime } of builds.slice(3)) {
    if (path !== keep && Date.now() - mtime > 10 * 60_000) rmSync(path, { recursive: true, force: true });
  }
}

/** Where `npm run package` puts the executable for `arch`. */
export function releaseExecutable(arch = HOST_ARCH) {
  return join(ROOT, 'release', `linux-${arch}`, 'codedeploy-agent');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { arch: { type: 'string' }, out: { type: 'string' } } });
  const arch = values.arch ?? HOST_ARCH;
  const file = await buildExecutable({ arch, out: resolve(values.out ?? releaseExecutable(arch)), log: (line) => process.stderr.write(`sea: ${line}\n`) });
  process.stdout.write(`${file}\n`);
}
