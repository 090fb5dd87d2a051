import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { list } from 'tar';
import { parseAgentConfig } from '../../src/config/agent-config.js';
import { AGENT_VERSION } from '../../src/version.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { findTestTool, missingTool } from '../helpers/prerequisites.js';
import { makeTempDir } from '../helpers/tmp.js';
import { buildRelease } from './release.js';

/** A tool the test needs: in CI its absence fails the test; elsewhere the test says why it skips. */
const requireTool = (command: string): boolean => missingTool(command) === undefined;

const UNIT = join(REPO_ROOT, 'systemd', 'codedeploy-agent.service');

describe('install.sh', () => {
  it('is shellcheck-clean (also as a POSIX sh script for dash)', () => {
    if (!requireTool('shellcheck')) return;
    for (const shell of ['sh', 'dash']) {
      const result = spawnSync('shellcheck', ['-s', shell, join(REPO_ROOT, 'install.sh')], { encoding: 'utf8' });
      expect(result.stdout + result.stderr, `shellcheck -s ${shell}`).toBe('');
      expect(result.status).toBe(0);
    }
  });
});

describe('systemd unit', () => {
  let tmp: { dir: string; cleanup: () => void };
  beforeAll(() => { tmp = makeTempDir('cda-unit-'); });
  afterAll(() => tmp.cleanup());

  /** systemd-analyze verify on a copy whose ExecStart names an executable that exists here. */
  function verify(text: string) {
    const copy = join(tmp.dir, 'codedeploy-agent.service');
    writeFileSync(copy, text.replace(/^ExecStart=\/usr\/bin\/codedeploy-agent /m, `ExecStart=${process.execPath} `));
    return spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
  }

  it('passes systemd-analyze verify with nothing on stderr', () => {
    if (!requireTool('systemd-analyze')) return;
    const result = verify(readFileSync(UNIT, 'utf8'));
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    // The check is real: a bad key is reported.
    expect(verify(`${readFileSync(UNIT, 'utf8')}\n[Service]\nNoSuchSetting=1\n`).stderr).toContain('NoSuchSetting');
  });

  it('orders after the network in [Unit], restarts with a back-off, stops gracefully and keeps hook children alive', () => {
    const text = readFileSync(UNIT, 'utf8');
    const section = (name: string) => {
      const start = text.search(new RegExp(`^\\[${name}\\]$`, 'm'));
      const next = text.indexOf('\n[', start + 1);
      return text.slice(start, next === -1 ? undefined : next).split('\n').filter((line) => !line.startsWith('#'));
    };
    const unit = section('Unit');
    const service = section('Service');
    expect(unit).toContain('After=network-online.target');
    expect(unit).toContain('Wants=network-online.target');
    expect(unit.some((line) => line.startsWith('StartLimitIntervalSec='))).toBe(true);
    expect(unit.some((line) => line.startsWith('StartLimitBurst='))).toBe(true);
    expect(service).toContain('Type=simple');
    expect(service).toContain('ExecStart=/usr/bin/codedeploy-agent run');
    expect(service).toContain('ExecReload=/bin/kill -HUP $MAINPID');
    expect(service).toContain('Restart=on-failure');
    expect(service.some((line) => /^RestartSec=\d+s?$/.test(line))).toBe(true);
    expect(service).toContain('KillMode=process');
    expect(service).toContain('StandardError=journal');
    // TimeoutStopSec matches the default kill_agent_max_wait_time_seconds.
    const { config } = parseAgentConfig('', 'defaults');
    expect(service).toContain(`TimeoutStopSec=${config.kill_agent_max_wait_time_seconds}`);
    // The KillMode choice is explained next to it.
    expect(text).toMatch(/#[^\n]*#169[\s\S]*KillMode=process/);
    expect(section('Install')).toContain('WantedBy=multi-user.target');
  });
});

describe('default configuration', () => {
  it('holds the anchor\'s shipped keys in :key: form and parses without warnings', () => {
    const file = join(REPO_ROOT, 'conf', 'codedeployagent.yml');
    const text = readFileSync(file, 'utf8');
    for (const key of ['log_aws_wire', 'log_dir', 'pid_dir', 'program_name', 'root_dir', 'verbose', 'wait_between_runs', 'proxy_uri', 'max_revisions', 'disable_imds_v1']) {
      expect(text).toMatch(new RegExp(`^:${key}:`, 'm'));
    }
    for (const added of ['log_format', 'log_retention_days', 'kill_agent_max_wait_time_seconds']) {
      expect(text).toMatch(new RegExp(`^# :${added}:`, 'm'));
    }
    const { config, warnings } = parseAgentConfig(text, file);
    expect(warnings).toEqual([]);
    expect(config).toMatchObject({
      log_dir: '/var/log/aws/codedeploy-agent/', pid_dir: '/opt/codedeploy-agent/state/.pid/',
      root_dir: '/opt/codedeploy-agent/deployment-root', wait_between_runs: 1, max_revisions: 5, proxy_uri: undefined,
    });
    // Every commented key parses too when uncommented, with the default it claims.
    const uncommented = text.split('\n').map((line) => line.replace(/^# (:[a-z_0-9]+:)/, '$1')).join('\n');
    const all = parseAgentConfig(uncommented, file);
    expect(all.warnings).toEqual([]);
    expect(all.config).toMatchObject({ log_format: 'text', log_retention_days: 7, kill_agent_max_wait_time_seconds: 7200, max_concurrent_commands: 16 });
  });
});

describe('release files', () => {
  let tmp: { dir: string; cleanup: () => void };
  let made: string[];
  // Without dpkg-deb or rpmbuild (outside CI) those packages are not made and their tests say so.
  const formats = ['tar', ...(findTestTool('dpkg-deb') !== undefined ? ['deb'] : []), ...(findTestTool('rpmbuild') !== undefined ? ['rpm'] : [])];
  beforeAll(() => {
    tmp = makeTempDir('cda-package-');
    made = buildRelease(tmp.dir, formats);
  }, 600_000);
  afterAll(() => tmp?.cleanup());
  const file = (suffix: string) => made.find((f) => f.endsWith(suffix))!;
  const VERSION = AGENT_VERSION;
  /** What both packages install, with modes (links as `-> target`). */
  const PACKAGE_FILES = [
    './opt/codedeploy-agent/.version 0444',
    './opt/codedeploy-agent/bin/codedeploy-agent 0755',
    './opt/codedeploy-agent/bin/codedeploy-local -> codedeploy-agent',
    './opt/codedeploy-agent/conf/codedeployagent.yml 0644',
    './usr/bin/codedeploy-agent -> /opt/codedeploy-agent/bin/codedeploy-agent',
    './usr/bin/codedeploy-local -> /opt/codedeploy-agent/bin/codedeploy-local',
    './usr/lib/systemd/system/codedeploy-agent.service 0644',
    './usr/share/bash-completion/completions/codedeploy-agent 0644',
    './usr/share/bash-completion/completions/codedeploy-local -> codedeploy-agent',
    './usr/share/doc/codedeploy-agent/LICENSE 0644',
    './usr/share/doc/codedeploy-agent/LICENSE.node 0644',
    './usr/share/doc/codedeploy-agent/README.md 0644',
    './usr/share/man/man8/codedeploy-agent.8.gz 0644',
    './usr/share/zsh/vendor-completions/_codedeploy-agent 0644',
  ];

  it('names the files predictably: release/linux-x64/codedeploy-agent, the tarball, the .deb and the .rpm', () => {
    expect(made.map((f) => relative(tmp.dir, f)).sort()).toEqual([
      `codedeploy-agent-${VERSION}-1.x86_64.rpm`, `codedeploy-agent-${VERSION}-linux-x64.tar.gz`, `codedeploy-agent_${VERSION}-1_amd64.deb`, 'linux-x64/codedeploy-agent',
    ].filter((name) => (formats.includes('rpm') || !name.endsWith('.rpm')) && (formats.includes('deb') || !name.endsWith('.deb'))));
  });

  it('the tarball holds the executable, install.sh, the unit, the default configuration, the licences and README, nothing else', async () => {
    const tarball = file('.tar.gz');
    const entries: { path: string; mode: number }[] = [];
    await list({ file: tarball, onReadEntry: (entry) => { entries.push({ path: entry.path, mode: entry.mode ?? 0 }); } });
    const top = `codedeploy-agent-${VERSION}-linux-x64/`;
    expect(entries.every((e) => e.path.startsWith(top))).toBe(true);
    const files = entries.filter((e) => !e.path.endsWith('/')).map((e) => `${e.path.slice(top.length)} ${(e.mode & 0o777).toString(8)}`).sort();
    expect(files).toEqual([
      'LICENSE 644', 'LICENSE.node 644', 'README.md 644', 'bin/codedeploy-agent 755', 'conf/codedeployagent.yml 644', 'install.sh 755', 'systemd/codedeploy-agent.service 644',
    ]);
    const unpacked = join(tmp.dir, 'x');
    execFileSync('mkdir', ['-p', unpacked]);
    execFileSync('tar', ['-xzf', tarball, '-C', unpacked]);
    // The executable runs with nothing around it: no Node.js on PATH, no node_modules.
    const version = execFileSync(join(unpacked, top, 'bin/codedeploy-agent'), ['--version'], { encoding: 'utf8', cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    expect(version.trim()).toBe(AGENT_VERSION);
    expect(readFileSync(join(unpacked, top, 'LICENSE.node'), 'utf8')).toContain('Node.js is licensed for use as follows');
  });

  it('the .deb: metadata, files and maintainer scripts as dpkg-deb reads them', () => {
    if (!requireTool('dpkg-deb')) return;
    const deb = file('.deb');
    const field = (name: string) => execFileSync('dpkg-deb', ['--field', deb, name], { encoding: 'utf8' }).trim();
    expect(field('Package')).toBe('codedeploy-agent');
    // Epoch 1: newer than any of AWS's codedeploy-agent packages, so installing it replaces theirs.
    expect(field('Version')).toBe(`1:${VERSION}-1`);
    expect(field('Architecture')).toBe('amd64');
    expect(field('Depends')).toContain('libc6 (>= 2.28)');
    const info = execFileSync('dpkg-deb', ['--info', deb], { encoding: 'utf8' });
    for (const script of ['preinst', 'postinst', 'prerm', 'postrm']) expect(info).toMatch(new RegExp(`\\d+ bytes,\\s+\\d+ lines\\s+\\*\\s+${script}\\s+#!/bin/sh`));
    // No conffiles: the configuration in /etc is made by postinst when absent, so dpkg never asks about it.
    expect(info).not.toContain('conffiles');
    const contents = execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8' }).trim().split('\n')
      .filter((line) => !line.startsWith('d'))
      .map((line) => {
        const [perm, , , , , ...rest] = line.split(/\s+/);
        const path = rest.join(' ');
        return perm.startsWith('l') ? path : `${path} 0${modeOf(perm)}`;
      }).sort();
    expect(contents).toEqual(PACKAGE_FILES);
    expect(contents.some((line) => line.includes('/etc/'))).toBe(false);

    const control = join(tmp.dir, 'deb-control');
    execFileSync('dpkg-deb', ['--control', deb, control]);
    const scripts = Object.fromEntries(['preinst', 'postinst', 'prerm', 'postrm'].map((name) => [name, readFileSync(join(control, name), 'utf8')]));
    for (const [name, text] of Object.entries(scripts)) {
      expect(spawnSync('sh', ['-n', join(control, name)]).status, name).toBe(0);
      if (findTestTool('shellcheck')) expect(spawnSync('shellcheck', ['-s', 'sh', '-e', 'SC2034', join(control, name)], { encoding: 'utf8' }).stdout, name).toBe('');
      // Never around systemd (aws-codedeploy-agent #131): no service(8), no /etc/init.d.
      expect(text, name).not.toMatch(/^\s*(service|invoke-rc\.d|\/etc\/init\.d\/)/m);
    }
    expect(scripts.preinst).toMatch(/upgrade\) wait_before_change/);
    expect(scripts.postinst).toMatch(/configure\) if \[ -n "\$\{2:-\}" \]; then configure no; else configure yes; fi/);
    expect(scripts.prerm).toMatch(/remove\) stop_before_remove/);
    expect(scripts.prerm).not.toMatch(/upgrade\)/);
    expect(scripts.postrm).toMatch(/purge\) purge/);
    // Starting goes through systemctl, and only when systemd runs the host.
    expect(scripts.postinst).toContain('systemd_running() { [ -d /run/systemd/system ]');
    expect(scripts.postinst).toContain('systemctl restart "$PROGRAM"');
    // AWS's init script (a conffile of its package) is taken away properly on the way in.
    expect(scripts.postinst).toContain('dpkg-maintscript-helper rm_conffile /etc/init.d/codedeploy-agent 1:0~ codedeploy-agent -- "$@"');
  });

  it('the .rpm: metadata, the same files and its scriptlets as rpm reads them', () => {
    if (!requireTool('rpmbuild')) return;
    const rpmFile = file('.rpm');
    const query = (...args: string[]) => execFileSync('rpm', ['-qp', ...args, rpmFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(query('--qf', '%{NAME} %{EPOCH}:%{VERSION}-%{RELEASE} %{ARCH}')).toBe(`codedeploy-agent 1:${VERSION}-1 x86_64`);
    const dump = query('--dump').trim().split('\n').map((line) => line.split(' '));
    const files = dump.map(([path, , , , mode, , , , , , linkto]) => {
      const type = Number.parseInt(mode, 8) & 0o170000;
      if (type === 0o120000) return `.${path} -> ${linkto}`;
      if (type === 0o040000) return undefined;
      return `.${path} 0${(Number.parseInt(mode, 8) & 0o777).toString(8)}`;
    }).filter((f): f is string => f !== undefined).sort();
    expect(files).toEqual(PACKAGE_FILES);
    const requires = query('--requires');
    expect(requires).toContain('glibc >= 2.28');
    expect(requires).toContain('libstdc++.so.6');
    const scripts = query('--scripts');
    for (const scriptlet of ['preinstall', 'postinstall', 'preuninstall', 'postuninstall', 'posttrans']) expect(scripts).toContain(`${scriptlet} scriptlet (using /bin/sh)`);
    expect(scripts).toContain('if [ "$1" -gt 1 ]; then wait_before_change; fi');
    expect(scripts).toContain('if [ "$1" -eq 0 ]; then stop_before_remove; fi');
    expect(scripts).toContain('if [ -f "$PKG_STATE/upgrade" ]; then configure no; else configure yes; fi');
    expect(scripts).not.toMatch(/^\s*(service|\/etc\/init\.d\/)/m);
    // The payload's executable is the one built, unstripped (its program is an ELF note strip would drop).
    const extracted = join(tmp.dir, 'rpm-x');
    execFileSync('mkdir', ['-p', extracted]);
    // rpm2archive (part of rpm) turns the payload into a tar archive.
    execFileSync('sh', ['-c', `rpm2archive - < '${rpmFile}' | tar -xzf -`], { cwd: extracted });
    expect(readFileSync(join(extracted, 'opt/codedeploy-agent/bin/codedeploy-agent')).equals(readFileSync(file('linux-x64/codedeploy-agent')))).toBe(true);
  });
});

describe('arm64 release files', () => {
  let tmp: { dir: string; cleanup: () => void };
  let made: string[];
  const formats = ['tar', ...(findTestTool('dpkg-deb') !== undefined ? ['deb'] : []), ...(findTestTool('rpmbuild') !== undefined ? ['rpm'] : [])];
  beforeAll(() => {
    tmp = makeTempDir('cda-package-arm64-');
    made = execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/package.mjs'), '--arch', 'arm64', '--formats', formats.join(','), '--out-dir', tmp.dir], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
    }).trim().split('\n');
  }, 600_000);
  afterAll(() => tmp?.cleanup());
  const aarch64 = (bytes: Buffer) => bytes.readUInt32BE(0) === 0x7f454c46 && bytes.readUInt16LE(18) === 0xb7;

  it('hold the aarch64 executable, under arm64 / aarch64 names and metadata', async () => {
    const executable = made.find((f) => f.endsWith('linux-arm64/codedeploy-agent'))!;
    expect(aarch64(readFileSync(executable))).toBe(true);
    const tarball = made.find((f) => f.endsWith(`codedeploy-agent-${AGENT_VERSION}-linux-arm64.tar.gz`))!;
    const unpacked = join(tmp.dir, 'x');
    execFileSync('mkdir', ['-p', unpacked]);
    execFileSync('tar', ['-xzf', tarball, '-C', unpacked]);
    expect(readFileSync(join(unpacked, `codedeploy-agent-${AGENT_VERSION}-linux-arm64/bin/codedeploy-agent`)).equals(readFileSync(executable))).toBe(true);
    if (formats.includes('deb')) {
      const deb = made.find((f) => f.endsWith(`codedeploy-agent_${AGENT_VERSION}-1_arm64.deb`))!;
      expect(execFileSync('dpkg-deb', ['--field', deb, 'Architecture'], { encoding: 'utf8' }).trim()).toBe('arm64');
      const payload = execFileSync('dpkg-deb', ['--fsys-tarfile', deb], { maxBuffer: 512 * 2 ** 20 });
      const extracted = join(tmp.dir, 'deb-x');
      execFileSync('mkdir', ['-p', extracted]);
      execFileSync('tar', ['-xf', '-', '-C', extracted, './opt/codedeploy-agent/bin/codedeploy-agent'], { input: payload });
      expect(readFileSync(join(extracted, 'opt/codedeploy-agent/bin/codedeploy-agent')).equals(readFileSync(executable))).toBe(true);
    }
    if (formats.includes('rpm')) {
      const rpmFile = made.find((f) => f.endsWith(`codedeploy-agent-${AGENT_VERSION}-1.aarch64.rpm`))!;
      expect(execFileSync('rpm', ['-qp', '--qf', '%{ARCH}', rpmFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).toBe('aarch64');
      expect(execFileSync('rpm', ['-qp', '--requires', rpmFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).toContain('ld-linux-aarch64.so.1');
    }
  });
});

function modeOf(perm: string): string {
  const bits = perm.slice(1).split('');
  let value = 0;
  for (let i = 0; i < 9; i++) if (bits[i] !== '-') value |= 1 << (8 - i);
  return value.toString(8);
}

/** Chunk files an entry imports (statically or on demand), directly or through other chunks, as `dist/chunks/x.mjs`. */
function reachableChunks(distDir: string, entry = join(distDir, 'codedeploy-agent.mjs'), staticOnly = false): string[] {
  const pattern = staticOnly
    ? /(?:^|[\s;])(?:import|export)\b[^;"(]*?"(\.{1,2}\/[^"]+\.mjs)"/g
    : /\b(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+\.mjs)"/g;
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const match of readFileSync(file, 'utf8').matchAll(pattern)) queue.push(resolve(dirname(file), match[1]));
  }
  seen.delete(entry);
  return [...seen].map((file) => relative(dirname(distDir), file));
}

describe('the bundle', () => {
  it('does not make an idle `run` parse S3, GitHub, archive, PKCS7, engine or control-plane code (issue 4: load them when needed)', () => {
    const dist = join(REPO_ROOT, 'dist');
    const entry = join(dist, 'codedeploy-agent.mjs');
    const entryText = readFileSync(entry, 'utf8');
    // main loads one subcommand's module; `run` and what it imports statically is what an idle agent parses.
    const runChunk = /import\("(\.\/chunks\/run-[\w-]+\.mjs)"\)/.exec(entryText)?.[1];
    expect(runChunk, 'main imports run on demand').toBeDefined();
    const idleFiles = [entry, join(dist, runChunk!), ...[entry, join(dist, runChunk!)].flatMap((f) => reachableChunks(dist, f, true).map((c) => join(REPO_ROOT, c)))];
    // esbuild heads each module with a `// <path>` comment.
    const modules = new Set(idleFiles.flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/^\/\/ ((?:node_modules\/(?:@[^/\n]+\/)?[^/\n]+)|src\/[^\n]+)/gm)].map((m) => m[1])));
    expect(modules).toContain('src/agent/daemon.ts');
    expect(modules).toContain('src/service/commands-client.ts');
    const unwanted = [...modules].filter((m) => /^node_modules\/(@aws-sdk\/client-s3|@aws-sdk\/client-codedeploy|@aws-sdk\/credential-providers|pkijs|asn1js|yauzl|tar|execa|prom-client)$/.test(m)
      || /^src\/(revision|archive|install|hooks|appspec)\/|^src\/deployment\/(engine|envelope|spec|download-bundle)\.ts|^src\/cli\/(deploy|register|validate)\.ts|^src\/agent\/metrics(-server)?\.ts/.test(m));
    expect(unwanted).toEqual([]);
    // The signing packages take from @smithy/core only the files that define what they use
    // (scripts/narrow-smithy-core.mjs): none of its schema, client or protocol code.
    const smithyCore = idleFiles.flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/^\/\/ node_modules\/@smithy\/core\/dist-es\/submodules\/([^\n]+)/gm)].map((m) => m[1]));
    expect(smithyCore).toContain('serde/util-hex-encoding/hex-encoding.js');
    expect(smithyCore.filter((file) => /^(schema|client|cbor|event-streams)\/|^protocols\/(?!util-uri-escape\/|protocol-http\/)/.test(file))).toEqual([]);
  });
});

describe('README', () => {
  it('keeps the two set-up commands and documents every install.sh option and every key this agent adds', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('npm ci && npm run demo');
    expect(readme).toContain('npm ci && npm test');
    const usage = execFileSync('sh', [join(REPO_ROOT, 'install.sh'), '--help'], { encoding: 'utf8' });
    const options = [...usage.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]);
    expect(options).toContain('--region');
    for (const option of options) expect(readme, option).toContain(`\`${option}`);
    const conf = readFileSync(join(REPO_ROOT, 'conf', 'codedeployagent.yml'), 'utf8');
    const added = [...conf.slice(conf.indexOf('# ---- keys this agent adds')).matchAll(/^# :([a-z_0-9]+):/gm)].map((m) => m[1]);
    expect(added).toContain('log_format');
    for (const key of added) expect(readme, key).toContain(`| \`${key}\` |`);
  });
});
