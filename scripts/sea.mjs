#!/usr/bin/env node
// Builds `codedeploy-agent` as a Node.js single executable application (docs/packaging.md): a small CommonJS
// loader as the main script (scripts/sea-loader.cjs), injected with postject into a copy of the official
// Node.js binary (scripts/runtime.mjs), and the agent's code-split chunks, each with a V8 code cache made by
// the very binary they ship in (a cache is only valid for that V8 and that CPU), appended after the ELF
// image as a table of modules that the loader reads with pread (see MODULES_MAGIC).
//
//   node scripts/sea.mjs [--arch x64|arm64] [--out FILE]
//     default: this machine's architecture, release/linux-<arch>/codedeploy-agent
//
// Builds are cached in .build-cache/sea/ by the hash of everything that goes in (the chunks, the loader, the
// blob settings, the runtime version): building twice from the same sources costs a copy.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, transform } from 'esbuild';
import { agentBundleOptions } from './bundle-options.mjs';
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
    ...agentBundleOptions(ROOT),
    outdir: '/sea',
    write: false,
    target: 'node24',
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

/**
 * The V8 code caches of the chunks in `work/modules` (`<chunk>.cache` beside each), made by the target
 * binary in a training run (scripts/sea-train.cjs): `codedeploy-agent run` against a stand-in commands
 * service on 127.0.0.1 that answers every call with no command, stopped with SIGTERM after its second poll.
 * A cache made after the code ran holds every function compiled so far; one made from the bare script holds
 * only the top level, and V8 compiled the rest lazily at every start (docs/decisions.md, "Single executable").
 */
async function trainCodeCaches(arch, node, work, ids, log) {
  const runner = runnerFor(arch);
  if (!runner) throw new Error(cannotRunReason(arch));
  const dir = join(work, 'train');
  mkdirSync(dir);
  let polls = 0;
  let child;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      response.end('{}');
      if (/PollHostCommand$/.test(String(request.headers['x-amz-target'])) && ++polls === 2) child?.kill('SIGTERM');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    writeFileSync(join(dir, 'onpremises.yml'), [
      'aws_access_key_id: AKIDTRAININGRUN00000',
      'aws_secret_access_key: training-run-secret-key',
      'iam_user_arn: arn:aws:iam::123456789012:user/codedeploy-agent-build',
      'region: us-east-1',
    ].join('\n'));
    writeFileSync(join(dir, 'agent.yml'), [
      `:root_dir: ${join(dir, 'root')}`,
      `:log_dir: ${join(dir, 'log')}`,
      `:pid_dir: ${join(dir, 'pid')}`,
      `:on_premises_config_file: ${join(dir, 'onpremises.yml')}`,
      `:deploy_control_endpoint: http://127.0.0.1:${server.address().port}`,
      ':wait_between_runs: 1',
      ':startup_splay_seconds: 0',
    ].join('\n'));
    writeFileSync(join(dir, 'ids.json'), JSON.stringify(ids));
    const [command, ...args] = [...runner, node, ...SEA_SETTINGS.execArgv, join(ROOT, 'scripts/sea-train.cjs'),
      join(work, 'modules'), join(dir, 'ids.json'), 'run', '-c', join(dir, 'agent.yml')];
    child = spawn(command, args, {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, AWS_EC2_METADATA_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (data) => { output = (output + data).slice(-4000); });
    child.stderr.on('data', (data) => { output = (output + data).slice(-4000); });
    // Minutes under qemu on a busy machine; seconds natively.
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    const [code, signal] = await once(child, 'exit');
    clearTimeout(timer);
    if (polls < 2 || code !== 0 || ids.some((id) => !existsSync(join(work, 'modules', `${id}.cache`)))) {
      throw new Error(`the ${arch} code-cache training run ended (${signal ?? `exit ${code}`}) after ${polls} poll(s):\n${output}`);
    }
    log(output.trim().split('\n').at(-1));
  } finally {
    server.close();
  }
}

/** The last bytes of the executable: they say where its table of modules starts (see moduleTable). */
export const MODULES_MAGIC = 'codedeploy-agent modules v1\n';

/**
 * The table of modules appended after the ELF image (which neither the kernel nor the dynamic loader
 * reads past): each chunk's text and code cache, then an index `{ id: [offset, length, cacheOffset,
 * cacheLength] }` (offsets from the table's start) as JSON, then a footer of the index's length and the
 * table's length (two 32-bit little-endian numbers) and MODULES_MAGIC. scripts/sea-loader.cjs reads a
 * module's bytes with pread when it is first required, so they are in the process's memory once, as the
 * compiled script; SEA assets would be read through the executable's mapping, whose pages then stay
 * resident (2.7 MB of an idle daemon, docs/decisions.md "Single executable").
 */
