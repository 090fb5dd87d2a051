import { execFileSync } from 'node:child_process';
import {
  chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, utimesSync, writeFileSync, rmSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../src/config/agent-config.js';
import { parseVersionFile } from '../../src/service/agent-version.js';
import { AGENT_VERSION } from '../../src/version.js';
import { makeTempDir } from '../helpers/tmp.js';
import { makeFakeAgent, snapshotFor } from './fake-daemon.js';
import { buildTarball, makeFakeSystemctl, makeUpgradeRelease, runInstall, unpackRelease } from './release.js';

let work: { dir: string; cleanup: () => void };
let release: string;

beforeAll(() => {
  work = makeTempDir('cda-install-');
  release = unpackRelease(buildTarball(join(work.dir, 'out')), join(work.dir, 'release'));
});
afterAll(() => work?.cleanup());

/** A fresh temporary root with a recording systemctl; `install(args)` runs install.sh into it. */
function host(name: string) {
  const dir = join(work.dir, name);
  const root = join(dir, 'root');
  mkdirSync(root, { recursive: true });
  const systemctl = makeFakeSystemctl(dir);
  const env = (extra: Record<string, string> = {}) => ({ PATH: `${systemctl.binDir}:${process.env.PATH}`, ...extra });
  const paths = {
    prefix: join(root, 'opt/codedeploy-agent'),
    conf: join(root, 'etc/codedeploy-agent/conf/codedeployagent.yml'),
    onprem: join(root, 'etc/codedeploy-agent/conf/codedeploy.onpremises.yml'),
    unit: join(root, 'etc/systemd/system/codedeploy-agent.service'),
    envFile: join(root, 'etc/default/codedeploy-agent'),
    deploymentRoot: join(root, 'opt/codedeploy-agent/deployment-root'),
    logDir: join(root, 'var/log/aws/codedeploy-agent'),
    tracking: join(root, 'opt/codedeploy-agent/deployment-root/ongoing-deployment'),
  };
  return {
    dir,
    root,
    systemctl,
    paths,
    install: (args: string[] = [], extra: Record<string, string> = {}, from = release) =>
      runInstall(from, ['--root', root, '--systemd', 'yes', ...args], env(extra)),
    installed: (path: string) => join(root, path),
    version: () => readFileSync(join(paths.prefix, '.version'), 'utf8'),
  };
}

const mode = (path: string) => statSync(path).mode & 0o777;

describe('install.sh', () => {
  it('installs fresh: files, links, default config, .version, dirs, and enables + starts the unit', async () => {
    const h = host('fresh');
    const result = await h.install(['--region', 'eu-west-1']);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(result.stdout).toContain(`Installing codedeploy-agent ${AGENT_VERSION}`);
    const p = h.paths;
    expect(h.version()).toBe(`agent_version: ${AGENT_VERSION}\n`);
    expect(parseVersionFile(h.version())).toBe(AGENT_VERSION); // what the commands client sends
    // The single executable, byte for byte, and codedeploy-local a link to it; nothing of the Node.js bundle.
    expect(readFileSync(join(p.prefix, 'bin/codedeploy-agent')).equals(readFileSync(join(release, 'bin/codedeploy-agent')))).toBe(true);
    expect(mode(join(p.prefix, 'bin/codedeploy-agent'))).toBe(0o755);
    expect(readlinkSync(join(p.prefix, 'bin/codedeploy-local'))).toBe('codedeploy-agent');
    expect(readdirSync(p.prefix).sort()).toEqual(['.version', 'bin', 'conf', 'deployment-root', 'state']);
    expect(readlinkSync(h.installed('usr/bin/codedeploy-agent'))).toBe('/opt/codedeploy-agent/bin/codedeploy-agent');
    expect(readlinkSync(h.installed('usr/bin/codedeploy-local'))).toBe('/opt/codedeploy-agent/bin/codedeploy-local');
    // The installed program runs, and answers as codedeploy-local through its link.
    expect(execFileSync(join(p.prefix, 'bin/codedeploy-agent'), ['--version'], { encoding: 'utf8' }).trim()).toBe(AGENT_VERSION);
    expect(execFileSync(join(p.prefix, 'bin/codedeploy-local'), ['--help'], { encoding: 'utf8' })).toContain('Usage: codedeploy-local');

    const { config, warnings } = parseAgentConfig(readFileSync(p.conf, 'utf8'), p.conf);
    expect(warnings).toEqual([]);
    expect(config).toMatchObject({ root_dir: '/opt/codedeploy-agent/deployment-root', log_dir: '/var/log/aws/codedeploy-agent/', pid_dir: '/opt/codedeploy-agent/state/.pid/' });
    expect(mode(p.conf)).toBe(0o644);
    expect(readFileSync(p.envFile, 'utf8')).toMatch(/^AWS_REGION=eu-west-1$/m);
    expect(mode(p.logDir)).toBe(0o750);
    expect(mode(p.deploymentRoot)).toBe(0o755);
    expect(mode(join(p.prefix, 'state/.pid'))).toBe(0o755);
    expect(readFileSync(p.unit, 'utf8')).toBe(readFileSync(join(release, 'systemd/codedeploy-agent.service'), 'utf8'));
    expect(h.systemctl.calls()).toEqual(['daemon-reload', `--root=${h.root} enable codedeploy-agent`, 'start codedeploy-agent']);
  });

  it('is idempotent, keeps an edited config and an existing environment file', async () => {
    const h = host('rerun');
    expect((await h.install()).exitCode).toBe(0);
    const edited = `${readFileSync(h.paths.conf, 'utf8')}:verbose: true\n# mine\n`;
    writeFileSync(h.paths.conf, edited);
    mkdirSync(join(h.paths.envFile, '..'), { recursive: true });
    writeFileSync(h.paths.envFile, 'AWS_REGION=us-east-2\n');
    const bundle = join(h.paths.prefix, 'bin/codedeploy-agent');
    const before = statSync(bundle).mtimeMs;
    writeFileSync(h.systemctl.log, '');

    const result = await h.install(['--region', 'eu-west-1'], { FAKE_SYSTEMD_ACTIVE: 'yes' });
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(result.stdout).toContain(`Re-installing codedeploy-agent ${AGENT_VERSION}`);
    expect(result.stdout).toContain(`Kept your configuration ${h.paths.conf}`);
    expect(result.stdout).toContain('Already up to date');
    expect(result.stderr).toContain(`${h.paths.envFile} exists and is not changed; to use region eu-west-1`);
    expect(readFileSync(h.paths.conf, 'utf8')).toBe(edited);
    expect(readFileSync(h.paths.envFile, 'utf8')).toBe('AWS_REGION=us-east-2\n');
    expect(statSync(bundle).mtimeMs).toBe(before);
    expect(h.systemctl.calls()).toEqual([]); // no reload, no restart
  });

  it('upgrades in place: new files, .version, restart of a running agent; a stopped agent stays stopped', async () => {
    const h = host('upgrade');
    expect((await h.install()).exitCode).toBe(0);
    const next = makeUpgradeRelease(release, join(h.dir, 'release-9.9.9'), '9.9.9');
    writeFileSync(h.systemctl.log, '');
    let result = await h.install([], { FAKE_SYSTEMD_ACTIVE: 'yes' }, next);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(result.stdout).toContain(`Upgrading codedeploy-agent ${AGENT_VERSION} to 9.9.9`);
    expect(result.stdout).toContain('Restarted codedeploy-agent.service on version 9.9.9');
    expect(h.version()).toBe('agent_version: 9.9.9\n');
    expect(readFileSync(join(h.paths.prefix, 'bin/codedeploy-agent'), 'utf8')).toContain('# 9.9.9');
    expect(h.systemctl.calls()).toEqual(['is-active --quiet codedeploy-agent', 'restart codedeploy-agent']);

    // Back to the first version while the agent is stopped: files change, nothing is started (#45).
    writeFileSync(h.systemctl.log, '');
    result = await h.install([], { FAKE_SYSTEMD_ACTIVE: 'no' });
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(result.stdout).toContain('The agent was not running; it was not started');
    expect(h.version()).toBe(`agent_version: ${AGENT_VERSION}\n`);
    expect(h.systemctl.calls()).toEqual(['is-active --quiet codedeploy-agent']);
  });

  it('upgrades an install of the Node.js bundle (the releases before the executable), removing the bundle\'s files', async () => {
    const h = host('from-bundle');
    // What install.sh of the bundle releases left: launchers, the bundle and its chunks, package.json.
    const bin = join(h.paths.prefix, 'bin');
    mkdirSync(join(h.paths.prefix, 'dist/chunks'), { recursive: true });
    mkdirSync(bin, { recursive: true });
    for (const file of ['dist/codedeploy-agent.mjs', 'dist/chunks/run-ABCDEFGH.mjs', 'bin/codedeploy-agent.mjs', 'package.json']) writeFileSync(join(h.paths.prefix, file), '// 0.1\n');
    for (const name of ['codedeploy-agent', 'codedeploy-local']) writeFileSync(join(bin, name), `#!/bin/sh\nexec node '/opt/codedeploy-agent/bin/${name}.mjs' "$@"\n`, { mode: 0o755 });
    writeFileSync(join(h.paths.prefix, '.version'), 'agent_version: 0.0.9\n');
    const result = await h.install([], { FAKE_SYSTEMD_ACTIVE: 'yes' });
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(result.stdout).toContain(`Upgrading codedeploy-agent 0.0.9 to ${AGENT_VERSION}`);
    expect(result.stderr).not.toContain('replacing');
    expect(readdirSync(h.paths.prefix).sort()).toEqual(['.version', 'bin', 'conf', 'deployment-root', 'state']);
    expect(readdirSync(bin).sort()).toEqual(['codedeploy-agent', 'codedeploy-local']);
    expect(readlinkSync(join(bin, 'codedeploy-local'))).toBe('codedeploy-agent');
    expect(h.systemctl.calls()).toContain('restart codedeploy-agent');
  });

  it('waits for an in-flight deployment (tracking file) and goes on once it is gone', async () => {
    const h = host('wait');
    expect((await h.install()).exitCode).toBe(0);
    mkdirSync(h.paths.tracking, { recursive: true });
    const trackingFile = join(h.paths.tracking, 'd-INFLIGHT1');
    writeFileSync(trackingFile, 'WyJob3N0Q29tbWFuZCJd');
    // A tracking file older than 24 h is stale and does not hold anything up (§7.4).
    const staleFile = join(h.paths.tracking, 'd-STALE0001');
    writeFileSync(staleFile, 'x');
    const twoDaysAgo = Date.now() / 1000 - 2 * 86400;
    utimesSync(staleFile, twoDaysAgo, twoDaysAgo);

    const next = makeUpgradeRelease(release, join(h.dir, 'release-9.9.9'), '9.9.9');
    writeFileSync(h.systemctl.log, '');
    const running = h.install(['--wait-timeout', '60'], { FAKE_SYSTEMD_ACTIVE: 'yes' }, next);
    const output: string[] = [];
    running.stdout!.on('data', (chunk) => output.push(String(chunk)));
    await expect.poll(() => output.join(''), { timeout: 10_000 }).toContain('Waiting for the in-flight deployment to finish');
    expect(output.join('')).toContain('deployment d-INFLIGHT1 is in progress');
    await new Promise((r) => setTimeout(r, 1500));
    expect(h.version()).toBe(`agent_version: ${AGENT_VERSION}\n`);
    expect(h.systemctl.calls()).toEqual([]);

    rmSync(trackingFile);
    const result = await running;
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(result.stdout).toContain('No deployment is in flight any more');
    expect(h.version()).toBe('agent_version: 9.9.9\n');
    expect(h.systemctl.calls()).toContain('restart codedeploy-agent');
  });

  it('gives up after --wait-timeout with a clear message and changes nothing', async () => {
    const h = host('timeout');
    expect((await h.install()).exitCode).toBe(0);
    mkdirSync(h.paths.tracking, { recursive: true });
    writeFileSync(join(h.paths.tracking, 'd-INFLIGHT2'), 'x');
    const next = makeUpgradeRelease(release, join(h.dir, 'release-9.9.9'), '9.9.9');
    writeFileSync(h.systemctl.log, '');
    const result = await h.install(['--wait-timeout', '2'], { FAKE_SYSTEMD_ACTIVE: 'yes' }, next);
    expect(result.exitCode).toBe(75);
    expect(result.stderr).toContain('a deployment is still in progress after 2s: deployment d-INFLIGHT2 is in progress');
    expect(result.stderr).toContain('Nothing was changed');
    expect(h.version()).toBe(`agent_version: ${AGENT_VERSION}\n`);
    expect(h.systemctl.calls()).toEqual([]);

    const forced = await h.install(['--force'], { FAKE_SYSTEMD_ACTIVE: 'yes' }, next);
    expect(forced.exitCode, String(forced.all)).toBe(0);
    expect(forced.stderr).toContain('going ahead because of --force');
    expect(h.version()).toBe('agent_version: 9.9.9\n');
  });

  it('waits while the installed agent reports in-flight commands in its status', async () => {
    const h = host('status-wait');
    const fake = makeFakeAgent();
    try {
      // The operator's config points pid_dir at the fake agent's.
      mkdirSync(join(h.paths.conf, '..'), { recursive: true });
      writeFileSync(h.paths.conf, `:pid_dir: '${fake.pidDir}/'\n:root_dir: '/opt/codedeploy-agent/deployment-root'\n`);
      expect((await h.install()).exitCode).toBe(0);
      await fake.start();
      fake.writeSnapshot(snapshotFor(fake.pid!));
      const next = makeUpgradeRelease(release, join(h.dir, 'release-9.9.9'), '9.9.9');
      const result = await h.install(['--wait-timeout', '1'], {}, next);
      expect(result.exitCode).toBe(75);
      expect(result.stderr).toContain('the agent reports in-flight commands: d-ABCDEFGHI AfterInstall');
      fake.writeSnapshot(snapshotFor(fake.pid!, { inFlight: [] }));
      expect((await h.install(['--wait-timeout', '1'], {}, next)).exitCode).toBe(0);
    } finally {
      await fake.cleanup();
    }
  });

  it('installs an on-premises config 0600, and says how to start without systemd', async () => {
    const h = host('onprem');
    const source = join(h.dir, 'onprem.yml');
    writeFileSync(source, '---\nregion: us-east-1\niam_session_arn: arn:aws:sts::111122223333:assumed-role/r/s\naws_credentials_file: /etc/codedeploy-agent/creds\n');
    chmodSync(source, 0o644);
    const result = await runInstall(release, ['--root', h.root, '--systemd', 'no', '--on-premises-config', source], { PATH: `${h.systemctl.binDir}:${process.env.PATH}` });
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(readFileSync(h.paths.onprem, 'utf8')).toBe(readFileSync(source, 'utf8'));
    expect(mode(h.paths.onprem)).toBe(0o600);
    expect(result.stdout).toContain('systemd does not run this host, so nothing was started');
    expect(result.stdout).toContain('nohup /usr/bin/codedeploy-agent run');
    expect(existsSync(h.paths.unit)).toBe(false);
    expect(h.systemctl.calls()).toEqual([]);
  });

  it('--no-start enables without starting; --prefix moves the install and the default paths', async () => {
    const h = host('prefix');
    const result = await h.install(['--no-start', '--prefix', '/usr/local/cda']);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(existsSync(h.installed('usr/local/cda/bin/codedeploy-agent'))).toBe(true);
    expect(readlinkSync(h.installed('usr/bin/codedeploy-agent'))).toBe('/usr/local/cda/bin/codedeploy-agent');
    const { config } = parseAgentConfig(readFileSync(h.paths.conf, 'utf8'), h.paths.conf);
    expect(config.root_dir).toBe('/usr/local/cda/deployment-root');
    expect(existsSync(h.installed('usr/local/cda/deployment-root'))).toBe(true);
    expect(h.systemctl.calls()).toEqual(['daemon-reload', `--root=${h.root} enable codedeploy-agent`]);
    expect(result.stdout).toContain('start it now with: systemctl start codedeploy-agent');
  });

  it('needs no Node.js; refuses a program that does not run here, and AWS\'s Ruby agent in the same prefix', async () => {
    const h = host('refuse');
    // No node anywhere on PATH: the executable carries its own.
    const bare = join(h.dir, 'bare');
    mkdirSync(bare);
    for (const tool of ['sh', 'sed', 'cp', 'mv', 'chmod', 'mkdir', 'cmp', 'ln', 'readlink', 'dirname', 'basename', 'mktemp', 'rm', 'cat', 'tail', 'grep', 'find', 'head', 'date', 'id', 'od', 'tr', 'uname', 'awk', 'printf']) {
      const found = execFileSync('sh', ['-c', `command -v ${tool} || true`], { encoding: 'utf8' }).trim();
      if (found.startsWith('/')) symlinkSync(found, join(bare, tool));
    }
    let result = await runInstall(release, ['--root', h.root, '--systemd', 'no'], { PATH: bare });
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(execFileSync(join(h.paths.prefix, 'bin/codedeploy-agent'), ['--version'], { encoding: 'utf8', env: { PATH: bare } }).trim()).toBe(AGENT_VERSION);

    // A release for another CPU (or a C library too old) does not run: said before anything changes.
    const foreign = join(h.dir, 'foreign');
    cpSync(release, foreign, { recursive: true });
    const elf = readFileSync(join(foreign, 'bin/codedeploy-agent'));
    elf.writeUInt16LE(0xb7, 18); // aarch64
    writeFileSync(join(foreign, 'bin/codedeploy-agent'), elf);
    const other = host('refuse-foreign');
    result = await other.install([], {}, foreign);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('does not run on this');
    expect(result.stderr).toContain('This release is for aarch64');
    expect(result.stderr).toContain('glibc 2.28 or newer');
    expect(existsSync(other.paths.prefix)).toBe(false);

    mkdirSync(join(h.paths.prefix, 'lib'), { recursive: true });
    writeFileSync(join(h.paths.prefix, 'lib/codedeploy-agent.rb'), '# ruby');
    result = await h.install();
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("AWS's CodeDeploy agent (Ruby) is installed in /opt/codedeploy-agent");
    expect(result.stderr).toContain(".deb or .rpm");
  });

  it('--uninstall keeps config, deployment history and logs; --purge removes them', async () => {
    const h = host('uninstall');
    expect((await h.install(['--region', 'us-east-1'])).exitCode).toBe(0);
    const history = join(h.paths.deploymentRoot, 'dg-1/d-OLD/logs/scripts.log');
    mkdirSync(join(history, '..'), { recursive: true });
    writeFileSync(history, 'old run');
    writeFileSync(join(h.paths.logDir, 'codedeploy-agent.log'), 'log');
    writeFileSync(h.paths.onprem, 'region: us-east-1\n');
    writeFileSync(h.systemctl.log, '');

    let result = await h.install(['--uninstall']);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(result.stdout).toContain('Kept the configuration');
    for (const gone of ['usr/bin/codedeploy-agent', 'usr/bin/codedeploy-local', 'opt/codedeploy-agent/bin', 'opt/codedeploy-agent/conf',
      'opt/codedeploy-agent/.version', 'etc/systemd/system/codedeploy-agent.service']) {
      expect(existsSync(h.installed(gone)) || lstatExists(h.installed(gone)), gone).toBe(false);
    }
    for (const kept of [h.paths.conf, h.paths.onprem, h.paths.envFile, history, join(h.paths.logDir, 'codedeploy-agent.log')]) {
      expect(existsSync(kept), kept).toBe(true);
    }
    expect(h.systemctl.calls()).toEqual(['disable --now codedeploy-agent', 'daemon-reload']);

    // Reinstall over the kept state, then purge.
    expect((await h.install()).exitCode).toBe(0);
    result = await h.install(['--purge']);
    expect(result.exitCode, String(result.all)).toBe(0);
    const left = execFileSync('find', [h.root, '-type', 'f', '-o', '-type', 'l'], { encoding: 'utf8' }).trim();
    expect(left).toBe('');
    expect(existsSync(h.paths.prefix)).toBe(false);
    expect(existsSync(h.installed('etc/codedeploy-agent'))).toBe(false);
    expect(existsSync(h.paths.logDir)).toBe(false);
    result = await h.install(['--uninstall']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('is not installed in');
  });

  it('does not purge a deployment root that is not recognisably its own', async () => {
    const h = host('purge-guard');
    mkdirSync(join(h.paths.conf, '..'), { recursive: true });
    writeFileSync(h.paths.conf, ":root_dir: '/srv/apps'\n:log_dir: '/var/log'\n");
    expect((await h.install()).exitCode).toBe(0);
    mkdirSync(h.installed('var/log/other'), { recursive: true });
    writeFileSync(h.installed('var/log/other/syslog'), 'x');
    const result = await h.install(['--purge']);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(result.stderr).toContain(`not removing ${h.installed('srv/apps')}`);
    expect(result.stderr).toContain(`not removing ${h.installed('var/log')}`);
    expect(existsSync(h.installed('var/log/other/syslog'))).toBe(true);
    expect(existsSync(h.installed('srv/apps'))).toBe(true);
  });
});

function lstatExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
