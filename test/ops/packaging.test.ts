import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { list } from 'tar';
import { parseAgentConfig } from '../../src/config/agent-config.js';
import { AGENT_VERSION } from '../../src/version.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { missingTool } from '../helpers/prerequisites.js';
import { makeTempDir } from '../helpers/tmp.js';
import { buildTarball } from './release.js';

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

describe('release tarball', () => {
  it('holds the bundle, launcher, installer, unit, config, package.json and README, and no node_modules', async () => {
    const tmp = makeTempDir('cda-package-');
    try {
      const tarball = buildTarball(tmp.dir);
      expect(tarball).toBe(join(tmp.dir, `codedeploy-agent-${AGENT_VERSION}.tar.gz`));
      const entries: { path: string; mode: number }[] = [];
      await list({ file: tarball, onReadEntry: (entry) => { entries.push({ path: entry.path, mode: entry.mode ?? 0 }); } });
      const top = `codedeploy-agent-${AGENT_VERSION}/`;
      const files = entries.map((e) => e.path).filter((p) => !p.endsWith('/')).map((p) => p.slice(top.length)).sort();
      expect(entries.every((e) => e.path.startsWith(top))).toBe(true);
      expect(files).toEqual(expect.arrayContaining([
        'README.md', 'bin/codedeploy-agent.mjs', 'conf/codedeployagent.yml', 'dist/codedeploy-agent.mjs', 'install.sh',
        'package.json', 'systemd/codedeploy-agent.service',
      ]));
      expect(files.filter((f) => !/^(README\.md|LICENSE|install\.sh|package\.json|bin\/codedeploy-agent\.mjs|dist\/codedeploy-agent\.mjs(\.map)?|dist\/chunks\/[\w-]+\.mjs(\.map)?|systemd\/codedeploy-agent\.service|conf\/codedeployagent\.yml)$/.test(f))).toEqual([]);
      // Exactly the chunks the bundle imports (a content hash names each): no leftovers of older builds.
      const chunks = files.filter((f) => /^dist\/chunks\/.*\.mjs$/.test(f));
      expect(chunks.sort()).toEqual(reachableChunks(join(REPO_ROOT, 'dist')).sort());
      expect(entries.find((e) => e.path === `${top}install.sh`)!.mode & 0o777).toBe(0o755);

      const unpacked = join(tmp.dir, 'x');
      execFileSync('mkdir', ['-p', unpacked]);
      execFileSync('tar', ['-xzf', tarball, '-C', unpacked]);
      const pkg = JSON.parse(readFileSync(join(unpacked, top, 'package.json'), 'utf8'));
      expect(pkg.version).toBe(AGENT_VERSION);
      expect(pkg.dependencies).toBeUndefined();
      // The bundle runs from the release with no node_modules anywhere near it.
      const version = execFileSync(process.execPath, [join(unpacked, top, 'bin/codedeploy-agent.mjs'), '--version'], { encoding: 'utf8', cwd: '/' });
      expect(version.trim()).toBe(AGENT_VERSION);
    } finally {
      tmp.cleanup();
    }
  });
});

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
