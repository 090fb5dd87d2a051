import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeSpec } from '../doubles/commands-service.js';
import { systemdContainerUnavailable } from '../helpers/systemd-container.js';
import { HOST_IDENTIFIER, localRevision } from '../ops/live-agent.js';
import { host, service, TRIED_DIRECTIVES, UNIT, sharedRelease, useAgentHost } from './agent-host.js';

/**
 * Hooks doing what hooks do, run by the agent as the installed unit runs it: everything the unit sets is
 * inherited by the hooks and by the applications they leave running, so this is what decides which
 * hardening directives the unit can have (README, "The unit"). Each check is recorded (`name ok` or
 * `name FAIL why`) instead of failing the hook, so one deployment shows everything a directive breaks.
 *
 * Not checked here, because a container's services may not do it at all (systemd-nspawn keeps CAP_SYS_TIME,
 * CAP_SYS_MODULE and CAP_SYSLOG from them, and mounts /proc/sys read-only): setting the clock (ProtectClock=
 * forbids it), writing a sysctl (ProtectKernelTunables=), loading a kernel module (ProtectKernelModules=),
 * reading the kernel log with dmesg (ProtectKernelLogs=).
 */
const unavailable = systemdContainerUnavailable();
const user = `cdahook${process.pid % 100000}`;
const MOUNT = '/mnt/cda-hookworld';
const APP_UNIT = 'cda-hookworld-app';

/** A static i386 program that exits 0 (`mov eax,1; xor ebx,ebx; int 0x80`): a 32-bit application. */
function i386Program(): Buffer {
  const code = Buffer.from([0xb8, 1, 0, 0, 0, 0x31, 0xdb, 0xcd, 0x80]);
  const base = 0x08048000;
  const headers = 52 + 32;
  const elf = Buffer.alloc(headers + code.length);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]); // ELF, 32-bit, little-endian, version 1
  elf.writeUInt16LE(2, 16); // executable
  elf.writeUInt16LE(3, 18); // i386
  elf.writeUInt32LE(1, 20);
  elf.writeUInt32LE(base + headers, 24); // entry
  elf.writeUInt32LE(52, 28); // program headers at
  elf.writeUInt16LE(52, 40);
  elf.writeUInt16LE(32, 42);
  elf.writeUInt16LE(1, 44);
  elf.writeUInt32LE(1, 52); // PT_LOAD of the whole file, read + execute
  elf.writeUInt32LE(base, 60);
  elf.writeUInt32LE(base, 64);
  elf.writeUInt32LE(elf.length, 68);
  elf.writeUInt32LE(elf.length, 72);
  elf.writeUInt32LE(5, 76);
  elf.writeUInt32LE(0x1000, 80);
  code.copy(elf, headers);
  return elf;
}

/** The checks each hook makes, in the order they are recorded. */
const x64 = process.arch === 'x64';
/** Python (moto's language, so on every machine that runs these tests) opens a packet socket. */
const python = spawnSync('sh', ['-c', 'command -v python3']).status === 0;

const CHECKS = {
  BeforeInstall: ['write-etc', 'sysctl-read', 'write-tmp', 'mount-tmpfs', 'install-unit', 'sudoers', 'set-hostname'],
  AfterInstall: ['runas', 'runas-home', 'runas-sudo'],
  ApplicationStart: ['setuid-file', 'sudo-to-user', 'runuser', 'realtime', 'personality', 'device-tun', 'namespaces',
    ...(python ? ['packet-socket'] : []), 'background-app', ...(x64 ? ['32-bit-program'] : [])],
  ValidateService: ['unit-active', 'mount-seen'],
};

