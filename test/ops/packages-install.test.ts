/**
 * The .deb and .rpm installed for real, with dpkg and rpm and their maintainer scripts, into a throw-away
 * copy of this machine (overlay-host.ts): fresh install, upgrade, remove and purge, an image build, and
 * the move from AWS's own codedeploy-agent package.
 *
 * AWS's package is played by a stand-in built here with what is known of it (docs/packaging.md): named
 * codedeploy-agent, version 1.x without an epoch, its Ruby program under /opt/codedeploy-agent (bin/, lib/),
 * /etc/codedeploy-agent/conf/codedeployagent.yml and /etc/init.d/codedeploy-agent as configuration files
 * (conffiles in the .deb, %config(noreplace) in the .rpm), and .version.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_VERSION } from '../../src/version.js';
import { makeTempDir } from '../helpers/tmp.js';
import { OverlayHost } from './overlay-host.js';
import { buildRelease } from './release.js';

const missing = OverlayHost.missingReason()
  ?? (['dpkg-deb', 'rpmbuild'].find((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) ? 'dpkg-deb or rpmbuild is not installed (apt-get install rpm)' : undefined);
if (missing) {
  if (process.env.CI) throw new Error(`${missing}, and CI must run the package installation tests`);
  console.warn(`skipped the package installation tests: ${missing}`);
}

const CONF = '/etc/codedeploy-agent/conf/codedeployagent.yml';
const EDITED = `:log_dir: '/var/log/aws/codedeploy-agent/'\n:pid_dir: '/opt/codedeploy-agent/state/.pid/'\n:root_dir: '/opt/codedeploy-agent/deployment-root'\n:verbose: true\n# edited by the operator\n`;
const HISTORY = '/opt/codedeploy-agent/deployment-root/dg-1/d-OLD00001/logs/scripts.log';
const TRACKING = '/opt/codedeploy-agent/deployment-root/ongoing-deployment/d-INFLIGHT1';
const AWS_VERSION_FILE = 'agent_version: OFFICIAL_1.7.1-110_deb\n';

let shared: { dir: string; cleanup: () => void };
let deb: string;
let rpm: string;

/** AWS's package's files (as the stand-in has them), in `top`. */
function awsTree(top: string): void {
  const put = (path: string, text: string, mode = 0o644) => {
    mkdirSync(join(top, path, '..'), { recursive: true });
    writeFileSync(join(top, path), text);
    chmodSync(join(top, path), mode);
  };
  put('opt/codedeploy-agent/bin/codedeploy-agent', '#!/bin/sh\n# stand-in for AWS\'s Ruby launcher\nexit 3\n', 0o755);
  put('opt/codedeploy-agent/lib/codedeploy-agent.rb', '# Ruby\n');
  put('opt/codedeploy-agent/lib/instance_agent/agent.rb', '# Ruby\n');
  put('opt/codedeploy-agent/.version', AWS_VERSION_FILE);
  put('etc/codedeploy-agent/conf/codedeployagent.yml', ":log_dir: '/var/log/aws/codedeploy-agent/'\n:root_dir: '/opt/codedeploy-agent/deployment-root'\n:verbose: false\n");
  put('etc/init.d/codedeploy-agent', '#!/bin/sh\n# stand-in for AWS\'s init script\n/opt/codedeploy-agent/bin/codedeploy-agent "$@"\n', 0o755);
}

function awsDeb(dir: string): string {
  const top = join(dir, 'aws-deb');
  awsTree(top);
  mkdirSync(join(top, 'DEBIAN'));
  writeFileSync(join(top, 'DEBIAN/control'), 'Package: codedeploy-agent\nVersion: 1.7.1-110\nArchitecture: all\nMaintainer: stand-in <none@example.com>\nDescription: stand-in for AWS\'s package\n');
  writeFileSync(join(top, 'DEBIAN/conffiles'), `${CONF}\n/etc/init.d/codedeploy-agent\n`);
  const file = join(dir, 'codedeploy-agent_1.7.1-110_all.deb');
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', top, file], { stdio: 'ignore' });
  return file;
}

function awsRpm(dir: string): string {
  const top = join(dir, 'aws-rpm-tree');
  awsTree(top);
  const spec = join(dir, 'aws.spec');
  writeFileSync(spec, [
    'Name: codedeploy-agent', 'Version: 1.7.1', 'Release: 110', 'Summary: stand-in for AWS\'s package', 'License: none', 'BuildArch: noarch',
    '%description', 'stand-in', '%global __brp_strip /bin/true', '%install', `cp -a ${top}/. %{buildroot}/`,
    '%files', '/opt/codedeploy-agent/bin/codedeploy-agent', '/opt/codedeploy-agent/lib', '/opt/codedeploy-agent/.version',
    `%config(noreplace) ${CONF}`, '%config(noreplace) /etc/init.d/codedeploy-agent', '',
  ].join('\n'));
  execFileSync('rpmbuild', ['-bb', '--define', `_topdir ${join(dir, 'aws-rpm-top')}`, '--define', `_rpmdir ${dir}`, '--define', '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm', spec], { stdio: 'ignore' });
  return join(dir, 'codedeploy-agent-1.7.1-110.noarch.rpm');
}