export function moduleTable(modules) {
  const parts = [];
  const index = {};
  let offset = 0;
  const add = (bytes) => {
    parts.push(bytes);
    offset += bytes.length;
    return [offset - bytes.length, bytes.length];
  };
  for (const [id, { source, cache }] of Object.entries(modules)) {
    index[id] = [...add(source), ...(cache ? add(cache) : [])];
  }
  const indexBytes = Buffer.from(JSON.stringify(index));
  const magic = Buffer.from(MODULES_MAGIC, 'latin1');
  const footer = Buffer.alloc(8);
  footer.writeUInt32LE(indexBytes.length, 0);
  footer.writeUInt32LE(offset + indexBytes.length + footer.length + magic.length, 4);
  return Buffer.concat([...parts, indexBytes, footer, magic]);
}

/**
 * Builds (or takes from the cache) the executable for `arch`; copies it to `out` when given. Returns the
 * path of the executable.
 */
export async function buildExecutable({ arch = HOST_ARCH, out, log = () => {} } = {}) {
  if (!ARCHES.includes(arch)) throw new Error(`unknown architecture ${arch}; known: ${ARCHES.join(', ')}`);
  const runtime = ensureRuntime(arch, { log });
  const chunks = await bundleChunks();
  const loader = readFileSync(join(ROOT, 'scripts/sea-loader.cjs'), 'utf8');
  if (!loader.includes(`'${JSON.stringify(MODULES_MAGIC).slice(1, -1)}'`)) throw new Error('scripts/sea-loader.cjs does not look for MODULES_MAGIC');
  const postjectVersion = require('postject/package.json').version;
  // A code cache made by another CPU's V8 would be rejected at every start: the target binary makes it
  // (under qemu for a foreign architecture). Without qemu the chunks go without one.
  const codeCache = runnerFor(arch) !== undefined;
  const trainer = readFileSync(join(ROOT, 'scripts/sea-train.cjs'), 'utf8');
  const key = hashOf(chunks, loader, trainer, SEA_SETTINGS, codeCache, runtime.version, arch, postjectVersion, readFileSync(fileURLToPath(import.meta.url), 'utf8'));
  const cached = join(CACHE, 'sea', `${arch}-${key}`, 'codedeploy-agent');
  if (!existsSync(cached)) {
    mkdirSync(dirname(dirname(cached)), { recursive: true });
    const work = mkdtempSync(join(dirname(dirname(cached)), `.${arch}-`));
    try {
      const files = {};
      for (const [id, text] of Object.entries(chunks)) {
        mkdirSync(dirname(join(work, 'modules', id)), { recursive: true });
        writeFileSync(join(work, 'modules', id), text);
        files[id] = join('modules', id);
      }
      if (codeCache) {
        log(`making the ${arch} code caches with Node.js ${runtime.version}${arch === HOST_ARCH ? '' : ' under qemu'} (a training run)`);
        await trainCodeCaches(arch, runtime.node, work, Object.keys(files), log);
      } else {
        log(`${cannotRunReason(arch)}: building the ${arch} executable without code caches`);
      }
      writeFileSync(join(work, 'sea-loader.cjs'), loader);
      writeFileSync(join(work, 'sea-config.json'), JSON.stringify({ main: 'sea-loader.cjs', output: 'sea.blob', ...SEA_SETTINGS }));
      // The blob holds only the loader: the same for every CPU, so this machine's binary can prepare it.
      runFor(HOST_ARCH, ensureRuntime(HOST_ARCH, { log }).node, ['--experimental-sea-config', 'sea-config.json'], { cwd: work, stdio: 'pipe' });
      const executable = join(work, 'codedeploy-agent');
      copyFileSync(runtime.node, executable);
      chmodSync(executable, 0o755);
      log(`injecting into a copy of node-linux-${arch} ${runtime.version} (postject ${postjectVersion})`);
      execFileSync(process.execPath, [
        require.resolve('postject/dist/cli.js'), executable, 'NODE_SEA_BLOB', join(work, 'sea.blob'), '--sentinel-fuse', SEA_FUSE,
      ], { stdio: 'pipe' });
      appendFileSync(executable, moduleTable(Object.fromEntries(Object.entries(files).map(([id, file]) => {
        const cache = join(work, `${file}.cache`);
        return [id, { source: readFileSync(join(work, file)), cache: codeCache ? readFileSync(cache) : undefined }];
      }))));
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
