#!/usr/bin/env node
// What the tests need from the machine (test/prerequisites.txt), set up before `npm test` and `.ci/run`:
//   node scripts/test-prerequisites.mjs            install what is missing when it can (root with apt-get;
//                                                  moto_server also without root, from pip into a cache folder),
//                                                  then name what is still missing, one line each
//   node scripts/test-prerequisites.mjs --check    only name what is missing (installs nothing)
//   node scripts/test-prerequisites.mjs --strict   as the first, but exit 1 when anything is still missing (CI)
// CDA_TEST_INSTALL=0 turns installing off for `npm test`.
import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const checkOnly = args.has('--check');
const strict = args.has('--strict');
const say = (line) => process.stdout.write(`test prerequisites: ${line}\n`);

/** moto's version, as the machines that run the tests have it (one S3 behaviour for everyone). */
const MOTO = 'moto[server]==5.2.1';

/** Where moto_server is set up when no package brings it; test/helpers/prerequisites.ts looks here too. */
export function toolsDir(env = process.env) {
  return env.CDA_TEST_TOOLS || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'codedeploy-agent-tests');
}

export function readPrerequisites(file = join(repo, 'test/prerequisites.txt')) {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [command, pkg, ...purpose] = line.split(/\s+/);
      return { command, pkg, purpose: purpose.join(' ') };
    });
}

function onPath(command, path) {
  // An absolute path names a file that must exist (a library), not a command; CDA_TEST_FILES_ROOT (tests of
  // this script) puts such files under another root.
  if (command.startsWith('/')) return existsSync(`${process.env.CDA_TEST_FILES_ROOT ?? ''}${command}`);
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

function present({ command }) {
  return onPath(command, `${process.env.PATH ?? ''}${delimiter}${join(toolsDir(), 'bin')}`);
}

export function howToGet({ command, pkg }) {
  if (pkg === 'prometheus') {
    return 'apt-get download prometheus, then dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x ./usr/bin/promtool and put it on PATH (npm test does this)';
  }
  if (pkg === 'moto') {
    return `apt-get install python3-moto python3-flask python3-flask-cors where the Debian release has it (12 has none), or pip install '${MOTO}'; run npm test as root to have it set up`;
  }
  return `apt-get install ${pkg} (npm test installs it when run as root)`;
}

function run(command, commandArgs, options = {}) {
  return spawnSync(command, commandArgs, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

const isRoot = process.getuid?.() === 0;
const hasApt = onPath('apt-get', process.env.PATH ?? '');
let aptUpdated = false;

function aptInstall(packages) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    run('apt-get', ['update', '-qq'], { env });
    aptUpdated = true;
  }
  const result = run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { env });
  if (result.status !== 0) say(`apt-get install ${packages.join(' ')} failed: ${(result.stderr || result.stdout).trim().split('\n').pop()}`);
}

function aptHas(pkg) {
  const result = run('apt-cache', ['policy', pkg]);
  return result.status === 0 && /Candidate: (?!\(none\))/.test(result.stdout);
}

/**
 * moto_server: Debian's python3-moto where the release has it (Debian 12 has none), else moto from pip
 * in a virtual environment under the cache folder (Debian's python refuses a system-wide pip install).
 */