beforeAll(() => {
  if (missing) return;
  shared = makeTempDir('cda-packages-');
  chmodSync(shared.dir, 0o755);
  const made = buildRelease(shared.dir, ['deb', 'rpm']);
  deb = made.find((f) => f.endsWith('.deb'))!.slice(shared.dir.length + 1);
  rpm = made.find((f) => f.endsWith('.rpm'))!.slice(shared.dir.length + 1);
  awsDeb(shared.dir);
  awsRpm(shared.dir);
}, 600_000);
afterAll(() => shared?.cleanup());

/** A host with a history and an in-flight marker helper. */
async function seedHistory(host: OverlayHost): Promise<void> {
  await host.write(HISTORY, 'an old deployment\n');
  await host.write('/var/log/aws/codedeploy-agent/codedeploy-agent.log', 'old log\n');
}

describe.skipIf(missing !== undefined)('the .deb, installed with dpkg', () => {
  const hosts: OverlayHost[] = [];
  const host = () => { const h = new OverlayHost('cda-deb-host-', shared.dir); hosts.push(h); return h; };
  afterAll(() => { for (const h of hosts) h.cleanup(); });

  it('replaces AWS\'s package in place: its edited configuration, deployment root and service are kept and used, without a prompt', async () => {
    const h = host();
    await h.bootSystemd(true);
    let result = await h.run('dpkg -i /shared/codedeploy-agent_1.7.1-110_all.deb');
    expect(result.exitCode, String(result.all)).toBe(0);
    await h.write(CONF, EDITED);
    await seedHistory(h);

    // A deployment in flight: the upgrade waits for it, and with a short wait gives up changing nothing.
    await h.write(TRACKING, 'WyJob3N0Q29tbWFuZCJd');
    result = await h.run(`dpkg -i /shared/${deb}`, { CODEDEPLOY_AGENT_WAIT_TIMEOUT: '1' });
    expect(result.exitCode).not.toBe(0);
    expect(String(result.all)).toContain('deployment d-INFLIGHT1 is in progress');
    expect(String(result.all)).toContain('Nothing was changed');
    expect((await h.run("dpkg-query -W -f='${Version}' codedeploy-agent")).stdout).toBe('1.7.1-110');
    expect(await h.read('/opt/codedeploy-agent/.version')).toBe(AWS_VERSION_FILE);
    await h.run(`rm -f ${TRACKING}`);

    await h.clearCalls();
    result = await h.run(`dpkg -i /shared/${deb}`);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(String(result.all)).not.toMatch(/Configuration file .* Modified/);
    expect((await h.run("dpkg-query -W -f='${Version}' codedeploy-agent")).stdout).toBe(`1:${AGENT_VERSION}-1`);
    expect(await h.read(CONF)).toBe(EDITED);
    expect(await h.read(HISTORY)).toBe('an old deployment\n');
    expect(await h.exists('/opt/codedeploy-agent/lib')).toBe(false);
    expect(await h.exists('/etc/init.d/codedeploy-agent')).toBe(false);
    expect(await h.read('/opt/codedeploy-agent/.version')).toBe(`agent_version: ${AGENT_VERSION}\n`);
    expect(String((await h.run('/usr/bin/codedeploy-agent --version')).stdout).trim()).toBe(AGENT_VERSION);
    expect(await h.exists('/usr/lib/systemd/system/codedeploy-agent.service')).toBe(true);
    expect(await h.calls()).toEqual(['is-active --quiet codedeploy-agent', 'daemon-reload', 'enable codedeploy-agent', 'restart codedeploy-agent']);
  }, 300_000);

  it('installs fresh and enables and starts the agent; upgrades restart a running agent and keep an edited configuration; remove keeps, purge removes', async () => {
    const h = host();
    await h.bootSystemd(false);
    let result = await h.run(`dpkg -i /shared/${deb}`);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(await h.read(CONF)).toBe(await h.read('/opt/codedeploy-agent/conf/codedeployagent.yml'));
    expect(await h.calls()).toEqual(['daemon-reload', 'enable codedeploy-agent', 'restart codedeploy-agent']);
    expect((await h.run('stat -c %a /var/log/aws/codedeploy-agent /opt/codedeploy-agent/deployment-root')).stdout).toBe('750\n755\n');

    // Upgrade (the same package again) while the agent runs: restarted, edited configuration kept.
    await h.write(CONF, EDITED);
    await seedHistory(h);
    await h.bootSystemd(true);
    result = await h.run(`dpkg -i /shared/${deb}`);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(await h.read(CONF)).toBe(EDITED);
    expect(await h.calls()).toEqual(['is-active --quiet codedeploy-agent', 'daemon-reload', 'restart codedeploy-agent']);

    // Upgrade while it is stopped: it stays stopped (aws-codedeploy-agent #45).
    await h.bootSystemd(false);
    result = await h.run(`dpkg -i /shared/${deb}`);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(await h.calls()).toEqual(['is-active --quiet codedeploy-agent', 'daemon-reload', 'is-active --quiet codedeploy-agent']);

    // Remove: the program goes; configuration, logs and deployment root stay.
    await h.clearCalls();
    result = await h.run('dpkg -r codedeploy-agent');
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(await h.exists('/opt/codedeploy-agent/bin/codedeploy-agent')).toBe(false);
    expect(await h.exists('/usr/bin/codedeploy-agent')).toBe(false);
    expect(await h.read(CONF)).toBe(EDITED);
    expect(await h.read(HISTORY)).toBe('an old deployment\n');
    expect(await h.exists('/var/log/aws/codedeploy-agent/codedeploy-agent.log')).toBe(true);
    expect(await h.calls()).toEqual(['disable --now codedeploy-agent', 'daemon-reload']);

    // Purge: those go too.
    result = await h.run('dpkg --purge codedeploy-agent');
    expect(result.exitCode, String(result.all)).toBe(0);
    for (const gone of ['/etc/codedeploy-agent', '/opt/codedeploy-agent', '/var/log/aws/codedeploy-agent']) expect(await h.exists(gone), gone).toBe(false);
  }, 300_000);

  it('in an image build (systemd not running) installs the files, enables the unit and starts nothing', async () => {
    const h = host();
    // systemctl exists but /run/systemd/system does not: a chroot or a container build.
    await h.bootSystemd(false);
    await h.run('rm -rf /run/systemd/system');
    const result = await h.run(`dpkg -i /shared/${deb}`);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(String(result.all)).toContain('systemd does not run this host: nothing was started');
    expect(await h.calls()).toEqual(['enable codedeploy-agent']);
    expect(await h.exists(CONF)).toBe(true);
  }, 300_000);
});

