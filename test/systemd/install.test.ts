import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_VERSION } from '../../src/version.js';
import { makeSpec } from '../doubles/commands-service.js';
import { motoMissingReason, startMoto, type MotoServer } from '../doubles/moto.js';
import { makeRecordingBundle, motoAdmin, readRecords, tgzOf } from '../e2e/fixtures.js';
import { systemdContainerUnavailable } from '../helpers/systemd-container.js';
import { makeTempDir } from '../helpers/tmp.js';
import { HOST_IDENTIFIER } from '../ops/live-agent.js';
import {
  AGENT_LOG, CONF, DEPLOYMENT_ROOT, DROPIN_DIR, ENV_FILE, host, LOG_DIR, ONPREM, PREFIX, service, sharedRelease, UNIT, useAgentHost,
} from './agent-host.js';

/**
 * The release tarball installed with install.sh on a host that runs systemd, then operated as an operator
 * does: the service enabled and polling, a deployment (an S3 revision from moto) whose lines reach the
 * journal and the log file, `systemctl reload`, and finally --uninstall and --purge.
 */
const unavailable = systemdContainerUnavailable();
const BUCKET = 'systemd-bundles';

describe.skipIf(unavailable !== undefined)('installed from the release tarball with install.sh', () => {
  const work = makeTempDir('cda-systemd-install-');
  let moto: MotoServer | undefined;
  let admin: S3Client | undefined;
  let release: string;

  beforeAll(async () => {
    if (motoMissingReason) return;
    moto = await startMoto();
    admin = motoAdmin(moto.endpoint);
    await admin.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });
  const box = useAgentHost((): Record<string, string> => (moto ? { s3_endpoint_override: moto.endpoint } : {}));

  beforeAll(async () => {
    release = host.unpack(await sharedRelease('tar'));
    const result = await host.install(release);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`Started ${UNIT}.service`);
  }, 120_000);

  afterAll(async () => {
    admin?.destroy();
    await moto?.stop();
    work.cleanup();
  });

  it('is enabled, running, ordered after network-online.target, and `status` says it polls', async () => {
    const { container } = box;
    expect((await container.systemctl('is-enabled', UNIT)).stdout.trim()).toBe('enabled');
    const pid = await host.waitForPolling();
    expect(await host.activeState()).toBe('active');
    expect((await container.property(UNIT, 'After')).split(' ')).toContain('network-online.target');
    expect((await container.property(UNIT, 'Wants')).split(' ')).toContain('network-online.target');
    expect((await container.property(UNIT, 'WantedBy')).split(' ')).toContain('multi-user.target');
    expect(await container.property(UNIT, 'KillMode')).toBe('process');
    expect(await container.property(UNIT, 'FragmentPath')).toBe(`/etc/systemd/system/${UNIT}.service`);

    // The operator's view: the human form names the pid systemd knows, the state, and the double as endpoint.
    const human = await container.exec(['codedeploy-agent', 'status']);
    expect(human.exitCode, human.stderr).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^The AWS CodeDeploy agent is running as PID ${pid}\\n`));
    expect(human.stdout).toMatch(/\n {2}state\s+polling\n/);
    expect(human.stdout).toContain(service.url);
    const { report } = await host.status();
    expect(report).toMatchObject({ status: 'running', pid, state: 'polling', hostIdentifier: HOST_IDENTIFIER, version: AGENT_VERSION });

    // What install.sh put where the README says.
    for (const path of [`${PREFIX}/.version`, '/usr/bin/codedeploy-agent', '/usr/bin/codedeploy-local', CONF, ONPREM, ENV_FILE, LOG_DIR, DEPLOYMENT_ROOT]) {
      expect(await container.exists(path), path).toBe(true);
    }
    expect(await container.sh(`stat -c %a ${ONPREM}`)).toBe('600\n');
  });

  it.skipIf(motoMissingReason !== undefined)('runs a deployment from S3 to the end; the journal and the log file both have its lines', async () => {
    const { container } = box;
    const records = join(host.shared, 'records.txt');
    const bundle = makeRecordingBundle(join(work.dir, 'bundle'), { version: 'v1', destination: '/srv/shop', recordFile: records });
    await admin!.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'shop.tgz', Body: tgzOf(bundle, join(work.dir, 'bundle.tgz')) }));
    const deployment = service.addDeployment({
      hostIdentifier: HOST_IDENTIFIER,
      spec: makeSpec({ revision: { RevisionType: 'S3', S3Revision: { Bucket: BUCKET, Key: 'shop.tgz', BundleType: 'tgz' } } }),
    });
    await host.waitForDeployment(deployment);
    expect(deployment.status, JSON.stringify(deployment.commands.map((c) => c.completions))).toBe('Succeeded');
    expect(readRecords(records).map((r) => r.LIFECYCLE_EVENT)).toEqual(['BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService']);
    expect(await container.readFile('/srv/shop/index.html')).toBe('version v1\n');

    const expected = [
      `codedeploy-agent ${AGENT_VERSION} starting`,
      `Host identifier ${HOST_IDENTIFIER}, region us-east-1`,
      `Downloading s3://${BUCKET}/shop.tgz`,
      ...deployment.commands.map((c) => `${c.commandName} of ${deployment.deploymentId}: end of lifecycle event, Succeeded`),
    ];
    const journal = await host.journal();
    const logFile = await container.readFile(AGENT_LOG);
    for (const text of expected) {
      expect(journal, `journal: ${text}`).toContain(text);
      expect(logFile, `log file: ${text}`).toContain(text);
    }
    // The journal gets the syslog priority from the line's `<N>` prefix (not the prefix as text), and
    // stamps time and pid itself: the message is the level word and the text.
    expect(journal).not.toMatch(/^<\d>/m);
    expect(journal).toMatch(new RegExp(`^INFO  ${deployment.commands[0].commandName} of ${deployment.deploymentId}: end of lifecycle event`, 'm'));
    const priorities = await container.journal('-u', UNIT, '-o', 'json', '--output-fields=PRIORITY,MESSAGE,SYSLOG_IDENTIFIER');
    const endLine = priorities.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, string>)
      .find((entry) => typeof entry.MESSAGE === 'string' && entry.MESSAGE.includes('end of lifecycle event'));
    expect(endLine).toMatchObject({ PRIORITY: '6', SYSLOG_IDENTIFIER: 'codedeploy-agent' });
  });

  it('`systemctl reload` reopens a rotated log file and applies a changed verbose, without a restart', async () => {
    const { container } = box;
    const pid = await host.waitForPolling();
    await container.sh(`mv ${AGENT_LOG} ${AGENT_LOG}.1`);
    await container.sh(`sed -i 's/^:verbose: .*/:verbose: true/' ${CONF}`);
    const reload = await container.systemctl('reload', UNIT);
    expect(reload.exitCode, reload.stderr).toBe(0);

    const reopened = await container.waitFor(async () => {
      const text = await container.readFile(AGENT_LOG).catch(() => '');
      return /SIGHUP: log files reopened and configuration re-read[\s\S]*\n\S+ DEBUG .*Calling PollHostCommand/.test(text) ? text : undefined;
    }, 15_000, 'a new log file with debug lines', () => host.diagnostics());
    expect(reopened).not.toContain('starting'); // a new file, not the old one back
    expect(await container.readFile(`${AGENT_LOG}.1`)).not.toContain('SIGHUP');
    expect(await host.mainPid()).toBe(pid);
    // The journal follows the level too: debug lines with priority 7.
    expect(await container.journal('-u', UNIT, '-o', 'cat', '-p', 'debug..debug', '-n', '20')).toMatch(/^DEBUG .*Calling PollHostCommand/m);

    await container.sh(`sed -i 's/^:verbose: .*/:verbose: false/' ${CONF}`);
    expect((await container.systemctl('reload', UNIT)).exitCode).toBe(0);
  });

  it('--uninstall leaves nothing running or enabled and keeps the configuration, history and logs; --purge removes them', async () => {
    const { container } = box;
    let result = await host.install(release, ['--uninstall']);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(await host.activeState()).toBe('inactive');
    expect((await container.systemctl('list-unit-files', `${UNIT}.service`, '--no-legend')).stdout.trim()).toBe('');
    expect(await container.exists(`/etc/systemd/system/multi-user.target.wants/${UNIT}.service`)).toBe(false);
    expect(await host.agentProcesses()).toEqual([]);
    for (const gone of ['/usr/bin/codedeploy-agent', '/usr/bin/codedeploy-local', `${PREFIX}/bin`, `${PREFIX}/dist`, `${PREFIX}/conf`,
      `${PREFIX}/state`, `${PREFIX}/.version`, `${PREFIX}/package.json`, `/etc/systemd/system/${UNIT}.service`]) {
      expect(await container.exists(gone), gone).toBe(false);
    }
    for (const kept of [CONF, ONPREM, ENV_FILE, AGENT_LOG, DEPLOYMENT_ROOT]) {
      expect(await container.exists(kept), kept).toBe(true);
    }
    expect(await container.sh(`ls ${DEPLOYMENT_ROOT}`)).not.toBe('');

    await container.writeFile(join(DROPIN_DIR, 'override.conf'), '[Service]\nEnvironment=OPERATOR=1\n');
    result = await host.install(release, ['--purge']);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    for (const gone of [PREFIX, '/etc/codedeploy-agent', LOG_DIR, ENV_FILE, DROPIN_DIR, '/usr/bin/codedeploy-agent', `/etc/systemd/system/${UNIT}.service`]) {
      expect(await container.exists(gone), gone).toBe(false);
    }
    expect(await container.exists('/var/log/aws')).toBe(true); // the parent is not ours to remove
    if (!motoMissingReason) expect(await container.readFile('/srv/shop/index.html')).toBe('version v1\n'); // what a deployment installed stays
    expect(await host.agentProcesses()).toEqual([]);
    expect((await container.systemctl('is-enabled', UNIT)).stdout.trim()).not.toBe('enabled');
  });
});
