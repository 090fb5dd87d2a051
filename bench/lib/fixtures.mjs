// The bundles the scenarios deploy, generated once into the cache folder and reused by later runs (the
// 1 GiB tarball takes a while to compress). A bundle's appspec names its destination under the work
// folder, so the cache key includes that folder.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { once } from 'node:events';

/** Sizes per scale: `full` is the table, `quick` shrinks only the big file, `tiny` is for the smoke test. */
export const SCALES = {
  full: { smallFiles: 50, smallBytes: 1 << 20, manyFiles: 20_000, manyFileBytes: 4096, bigBytes: 1 << 30, hookOutputBytes: 50 << 20 },
  quick: { smallFiles: 50, smallBytes: 1 << 20, manyFiles: 20_000, manyFileBytes: 4096, bigBytes: 256 << 20, hookOutputBytes: 50 << 20 },
  tiny: { smallFiles: 5, smallBytes: 20 << 10, manyFiles: 60, manyFileBytes: 4096, bigBytes: 1 << 20, hookOutputBytes: 64 << 10 },
};

export const SMALL_HOOKS = ['ApplicationStop', 'BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService'];

const WORDS = ('deploy agent revision bundle archive hook script install copy file folder service host command poll ' +
  'ack spec region bucket key etag mode owner group link path root event stop start validate traffic block allow ' +
  'the of and to in is for with on as by at from this that it be are was were an or not but if then else done').split(' ');

/** Deterministic text (xorshift32), compressible about 3:1 like source code. */
function textBytes(length, seed) {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  const buffer = Buffer.allocUnsafe(length);
  let offset = 0;
  let column = 0;
  while (offset < length) {
    const word = WORDS[next() % WORDS.length];
    const text = column > 70 ? '\n' : column === 0 ? word : ` ${word}`;
    column = text === '\n' ? 0 : column + text.length;
    offset += buffer.write(text, offset, 'latin1');
  }
  return buffer;
}

/** `hooks`: event → script location, or `{ location, timeout }`. */
function appspec(files, hooks = {}) {
  let text = 'version: 0.0\nos: linux\n';
  if (files.length > 0) text += `files:\n${files.map(({ source, destination }) => `  - source: ${source}\n    destination: ${destination}\n`).join('')}`;
  const events = Object.keys(hooks);
  if (events.length > 0) {
    text += `hooks:\n${events.map((event) => {
      const { location, timeout } = typeof hooks[event] === 'string' ? { location: hooks[event], timeout: 300 } : hooks[event];
      return `  ${event}:\n    - location: ${location}\n      timeout: ${timeout}\n`;
    }).join('')}`;
  }
  return text;
}

/**
 * The soak's hook scripts, by event. Which deployments fail is read from the last digits of the
 * deployment id (`d-SOAK00123`), so the bench knows what to expect: AfterInstall fails for ids ending
 * in 3, ValidateService for ids ending in 7, and ApplicationStart overruns its 1 s timeout for ids
 * ending in 25 or 75 (the agent kills it).
 */
/** The soak's revision: 200 files, at every scale (the soak's scale is its number of deployments). */
const SOAK_FILES = 200;

export const SOAK_HOOKS = {
  ApplicationStop: { body: 'echo "stopping the previous revision for $DEPLOYMENT_ID"' },
  BeforeInstall: { body: 'echo "before install of $DEPLOYMENT_ID"\nls "$(dirname "$0")" > /dev/null' },
  AfterInstall: { body: 'echo "after install of $DEPLOYMENT_ID"\ncase "$DEPLOYMENT_ID" in *3) echo "AfterInstall fails for $DEPLOYMENT_ID" >&2; exit 1;; esac' },
  ApplicationStart: { body: 'case "$DEPLOYMENT_ID" in *25|*75) echo "hanging"; sleep 5;; esac\necho "started $DEPLOYMENT_ID"', timeout: 1 },
  ValidateService: { body: 'case "$DEPLOYMENT_ID" in *7) echo "ValidateService fails for $DEPLOYMENT_ID" >&2; exit 2;; esac\necho valid' },
};

