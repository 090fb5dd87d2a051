#!/usr/bin/env node
// `npm run package`: the release files, for each architecture (docs/packaging.md):
//
//   release/linux-<arch>/codedeploy-agent                 the single executable (scripts/sea.mjs)
//   release/codedeploy-agent-<v>-linux-<arch>.tar.gz      install.sh, bin/codedeploy-agent, the unit, the
//                                                         default configuration, LICENSE, LICENSE.node, README.md
//   release/codedeploy-agent_<v>-1_<amd64|arm64>.deb      dpkg-deb
//   release/codedeploy-agent-<v>-1.<x86_64|aarch64>.rpm   rpmbuild
//
// The packages hold the same files; their maintainer scripts are put together from install.sh's shared block
// and packaging/maintainer.sh. Each file made is printed on a line of its own.
//
// Options: --arch x64|arm64|all (default all), --formats tar,deb,rpm (default all three), --out-dir DIR
// (default release/). SOURCE_DATE_EPOCH fixes the timestamps inside the archives.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, readdirSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { create } from 'tar';
import { ARCHES, ensureRuntime, ROOT } from './runtime.mjs';
import { buildExecutable } from './sea.mjs';

export const PACKAGE = 'codedeploy-agent';
/**
 * AWS's own packages are also called codedeploy-agent (epoch 0, versions 1.x): the epoch makes ours newer
 * than any of them, so installing ours over AWS's is an upgrade of the same package (docs/packaging.md).
 */
export const EPOCH = 1;
export const REVISION = 1;
const DEB_ARCH = { x64: 'amd64', arm64: 'arm64' };
const RPM_ARCH = { x64: 'x86_64', arm64: 'aarch64' };
const PREFIX = '/opt/codedeploy-agent';
const UNIT_DIR = '/usr/lib/systemd/system';
const DOC_DIR = `/usr/share/doc/${PACKAGE}`;

const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
const description = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).description;

export function releaseFiles(arch, outDir = join(ROOT, 'release')) {
  return {
    executable: join(outDir, `linux-${arch}`, PACKAGE),
    tar: join(outDir, `${PACKAGE}-${version}-linux-${arch}.tar.gz`),
    deb: join(outDir, `${PACKAGE}_${version}-${REVISION}_${DEB_ARCH[arch]}.deb`),
    rpm: join(outDir, `${PACKAGE}-${version}-${REVISION}.${RPM_ARCH[arch]}.rpm`),
  };
}

function epochSeconds() {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  return Number.isFinite(epoch) && epoch > 0 ? epoch : undefined;
}