describe.skipIf(missing !== undefined)('the .rpm, installed with rpm', () => {
  const hosts: OverlayHost[] = [];
  const host = () => { const h = new OverlayHost('cda-rpm-host-', shared.dir); hosts.push(h); return h; };
  afterAll(() => { for (const h of hosts) h.cleanup(); });
  // This machine's rpm database knows nothing of its (Debian) libraries, and Debian's rpm wants to be told.
  const rpmCmd = 'rpm --nodeps --force-debian';

  it('replaces AWS\'s package in place: its edited configuration (which rpm would remove) and deployment root are kept; the agent restarted', async () => {
    const h = host();
    await h.bootSystemd(true);
    let result = await h.run(`${rpmCmd} -i /shared/codedeploy-agent-1.7.1-110.noarch.rpm`);
    expect(result.exitCode, String(result.all)).toBe(0);
    await h.write(CONF, EDITED);
    await seedHistory(h);
    await h.clearCalls();
    result = await h.run(`${rpmCmd} -U /shared/${rpm}`);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect((await h.run("rpm -q --qf '%{EPOCH}:%{VERSION}-%{RELEASE}' codedeploy-agent")).stdout).toBe(`1:${AGENT_VERSION}-1`);
    expect(await h.read(CONF)).toBe(EDITED);
    expect(await h.read(HISTORY)).toBe('an old deployment\n');
    expect(await h.exists('/opt/codedeploy-agent/lib')).toBe(false);
    expect(String((await h.run('/usr/bin/codedeploy-agent --version')).stdout).trim()).toBe(AGENT_VERSION);
    expect((await h.calls()).slice(-3)).toEqual(['daemon-reload', 'enable codedeploy-agent', 'restart codedeploy-agent']);
  }, 300_000);

  it('installs fresh (enabled, started), waits for an in-flight deployment on upgrade, and erase keeps configuration, logs and deployment root', async () => {
    const h = host();
    await h.bootSystemd(false);
    let result = await h.run(`${rpmCmd} -i /shared/${rpm}`);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(await h.read(CONF)).toBe(await h.read('/opt/codedeploy-agent/conf/codedeployagent.yml'));
    expect(await h.calls()).toEqual(['daemon-reload', 'enable codedeploy-agent', 'restart codedeploy-agent']);

    await h.write(CONF, EDITED);
    await seedHistory(h);
    await h.write(TRACKING, 'x');
    await h.bootSystemd(true);
    result = await h.run(`${rpmCmd} -U --replacepkgs /shared/${rpm}`, { CODEDEPLOY_AGENT_WAIT_TIMEOUT: '1' });
    expect(result.exitCode).not.toBe(0);
    expect(String(result.all)).toContain('deployment d-INFLIGHT1 is in progress');
    await h.run(`rm -f ${TRACKING}`);
    result = await h.run(`${rpmCmd} -U --replacepkgs /shared/${rpm}`);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(await h.read(CONF)).toBe(EDITED);
    expect(await h.calls()).toContain('restart codedeploy-agent');

    await h.clearCalls();
    result = await h.run(`${rpmCmd} -e codedeploy-agent`);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(await h.exists('/opt/codedeploy-agent/bin/codedeploy-agent')).toBe(false);
    expect(await h.read(CONF)).toBe(EDITED);
    expect(await h.read(HISTORY)).toBe('an old deployment\n');
    expect(await h.calls()).toEqual(['disable --now codedeploy-agent', 'daemon-reload']);
  }, 300_000);
});