function installMoto() {
  const bin = join(toolsDir(), 'bin');
  if (isRoot && hasApt && aptHas('python3-moto')) {
    say('installing python3-moto with apt-get');
    aptInstall(['python3-moto', 'python3-flask', 'python3-flask-cors']);
    if (onPath('moto_server', process.env.PATH ?? '')) return;
    // A package that ships the module without the console script: a two-line launcher does the same.
    if (run('python3', ['-c', 'import moto.server']).status === 0) {
      mkdirSync(bin, { recursive: true });
      writeFileSync(join(bin, 'moto_server'), '#!/bin/sh\nexec python3 -m moto.server "$@"\n');
      chmodSync(join(bin, 'moto_server'), 0o755);
      return;
    }
  }
  if (!onPath('python3', process.env.PATH ?? '')) return;
  // A refused or unreachable PyPI costs some 20 s: after a failure, try again only a day later.
  const failed = join(toolsDir(), 'moto-pip-failed');
  if (existsSync(failed) && Date.now() - statSync(failed).mtimeMs < 24 * 3600 * 1000) {
    say(`not trying pip again: it failed at ${statSync(failed).mtime.toISOString()} (remove ${failed} to try now)`);
    return;
  }
  const venv = join(toolsDir(), 'moto');
  if (run('python3', ['-c', 'import ensurepip, venv']).status !== 0 && isRoot && hasApt) aptInstall(['python3-venv']);
  say(`installing ${MOTO} with pip into ${venv}`);
  mkdirSync(toolsDir(), { recursive: true });
  const created = run('python3', ['-m', 'venv', venv]);
  if (created.status !== 0) {
    say(`python3 -m venv failed: ${created.stderr.trim().split('\n').pop()}`);
    return;
  }
  const pip = run(join(venv, 'bin/pip'), ['install', '-q', '--disable-pip-version-check', '--retries', '1', '--timeout', '20', MOTO], { timeout: 600_000 });
  if (pip.status !== 0) {
    say(`pip could not install moto: ${(pip.stderr || pip.stdout).trim().split('\n').pop()}`);
    writeFileSync(failed, `${(pip.stderr || pip.stdout).trim()}\n`);
    return;
  }
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'moto_server'), `#!/bin/sh\nexec '${join(venv, 'bin/moto_server')}' "$@"\n`);
  chmodSync(join(bin, 'moto_server'), 0o755);
}

/**
 * promtool alone, out of Debian's prometheus package (installing the package would install and start a
 * Prometheus server): apt-get download and dpkg-deb need no root. Into the cache folder's bin.
 */
function installPromtool() {
  if (!hasApt) return;
  const bin = join(toolsDir(), 'bin');
  const work = join(toolsDir(), 'prometheus-deb');
  mkdirSync(work, { recursive: true });
  say('taking promtool out of Debian\'s prometheus package');
  let download = run('apt-get', ['download', '-qq', 'prometheus'], { cwd: work });
  if (download.status !== 0 && isRoot && !aptUpdated) {
    run('apt-get', ['update', '-qq'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    aptUpdated = true;
    download = run('apt-get', ['download', '-qq', 'prometheus'], { cwd: work });
  }
  const deb = run('sh', ['-c', 'ls prometheus_*.deb | head -n 1'], { cwd: work }).stdout.trim();
  if (download.status !== 0 || !deb) {
    say(`apt-get download prometheus failed: ${(download.stderr || download.stdout).trim().split('\n').pop()}`);
    return;
  }
  const extract = run('sh', ['-c', `dpkg-deb --fsys-tarfile '${deb}' | tar -x ./usr/bin/promtool`], { cwd: work });
  if (extract.status !== 0) {
    say(`could not take promtool out of ${deb}: ${extract.stderr.trim().split('\n').pop()}`);
    return;
  }
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'promtool'), readFileSync(join(work, 'usr/bin/promtool')));
  chmodSync(join(bin, 'promtool'), 0o755);
  run('rm', ['-rf', work]);
}

function main() {
  const all = readPrerequisites();
  let missing = all.filter((tool) => !present(tool));
  const install = !checkOnly && process.env.CDA_TEST_INSTALL !== '0';
  if (install && missing.length > 0) {
    const fromApt = [...new Set(missing.filter((tool) => tool.pkg !== 'moto' && tool.pkg !== 'prometheus').map((tool) => tool.pkg))];
    if (fromApt.length > 0 && isRoot && hasApt) {
      say(`installing ${fromApt.join(', ')} with apt-get`);
      aptInstall(fromApt);
    }
    if (missing.some((tool) => tool.pkg === 'moto')) installMoto();
    if (missing.some((tool) => tool.pkg === 'prometheus')) installPromtool();
    missing = all.filter((tool) => !present(tool));
  }
  for (const tool of missing) {
    say(`${tool.command} is missing, so ${strict ? 'CI cannot run' : 'these tests skip'}: ${tool.purpose}. To get it: ${howToGet(tool)}`);
  }
  if (strict && missing.length > 0) {
    say('CI never skips a test: install what is missing (see above)');
    process.exitCode = 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