/** Sets every file's times under `dir` to SOURCE_DATE_EPOCH, when given. */
function touchAll(dir) {
  const epoch = epochSeconds();
  if (epoch === undefined) return;
  const walk = (path) => {
    const stat = lstatSync(path);
    if (stat.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
    if (!stat.isSymbolicLink()) utimesSync(path, epoch, epoch);
  };
  walk(dir);
}

function put(source, target, mode) {
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(source, target);
  chmodSync(target, mode);
}

function link(target, path) {
  mkdirSync(dirname(path), { recursive: true });
  symlinkSync(target, path);
}

/** The tree the packages install, under `top` (also what the tests compare the packages against). */
function packageTree(top, executable, runtime) {
  put(executable, join(top, PREFIX, 'bin', PACKAGE), 0o755);
  link(PACKAGE, join(top, PREFIX, 'bin', 'codedeploy-local'));
  put(join(ROOT, 'conf/codedeployagent.yml'), join(top, PREFIX, 'conf/codedeployagent.yml'), 0o644);
  mkdirSync(join(top, PREFIX), { recursive: true });
  // What the commands client sends as x-amz-codedeploy-agent-version (docs/packaging.md).
  writeFileSync(join(top, PREFIX, '.version'), `agent_version: ${version}\n`, { mode: 0o444 });
  link(`${PREFIX}/bin/${PACKAGE}`, join(top, 'usr/bin', PACKAGE));
  link(`${PREFIX}/bin/codedeploy-local`, join(top, 'usr/bin/codedeploy-local'));
  put(join(ROOT, 'systemd/codedeploy-agent.service'), join(top, UNIT_DIR, `${PACKAGE}.service`), 0o644);
  put(join(ROOT, 'README.md'), join(top, DOC_DIR, 'README.md'), 0o644);
  put(join(ROOT, 'LICENSE'), join(top, DOC_DIR, 'LICENSE'), 0o644);
  put(runtime.license, join(top, DOC_DIR, 'LICENSE.node'), 0o644);
  // The man page (compressed, as both package formats keep them) and the shell completions (`npm run docs`).
  mkdirSync(join(top, 'usr/share/man/man8'), { recursive: true });
  writeFileSync(join(top, 'usr/share/man/man8', `${PACKAGE}.8.gz`), gzipSync(readFileSync(join(ROOT, 'man', `${PACKAGE}.8`)), { level: 9 }), { mode: 0o644 });
  put(join(ROOT, 'completions', `${PACKAGE}.bash`), join(top, 'usr/share/bash-completion/completions', PACKAGE), 0o644);
  link(PACKAGE, join(top, 'usr/share/bash-completion/completions/codedeploy-local'));
  put(join(ROOT, 'completions', `_${PACKAGE}`), join(top, 'usr/share/zsh/vendor-completions', `_${PACKAGE}`), 0o644);
}

/** install.sh's shared block: from its start marker to its end marker. */
function sharedBlock() {
  const text = readFileSync(join(ROOT, 'install.sh'), 'utf8');
  const start = text.indexOf('# ---- shared block');
  const end = text.indexOf('# ---- end of the shared block');
  if (start < 0 || end < 0) throw new Error('install.sh has no shared block markers');
  return text.slice(start, end);
}

/** One maintainer script: settings, the shared block, packaging/maintainer.sh, then `body`. */
export function maintainerScript(kind, body) {
  return [
    '#!/bin/sh',
    `# ${kind} of the ${PACKAGE} package, put together by scripts/package.mjs (docs/packaging.md).`,
    'set -eu',
    'umask 022',
    `PROGRAM=${PACKAGE}`,
    `PREFIX=${PREFIX}`,
    'ROOT=',
    'DEST=$PREFIX',
    'CONF=/etc/codedeploy-agent/conf/codedeployagent.yml',
    `ME="${PACKAGE} ${kind}"`,
    // The same defaults as install.sh; the environment can change them for one run of the package manager.
    'WAIT_TIMEOUT=${CODEDEPLOY_AGENT_WAIT_TIMEOUT:-3600}',
    'FORCE=${CODEDEPLOY_AGENT_FORCE:-no}',
    'POLL_SECONDS=${CODEDEPLOY_INSTALL_POLL_SECONDS:-5}',
    'WAIT_OPTION=CODEDEPLOY_AGENT_WAIT_TIMEOUT',
    "WAIT_ADVICE='Install the package again when it has finished, or set CODEDEPLOY_AGENT_WAIT_TIMEOUT=seconds or CODEDEPLOY_AGENT_FORCE=yes in its environment.'",
    '',
    sharedBlock(),
    readFileSync(join(ROOT, 'packaging/maintainer.sh'), 'utf8'),
    '',
    body,
    '',
  ].join('\n');
}

/** AWS's Debian package shipped its init script (and a misplaced unit) as conffiles: removed on the way in. */
const AWS_CONFFILES = ['/etc/init.d/codedeploy-agent', '/etc/init.d/codedeploy-agent.service'];
const rmConffiles = AWS_CONFFILES.map((file) => `dpkg-maintscript-helper rm_conffile ${file} 1:0~ ${PACKAGE} -- "$@"`).join('\n');

export const DEB_SCRIPTS = {
  preinst: `${rmConffiles}\ncase $1 in\n  upgrade) wait_before_change ;;\nesac`,
  postinst: `${rmConffiles}\ncase $1 in\n  configure) if [ -n "\${2:-}" ]; then configure no; else configure yes; fi ;;\nesac`,
  prerm: 'case $1 in\n  remove) stop_before_remove ;;\nesac',
  postrm: `${rmConffiles}\ncase $1 in\n  purge) purge ;;\n  remove) if systemd_running; then systemctl daemon-reload; fi ;;\nesac`,
};

async function buildDeb(arch, executable, runtime, out) {
  const staging = mkdtempSync(join(tmpdir(), 'codedeploy-agent-deb-'));
  try {
    const top = join(staging, 'root');
    packageTree(top, executable, runtime);
    mkdirSync(join(top, 'DEBIAN'));
    const installedKiB = Math.ceil(Number(execFileSync('du', ['-sk', '--apparent-size', top], { encoding: 'utf8' }).split('\t')[0]));
    writeFileSync(join(top, 'DEBIAN/control'), [
      `Package: ${PACKAGE}`,
      `Version: ${EPOCH}:${version}-${REVISION}`,
      `Architecture: ${DEB_ARCH[arch]}`,
      'Maintainer: codedeploy-agent maintainers <codedeploy-agent@users.noreply.github.com>',
      `Installed-Size: ${installedKiB}`,
      // What the executable links (the official Node.js binary): present on every Debian and Ubuntu.
      'Depends: libc6 (>= 2.28), libstdc++6 (>= 5.2), libgcc-s1 | libgcc1',
      'Section: admin',
      'Priority: optional',
      `Description: ${description}`,
      ' A single executable (Node.js inside): polls AWS CodeDeploy, downloads revisions, installs files and',
      " runs lifecycle hooks. Replaces AWS's codedeploy-agent package in place, keeping its configuration,",
      ' deployment root and service.',
      '',
    ].join('\n'));
    for (const [name, body] of Object.entries(DEB_SCRIPTS)) {
      writeFileSync(join(top, 'DEBIAN', name), maintainerScript(name, body), { mode: 0o755 });
    }
    touchAll(top);
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', top, out], { stdio: ['ignore', 'ignore', 'inherit'] });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

export const RPM_SCRIPTS = {
  // $1: how many versions of the package there will be once this step is done (1 = fresh install or erase).
  pre: 'if [ "$1" -gt 1 ]; then wait_before_change; fi',
  // After the whole transaction (the old package's scripts and file removal included): rpm has no
  // "configure" step of its own, and AWS's package's scripts run after ours otherwise.
  posttrans: 'if [ -f "$PKG_STATE/upgrade" ]; then configure no; else configure yes; fi',
  post: 'if [ "$1" -gt 1 ]; then mkdir -p "$PKG_STATE"; : > "$PKG_STATE/upgrade"; fi',
  preun: 'if [ "$1" -eq 0 ]; then stop_before_remove; fi',
  postun: 'if [ "$1" -eq 0 ] && systemd_running; then systemctl daemon-reload; fi',
};

async function buildRpm(arch, executable, runtime, out) {
  const staging = mkdtempSync(join(tmpdir(), 'codedeploy-agent-rpm-'));
  try {
    const tree = join(staging, 'tree');
    packageTree(tree, executable, runtime);
    touchAll(tree);
    const scripts = Object.entries(RPM_SCRIPTS).map(([name, body]) => {
      const file = join(staging, `${name}.sh`);
      writeFileSync(file, maintainerScript(`%${name}`, body));
      return `%${name} -p /bin/sh -f ${file}`;
    });
    const spec = [
      `Name: ${PACKAGE}`,
      `Epoch: ${EPOCH}`,
      `Version: ${version}`,
      `Release: ${REVISION}`,
      `Summary: ${description}`,
      'License: Apache-2.0 and MIT',
      'URL: https://docs.aws.amazon.com/codedeploy/latest/userguide/codedeploy-agent.html',
      // The executable links glibc and libstdc++ (rpm also finds the symbol versions it needs by itself).
      'Requires: glibc >= 2.28',
      '%description',
      'A single executable (Node.js inside): polls AWS CodeDeploy, downloads revisions, installs files and',
      "runs lifecycle hooks. Replaces AWS's codedeploy-agent package in place, keeping its configuration,",
      'deployment root and service.',
      // The executable carries its program in an ELF note that strip would drop; no debug package either.
      '%global __strip /bin/true',
      '%global __brp_strip /bin/true',
      '%global __brp_strip_static_archive /bin/true',
      '%global __brp_strip_comment_note /bin/true',
      '%global debug_package %{nil}',
      '%global _build_id_links none',
      '%global _binary_payload w6.gzdio',
      // The man page is compressed already, as in the .deb.
      '%global __brp_compress /bin/true',
      '%install',
      `cp -a ${tree}/. %{buildroot}/`,
      ...scripts,
      '%files',
      `%attr(0755,root,root) ${PREFIX}/bin/${PACKAGE}`,
      `${PREFIX}/bin/codedeploy-local`,
      `%attr(0644,root,root) ${PREFIX}/conf/codedeployagent.yml`,
      `%attr(0444,root,root) ${PREFIX}/.version`,
      `%dir ${PREFIX}`,
      `%dir ${PREFIX}/bin`,
      `%dir ${PREFIX}/conf`,
      `/usr/bin/${PACKAGE}`,
      '/usr/bin/codedeploy-local',
      `%attr(0644,root,root) ${UNIT_DIR}/${PACKAGE}.service`,
      `%doc ${DOC_DIR}/README.md`,
      `%attr(0644,root,root) /usr/share/man/man8/${PACKAGE}.8.gz`,
      `%attr(0644,root,root) /usr/share/bash-completion/completions/${PACKAGE}`,
      '/usr/share/bash-completion/completions/codedeploy-local',
      `%attr(0644,root,root) /usr/share/zsh/vendor-completions/_${PACKAGE}`,
      `%license ${DOC_DIR}/LICENSE`,
      `%license ${DOC_DIR}/LICENSE.node`,
      '',
    ].join('\n');
    writeFileSync(join(staging, `${PACKAGE}.spec`), spec);
    const rpmOut = join(staging, 'out');
    const epoch = epochSeconds();
    execFileSync('rpmbuild', [
      '-bb', '--target', `${RPM_ARCH[arch]}-linux`,
      '--define', `_topdir ${join(staging, 'top')}`,
      '--define', `_rpmdir ${rpmOut}`,
      '--define', '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm',
      '--define', '_docdir_fmt %%{NAME}',
      ...(epoch === undefined ? [] : ['--define', `source_date_epoch ${epoch}`, '--define', 'use_source_date_epoch_as_buildtime 1']),
      join(staging, `${PACKAGE}.spec`),
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    copyFileSync(join(rpmOut, `${PACKAGE}-${version}-${REVISION}.${RPM_ARCH[arch]}.rpm`), out);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

async function buildTarball(arch, executable, runtime, out) {
  const staging = mkdtempSync(join(tmpdir(), 'codedeploy-agent-package-'));
  try {
    const name = `${PACKAGE}-${version}-linux-${arch}`;
    const top = join(staging, name);
    put(join(ROOT, 'install.sh'), join(top, 'install.sh'), 0o755);
    put(executable, join(top, 'bin', PACKAGE), 0o755);
    put(join(ROOT, 'systemd/codedeploy-agent.service'), join(top, 'systemd/codedeploy-agent.service'), 0o644);
    put(join(ROOT, 'conf/codedeployagent.yml'), join(top, 'conf/codedeployagent.yml'), 0o644);
    put(join(ROOT, 'README.md'), join(top, 'README.md'), 0o644);
    put(join(ROOT, 'LICENSE'), join(top, 'LICENSE'), 0o644);
    put(runtime.license, join(top, 'LICENSE.node'), 0o644);
    const epoch = epochSeconds();
    await create({ gzip: true, file: out, cwd: staging, portable: true, ...(epoch === undefined ? {} : { mtime: new Date(epoch * 1000) }) }, [name]);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

export async function packageRelease({ arches = ARCHES, formats = ['tar', 'deb', 'rpm'], outDir = join(ROOT, 'release'), log = () => {} } = {}) {
  mkdirSync(outDir, { recursive: true });
  const made = [];
  for (const arch of arches) {
    const files = releaseFiles(arch, outDir);
    const runtime = ensureRuntime(arch, { log });
    const executable = await buildExecutable({ arch, out: files.executable, log });
    made.push(executable);
    if (formats.includes('tar')) { await buildTarball(arch, executable, runtime, files.tar); made.push(files.tar); }
    if (formats.includes('deb')) { await buildDeb(arch, executable, runtime, files.deb); made.push(files.deb); }
    if (formats.includes('rpm')) { await buildRpm(arch, executable, runtime, files.rpm); made.push(files.rpm); }
    log(`${arch}: ${made.filter((f) => f.includes(arch) || f.includes(DEB_ARCH[arch]) || f.includes(RPM_ARCH[arch])).map((f) => `${f} (${(statSync(f).size / 2 ** 20).toFixed(0)} MiB)`).join(', ')}`);
  }
  return made;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { arch: { type: 'string', default: 'all' }, formats: { type: 'string', default: 'tar,deb,rpm' }, 'out-dir': { type: 'string' } } });
  const arches = values.arch === 'all' ? ARCHES : values.arch.split(',');
  const formats = values.formats.split(',');
  const outDir = resolve(values['out-dir'] ?? join(ROOT, 'release'));
  const made = await packageRelease({ arches, formats, outDir, log: (line) => process.stderr.write(`package: ${line}\n`) });
  process.stdout.write(`${made.join('\n')}\n`);
}