/** Whether deployment number `n` of the soak fails, and in which event (see SOAK_HOOKS). */
export function soakFailure(n) {
  if (n % 10 === 3) return 'AfterInstall';
  if (n % 10 === 7) return 'ValidateService';
  if (n % 50 === 25) return 'ApplicationStart';
  return undefined;
}

function writeScript(path, body) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
}

/** Builds `target` through `make(tmp)` into a temporary name, then renames: an interrupted run leaves nothing half-made. */
async function cached(target, make) {
  if (existsSync(target)) return target;
  const tmp = `${target}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  await make(tmp);
  renameSync(tmp, target);
  return target;
}

function tgzFrom(dir, file) {
  // As a user makes one: `tar -czf`, gzip's default level. (A faster level makes a larger file that the
  // baseline's gzip is slower to read: 0.77 s against 0.69 s for many-files, a thumb on the scale.)
  execFileSync('tar', ['-czf', file, '-C', dir, '.'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

async function zipFrom(dir, file) {
  const { default: yazl } = await import('yazl');
  const zip = new yazl.ZipFile();
  const walk = (path) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      const name = relative(dir, full);
      if (entry.isDirectory()) {
        zip.addEmptyDirectory(name, { mode: statSync(full).mode });
        walk(full);
      } else {
        zip.addFile(full, name, { mode: statSync(full).mode });
      }
    }
  };
  walk(dir);
  zip.end();
  const out = createWriteStream(file);
  zip.outputStream.pipe(out);
  await once(out, 'close');
}

export const BUNDLES = ['small', 'many', 'big', 'hook-output', 'background', 'daemon', 'soak'];

/**
 * Creates (or finds) the bundles named in `needs` (default: all of BUNDLES) under `cacheDir` for `scale`,
 * with destinations under `workDir`. Returns the paths the scenarios use (false for those not made).
 */
export async function prepareFixtures({ cacheDir, workDir, scale, needs = BUNDLES, log = () => {} }) {
  const want = (name) => needs.includes(name);
  const sizes = SCALES[scale];
  const key = createHash('sha256').update(JSON.stringify({ version: 3, workDir, sizes })).digest('hex').slice(0, 12);
  const base = join(cacheDir, `${scale}-${key}`);
  mkdirSync(base, { recursive: true });
  const dest = (name) => join(workDir, 'dest', name);
  const made = (what) => log(`bundle ready: ${what}`);

  // small: 50 files (1 MiB) in a few folders, the five hooks of a deployment that follow a first one.
  const small = want('small') && await cached(join(base, 'small'), async (dir) => {
    const each = Math.floor(sizes.smallBytes / sizes.smallFiles);
    for (let i = 0; i < sizes.smallFiles; i++) {
      const path = join(dir, 'app', `part${i % 5}`, `file${i}.txt`);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, textBytes(each, i + 1));
    }
    const hooks = {};
    for (const event of SMALL_HOOKS) {
      writeScript(join(dir, 'scripts', `${event}.sh`), 'echo "$LIFECYCLE_EVENT of $DEPLOYMENT_ID"');
      hooks[event] = `scripts/${event}.sh`;
    }
    writeFileSync(join(dir, 'appspec.yml'), appspec([{ source: 'app', destination: dest('small') }], hooks));
  });
  if (want('small')) made('small');

  // many-files: 20,000 files of 4 KiB in 20 × 20 folders, as a folder, a tgz and a zip.
  const manyDir = want('many') && await cached(join(base, 'many'), async (dir) => {
    const perFolder = Math.max(1, Math.ceil(sizes.manyFiles / 400));
    let n = 0;
    for (let a = 0; n < sizes.manyFiles; a++) {
      for (let b = 0; b < 20 && n < sizes.manyFiles; b++) {
        const folder = join(dir, `module${String(a).padStart(2, '0')}`, `package${String(b).padStart(2, '0')}`);
        mkdirSync(folder, { recursive: true });
        for (let c = 0; c < perFolder && n < sizes.manyFiles; c++, n++) {
          writeFileSync(join(folder, `file${String(c).padStart(3, '0')}.txt`), textBytes(sizes.manyFileBytes, n + 7));
        }
      }
    }
    writeFileSync(join(dir, 'appspec.yml'), appspec([{ source: '/', destination: dest('many') }]));
  });
  const manyTgz = want('many') && await cached(join(base, 'many.tgz'), (file) => tgzFrom(manyDir, file));
  const manyZip = want('many') && await cached(join(base, 'many.zip'), (file) => zipFrom(manyDir, file));
  if (want('many')) made('many-files (directory, tgz, zip)');

  // big-file: one incompressible file (an application archive, a JAR, a model).
  const bigDir = want('big') && await cached(join(base, 'big'), async (dir) => {
    mkdirSync(dir, { recursive: true });
    const out = createWriteStream(join(dir, 'big.bin'));
    const chunk = 8 << 20;
    for (let written = 0; written < sizes.bigBytes; written += chunk) {
      if (!out.write(randomBytes(Math.min(chunk, sizes.bigBytes - written)))) await once(out, 'drain');
    }
    out.end();
    await once(out, 'close');
    writeFileSync(join(dir, 'appspec.yml'), appspec([{ source: 'big.bin', destination: dest('big') }]));
  });
  const bigTgz = want('big') && await cached(join(base, 'big.tgz'), (file) => tgzFrom(bigDir, file));
  if (want('big')) made('big-file (directory, tgz)');

  // hook-output: one hook that prints 50 MiB of text lines; the same bytes are the baseline's input.
  const hookOutputData = want('hook-output') && await cached(join(base, 'hook-output.txt'), async (file) => {
    const out = createWriteStream(file);
    const chunk = 1 << 20;
    for (let written = 0, seed = 1; written < sizes.hookOutputBytes; written += chunk, seed++) {
      if (!out.write(textBytes(Math.min(chunk, sizes.hookOutputBytes - written), seed))) await once(out, 'drain');
    }
    out.end();
    await once(out, 'close');
  });
  const hookOutput = want('hook-output') && await cached(join(base, 'hook-output'), async (dir) => {
    writeScript(join(dir, 'scripts', 'print.sh'), `cat '${hookOutputData}'`);
    writeFileSync(join(dir, 'appspec.yml'), appspec([], { ApplicationStart: 'scripts/print.sh' }));
  });
  if (want('hook-output')) made('hook-output');

  // background: a hook that leaves `sleep 30` running with the hook's output pipes; its pid is written
  // down (not by the sleep) so the bench can end it.
  const backgroundPidFile = join(workDir, 'background-sleep.pid');
  const background = want('background') && await cached(join(base, 'background'), async (dir) => {
    writeScript(join(dir, 'scripts', 'start.sh'), `sleep 30 &\necho $! > '${backgroundPidFile}'\necho started`);
    writeFileSync(join(dir, 'appspec.yml'), appspec([], { ApplicationStart: 'scripts/start.sh' }));
  });
  if (want('background')) made('background');

  // daemon: a Local Directory revision of one file and no hooks, for the poll-to-ack deployments.
  const daemonBundle = want('daemon') && await cached(join(base, 'daemon'), async (dir) => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'index.html'), 'hello\n');
    writeFileSync(join(dir, 'appspec.yml'), appspec([{ source: 'index.html', destination: dest('daemon') }]));
  });

  // soak: 200 files (about 400 KiB) in 10 folders and the five hooks of SOAK_HOOKS, as a tgz for moto.
  const soakDir = want('soak') && await cached(join(base, 'soak'), async (dir) => {
    for (let i = 0; i < SOAK_FILES; i++) {
      const path = join(dir, 'app', `module${i % 10}`, `file${i}.txt`);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, textBytes(1024 + ((i * 37) % 2048), i + 11));
    }
    const hooks = {};
    for (const [event, { body, timeout = 30 }] of Object.entries(SOAK_HOOKS)) {
      writeScript(join(dir, 'scripts', `${event}.sh`), body);
      hooks[event] = { location: `scripts/${event}.sh`, timeout };
    }
    writeFileSync(join(dir, 'appspec.yml'), appspec([{ source: 'app', destination: dest('soak') }], hooks));
  });
  const soakTgz = want('soak') && await cached(join(base, 'soak.tgz'), (file) => tgzFrom(soakDir, file));
  if (want('soak')) made('soak (tgz)');

  return { sizes, soakTgz, small, manyDir, manyTgz, manyZip, bigDir, bigTgz, hookOutput, hookOutputData, background, backgroundPidFile, daemonBundle, dest };
}