function makeHookWorldBundle(dir: string, results: string, appPidFile: string): string {
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  mkdirSync(join(dir, 'app'), { recursive: true });
  writeFileSync(join(dir, 'app', 'index.html'), 'hook world\n');
  writeFileSync(join(dir, 'app', 'legacy-i386'), i386Program(), { mode: 0o755 });
  const lib = [
    `results='${results}'`,
    '# check NAME COMMAND...: records whether COMMAND succeeded (and why not), never fails the hook.',
    'check() {',
    '  name=$1; shift',
    '  if out=$("$@" 2>&1); then echo "$name ok" >> "$results"',
    '  else echo "$name FAIL $(printf %s "$out" | tr "\\n" " " | cut -c1-160)" >> "$results"; fi',
    '}',
    '',
  ].join('\n');
  const scripts: Record<string, string> = {
    'before-install.sh': [
      `check write-etc sh -c 'echo "written by a hook" > /etc/cda-hookworld.conf'`,
      `check sysctl-read sh -c '[ "$(sysctl -n kernel.ostype)" = Linux ]'`,
      `check write-tmp sh -c 'echo "for the application" > /tmp/cda-hookworld.txt'`,
      `check mount-tmpfs sh -c 'mkdir -p ${MOUNT} && mount -t tmpfs cda-hookworld ${MOUNT} && touch ${MOUNT}/made-by-hook'`,
      `check install-unit sh -c 'printf "[Service]\\nExecStart=/bin/sleep 1000\\n[Install]\\nWantedBy=multi-user.target\\n" > /etc/systemd/system/${APP_UNIT}.service && systemctl daemon-reload && systemctl enable --now ${APP_UNIT}'`,
      `check sudoers sh -c 'echo "${user} ALL=(root) NOPASSWD: /usr/bin/id" > /etc/sudoers.d/cda-hookworld && chmod 0440 /etc/sudoers.d/cda-hookworld && visudo -cq'`,
      'check set-hostname sh -c \'hostname "$(hostname)"\'',
    ].join('\n'),
    'after-install.sh': [
      `check runas sh -c '[ "$(id -un)" = ${user} ]'`,
      'check runas-home sh -c \'echo "settings" > "$HOME/.cda-hookworld"\'',
      'check runas-sudo sh -c \'[ "$(sudo -n /usr/bin/id -u)" = 0 ]\'',
    ].join('\n'),
    'application-start.sh': [
      'check setuid-file sh -c \'cp /bin/true /srv/hookworld/setuid-tool && chmod 4755 /srv/hookworld/setuid-tool && [ "$(stat -c %a /srv/hookworld/setuid-tool)" = 4755 ]\'',
      `check sudo-to-user sh -c '[ "$(sudo -u ${user} id -un)" = ${user} ]'`,
      `check runuser sh -c '[ "$(runuser -u ${user} -- id -un)" = ${user} ]'`,
      'check realtime chrt -f 10 true',
      // A legacy installer that wants a 32-bit machine (linux32), or a program run without address randomisation.
      x64 ? 'check personality linux32 sh -c \'[ "$(uname -m)" = i686 ]\'' : 'check personality sh -c \'setarch "$(uname -m)" -R true\'',
      'check device-tun sh -c \'exec 3<>/dev/net/tun\'',
      'check namespaces unshare --mount --pid --fork true',
      // DHCP clients, keepalived and network monitors use packet sockets.
      ...(python ? ['check packet-socket python3 -c "import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()"'] : []),
      `check background-app sh -c 'nohup sleep 1000 > /dev/null 2>&1 & echo $! > ${appPidFile}'`,
      ...(x64 ? ['check 32-bit-program /srv/hookworld/legacy-i386'] : []),
    ].join('\n'),
    'validate-service.sh': [
      `check unit-active systemctl is-active --quiet ${APP_UNIT}`,
      `check mount-seen test -e ${MOUNT}/made-by-hook`,
    ].join('\n'),
  };
  for (const [name, body] of Object.entries(scripts)) {
    writeFileSync(join(dir, 'scripts', name), `#!/bin/sh\n${lib}${body}\n`, { mode: 0o755 });
  }
  writeFileSync(join(dir, 'appspec.yml'), [
    'version: 0.0',
    'os: linux',
    'files:',
    '  - source: app',
    '    destination: /srv/hookworld',
    'hooks:',
    '  BeforeInstall:',
    '    - location: scripts/before-install.sh',
    '  AfterInstall:',
    '    - location: scripts/after-install.sh',
    `      runas: ${user}`,
    '  ApplicationStart:',
    '    - location: scripts/application-start.sh',
    '  ValidateService:',
    '    - location: scripts/validate-service.sh',
    '',
  ].join('\n'));
  return dir;
}

describe.skipIf(unavailable !== undefined)('hooks under the installed unit', () => {
  const box = useAgentHost();

  beforeAll(async () => {
    await box.container.sh(`useradd -m -s /bin/sh ${user}`); // inside the container's overlay only
    const result = await host.install(host.unpack(await sharedRelease('tar')));
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    await host.waitForPolling();
  }, 120_000);

  it(`run as root and as users, use sudo, write /etc, mount, install and start units, leave applications running${TRIED_DIRECTIVES.length ? ` (with ${TRIED_DIRECTIVES.join(' ')})` : ''}`, async () => {
    const { container } = box;
    const resultsDir = join(host.shared, 'results');
    mkdirSync(resultsDir);
    const results = join(resultsDir, 'checks.txt'); // the runas user records its checks too
    writeFileSync(results, '');
    chmodSync(results, 0o666);
    const appPidFile = join(resultsDir, 'app.pid');
    const bundle = makeHookWorldBundle(join(host.shared, 'hookworld'), results, appPidFile);
    const deployment = service.addDeployment({ hostIdentifier: HOST_IDENTIFIER, spec: makeSpec({ revision: localRevision(bundle) }) });
    await host.waitForDeployment(deployment);
    const completions = JSON.stringify(deployment.commands.map((c) => [c.commandName, c.completions.map((x) => x.payload)]));

    const recorded = readFileSync(results, 'utf8').trim().split('\n');
    expect(recorded.map((line) => line.split(' ')[0]), completions).toEqual(Object.values(CHECKS).flat());

    // What the rest of the host sees of the hooks' work (outside the agent's service).
    const outside = async (name: string, ok: () => Promise<boolean>) => `${name} ${(await ok()) ? 'ok' : 'FAIL'}`;
    recorded.push(
      await outside('mount-seen-outside', async () => (await container.exec(['findmnt', '-n', '-o', 'FSTYPE', MOUNT])).stdout.trim() === 'tmpfs'),
      await outside('tmp-seen-outside', () => container.exists('/tmp/cda-hookworld.txt')),
      await outside('etc-seen-outside', () => container.exists('/etc/cda-hookworld.conf')),
      await outside('home-seen-outside', () => container.exists(`/home/${user}/.cda-hookworld`)),
      await outside('app-unit-active', async () => (await container.systemctl('is-active', APP_UNIT)).stdout.trim() === 'active'),
      await outside('background-app-alive', async () => existsSync(appPidFile) && host.alive(Number(readFileSync(appPidFile, 'utf8')))),
    );
    expect(recorded.filter((line) => !line.endsWith(' ok')), `checks that failed (unit drop-in: ${TRIED_DIRECTIVES.join(' ') || 'none'})`).toEqual([]);
    expect(deployment.status, completions).toBe('Succeeded');
    expect(await container.property(UNIT, 'ActiveState')).toBe('active');
  });
});
