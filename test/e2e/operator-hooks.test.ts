/**
 * Operator hooks end to end: executables in the host's hooks folder run as root around every deployment
 * and lifecycle event, for a local `deploy` and for the daemon (the real CLI, real processes, the
 * commands-service double). They see the bundle hooks' variables plus the event's result; a failing or
 * refused pre- hook fails its event with a clear message and error code, a failing post- hook is shown
 * and the event's result stands; timeouts kill them as they kill bundle hooks.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIFECYCLE_EVENTS } from '../../src/appspec/events.js';
import { makeSpec } from '../doubles/commands-service.js';
import { localRevision, payloadOf, waitForDeployment } from '../agent/harness.js';
import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
import { runCli } from '../helpers/cli.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeTempDir } from '../helpers/tmp.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.info('[operator hooks e2e] not root: operator hooks must belong to root; run the tests as root (CI does)');

/** Every hook appends `point|event|result|code|deployment|leaked secret` to $RECORD_FILE. */
const RECORDING_HOOK = `#!/bin/sh
echo "$OPERATOR_HOOK|$LIFECYCLE_EVENT|\${LIFECYCLE_EVENT_RESULT-}|\${LIFECYCLE_EVENT_ERROR_CODE-}|$DEPLOYMENT_ID|\${AWS_SECRET_ACCESS_KEY-}" >> "$RECORD_FILE"
echo "hello from $OPERATOR_HOOK"
`;

function writeHook(path: string, body = RECORDING_HOOK, mode = 0o755): void {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o755 });
  writeFileSync(path, body);
  chmodSync(path, mode);
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
}

describe.skipIf(!isRoot)('operator hooks', () => {
  const tmp = makeTempDir('cda-ophooks-e2e-');
  const hooks = join(tmp.dir, 'hooks.d');
  const record = join(tmp.dir, 'record.txt');
  const root = join(tmp.dir, 'root');
  const configFile = join(tmp.dir, 'agent.yml');
  const bundle = join(tmp.dir, 'bundle');

  beforeAll(() => {
    chmodSync(tmp.dir, 0o755);
    writeAgentConfig(configFile, {
      root_dir: root,
      log_dir: join(tmp.dir, 'log'),
      pid_dir: join(tmp.dir, 'pid'),
      operator_hooks_dir: hooks,
      operator_hook_timeout_seconds: 1,
      hook_kill_grace_seconds: 0.5,
    });
    // A bundle whose own hooks record themselves in the same file, to see the order.
    mkdirSync(join(bundle, 'scripts'), { recursive: true });
    writeFileSync(join(bundle, 'index.html'), 'hi\n');
    writeFileSync(join(bundle, 'scripts', 'bundle.sh'), '#!/bin/sh\necho "bundle|$LIFECYCLE_EVENT" >> "$RECORD_FILE"\n');
    chmodSync(join(bundle, 'scripts', 'bundle.sh'), 0o755);
    writeFileSync(join(bundle, 'appspec.yml'), `version: 0.0\nos: linux\nfiles:\n  - source: index.html\n    destination: ${join(tmp.dir, 'dest')}\nhooks:\n  AfterInstall:\n    - location: scripts/bundle.sh\n`);
  });
  afterAll(tmp.cleanup);

  function resetHooks(): void {
    rmSync(hooks, { recursive: true, force: true });
    mkdirSync(hooks, { mode: 0o755 });
    rmSync(record, { force: true });
  }

  function deploy(group: string) {
    return runCli(['deploy', '-c', configFile, '-l', bundle, '-g', group, '-b', 'OVERWRITE'], {
      env: { RECORD_FILE: record, AWS_SECRET_ACCESS_KEY: 'agent-secret-must-not-leak' },
    });
  }

  it('run around a local deployment and each of its events, with the event\'s result, labelled in scripts.log', async () => {
    resetHooks();
    for (const point of ['pre-deployment', 'post-deployment', 'pre-event', 'post-event']) writeHook(join(hooks, point));
    writeHook(join(hooks, 'post-event.d', '10-second'), '#!/bin/sh\necho "post-event.d/10-second|$LIFECYCLE_EVENT" >> "$RECORD_FILE"\n');
    const result = await deploy('group-all');
    expect(result.exitCode, result.all).toBe(0);
    const seen = lines(record);
    const id = seen[0].split('|')[4];
    expect(id).toMatch(/^d-[A-Z0-9]{9}-local$/);
    const expected = [`pre-deployment|BeforeBlockTraffic|||${id}|`];
    for (const event of DEFAULT_LIFECYCLE_EVENTS) {
      expected.push(`pre-event|${event}|||${id}|`);
      if (event === 'AfterInstall') expected.push('bundle|AfterInstall');
      expected.push(`post-event|${event}|Succeeded|0|${id}|`, `post-event.d/10-second|${event}`);
    }
    expected.push(`post-deployment|AfterAllowTraffic|Succeeded|0|${id}|`);
    expect(seen).toEqual(expected);
    const scriptsLog = readFileSync(join(root, 'group-all', id, 'logs', 'scripts.log'), 'utf8');
    expect(scriptsLog).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d OperatorHook - pre-deployment$/m);
    expect(scriptsLog).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[pre-deployment\]\[stdout\]hello from pre-deployment$/m);
    expect(scriptsLog).toMatch(/OperatorHook - post-event\.d\/10-second succeeded in (\d+ms|\d+(\.\d)?s)$/m);
  });

  it('an archive: DownloadBundle at its turn though it was fetched first; a refused archive is a deployment of DownloadBundle alone', async () => {
    resetHooks();
    for (const point of ['pre-deployment', 'post-deployment', 'pre-event', 'post-event']) writeHook(join(hooks, point));
    const archive = join(tmp.dir, 'bundle.tgz');
    execFileSync('tar', ['-czf', archive, '-C', bundle, '.']);
    const packed = await runCli(['deploy', '-c', configFile, '-l', archive, '-g', 'group-archive', '-b', 'OVERWRITE'], { env: { RECORD_FILE: record } });
    expect(packed.exitCode, packed.all).toBe(0);
    const events = (file: string) => lines(file).map((line) => line.split('|').slice(0, 4).join('|'));
    const expected = ['pre-deployment|BeforeBlockTraffic||'];
    for (const event of DEFAULT_LIFECYCLE_EVENTS) {
      expected.push(`pre-event|${event}||`);
      if (event === 'AfterInstall') expected.push('bundle|AfterInstall');
      expected.push(`post-event|${event}|Succeeded|0`);
    }
    expect(events(record)).toEqual([...expected, 'post-deployment|AfterAllowTraffic|Succeeded|0']);

    rmSync(record, { force: true });
    const broken = join(tmp.dir, 'broken');
    execFileSync('cp', ['-a', bundle, broken]);
    writeFileSync(join(broken, 'appspec.yml'), readFileSync(join(bundle, 'appspec.yml'), 'utf8').replace('AfterInstall:', 'AfterInstal:'));
    const brokenArchive = join(tmp.dir, 'broken.tgz');
    execFileSync('tar', ['-czf', brokenArchive, '-C', broken, '.']);
    const refused = await runCli(['deploy', '-c', configFile, '-l', brokenArchive, '-g', 'group-archive'], { env: { RECORD_FILE: record } });
    expect(refused.exitCode).toBe(1);
    expect(events(record)).toEqual(['pre-deployment|DownloadBundle||', 'pre-event|DownloadBundle||', 'post-event|DownloadBundle|Failed|5', 'post-deployment|DownloadBundle|Failed|5']);
  });

  it('a failing pre-event hook fails its event (error code 4, named) before it runs; the post- hooks still run with the result', async () => {
    resetHooks();
    for (const point of ['pre-deployment', 'post-deployment', 'post-event']) writeHook(join(hooks, point));
    writeHook(join(hooks, 'pre-event.d', '10-lb'), `${RECORDING_HOOK}[ "$LIFECYCLE_EVENT" = AfterInstall ] && { echo "cannot leave the load balancer" >&2; exit 3; }\nexit 0\n`);
    const result = await deploy('group-pre-fails');
    expect(result.exitCode).toBe(1);
    const hookPath = join(hooks, 'pre-event.d', '10-lb');
    expect(result.stderr).toContain(`ERROR: AfterInstall failed with ScriptFailed (error code 4): Operator hook ${hookPath} failed with exit code 3; pre-event hooks must succeed, so AfterInstall was not run`);
    expect(result.stdout).toContain('ApplicationStart: skipped');
    expect(result.stderr).not.toContain('while trying to execute your script');
    expect(result.stderr).toContain(`The last output of ${hookPath}:`);
    const seen = lines(record).map((line) => line.split('|').slice(0, 4).join('|'));
    expect(seen).not.toContain('bundle|AfterInstall');
    expect(seen.slice(-3)).toEqual(['pre-event|AfterInstall||', 'post-event|AfterInstall|Failed|4', 'post-deployment|AfterInstall|Failed|4']);
    const id = lines(record)[0].split('|')[4];
    expect(readFileSync(join(root, 'group-pre-fails', id, 'logs', 'scripts.log'), 'utf8')).toMatch(/\[pre-event\.d\/10-lb\]\[stderr\]cannot leave the load balancer$/m);
  });

  it('a failing post-event hook is shown and logged; the deployment succeeds', async () => {
    resetHooks();
    writeHook(join(hooks, 'post-event'), '#!/bin/sh\n[ "$LIFECYCLE_EVENT" = ValidateService ] && exit 1\nexit 0\n');
    const result = await deploy('group-post-fails');
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stderr).toContain(`Warning: post-event hook: Operator hook ${join(hooks, 'post-event')} failed with exit code 1 (the lifecycle event's result stands)`);
    expect(result.stdout).toContain('Local deployment successful');
  });

  it('a pre-deployment hook that outlives operator_hook_timeout_seconds is killed (TERM, grace, KILL): ScriptTimedOut', async () => {
    resetHooks();
    const pidFile = join(tmp.dir, 'stuck.pid');
    writeHook(join(hooks, 'pre-deployment'), `#!/bin/sh\ntrap '' TERM\necho $$ > '${pidFile}'\nsleep 60\n`);
    const started = Date.now();
    const result = await deploy('group-timeout');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`ERROR: BeforeBlockTraffic failed with ScriptTimedOut (error code 3): Operator hook ${join(hooks, 'pre-deployment')} failed to complete in 1 seconds (operator_hook_timeout_seconds); pre-deployment hooks must succeed, so BeforeBlockTraffic was not run`);
    expect(Date.now() - started).toBeLessThan(20_000);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')).toBe(false);
  });

  it('refuses a hook anyone but root may write: the event fails and says why', async () => {
    resetHooks();
    writeHook(join(hooks, 'pre-event'), RECORDING_HOOK, 0o777);
    const result = await deploy('group-refused');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`ERROR: BeforeBlockTraffic failed with ScriptFailed (error code 4): Operator hook ${join(hooks, 'pre-event')} refused: ${join(hooks, 'pre-event')} is writable by everyone (mode 0777). Operator hooks run as root`);
    expect(lines(record)).toEqual([]);
  });

  describe('in the daemon', () => {
    useDaemonWorld('ophooks-daemon');
    beforeAll(() => {
      newWorld({}, { iamUser: { arn: 'arn:aws:iam::123456789012:user/onprem-ophooks' } });
      chmodSync(world.dir, 0o755);
    });

    it('pairs pre- and post-deployment across the service\'s commands, closes an abandoned deployment, fails an event on a failing pre-event hook', async () => {
      const dir = join(world.dir, 'hooks.d');
      const daemonRecord = join(world.dir, 'record.txt');
      for (const point of ['pre-deployment', 'post-deployment', 'post-event']) writeHook(join(dir, point));
      writeHook(join(dir, 'pre-event'), `${RECORDING_HOOK}[ "$DEPLOYMENT_ID" = d-OPFAIL001 ] && [ "$LIFECYCLE_EVENT" = BeforeInstall ] && exit 5\nexit 0\n`);
      world.writeConfig(service.url, { operator_hooks_dir: dir });
      const agent = world.start({ env: { RECORD_FILE: daemonRecord } });
      try {
        const bundleDir = world.makeBundle({ label: 'v1', hooks: { AfterInstall: {} } });
        const group = 'a1b2c3d4-0000-4000-8000-0000opgroup1';
        // The whole in-place lifecycle with a load balancer: it ends at AfterAllowTraffic.
        const full = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ deploymentGroupId: group, revision: localRevision(bundleDir), fileExistsBehavior: 'OVERWRITE' }) });
        await waitForDeployment(service, full, agent, 30_000);
        expect(full.status).toBe('Succeeded');
        // No event is a no-op while operator hooks run around every one.
        expect(full.commands.find((c) => c.commandName === 'BeforeBlockTraffic')!.acks[0].payload).toEqual({ IsCommandNoop: false });
        const fullLines = lines(daemonRecord).map((line) => line.split('|').slice(0, 4).join('|'));
        expect(fullLines[0]).toBe('pre-deployment|BeforeBlockTraffic||');
        expect(fullLines.filter((line) => line.startsWith('pre-deployment'))).toHaveLength(1);
        expect(fullLines.filter((line) => line.startsWith('pre-event'))).toHaveLength(full.commands.length);
        expect(fullLines.at(-1)).toBe('post-deployment|AfterAllowTraffic|Succeeded|0');
        expect(fullLines.filter((line) => line.startsWith('post-deployment'))).toHaveLength(1);

        // Stopped in the console after BeforeInstall: never reaches its end ...
        const stopped = service.addDeployment({
          hostIdentifier: world.hostIdentifier,
          deploymentId: 'd-OPSTOP001',
          commands: ['ApplicationStop', 'DownloadBundle', 'BeforeInstall'],
          spec: makeSpec({ deploymentId: 'd-OPSTOP001', deploymentGroupId: group, revision: localRevision(bundleDir), fileExistsBehavior: 'OVERWRITE' }),
        });
        await waitForDeployment(service, stopped, agent, 30_000);
        const afterStopped = lines(daemonRecord).length;
        expect(lines(daemonRecord).some((line) => line.startsWith('post-deployment|') && line.includes('d-OPSTOP001'))).toBe(false);
        // ... so the next deployment of its group closes it first (Abandoned), then opens its own; its
        // pre-event hook fails BeforeInstall with error code 4 and the hook's name, ending the deployment.
        const failing = service.addDeployment({
          hostIdentifier: world.hostIdentifier,
          deploymentId: 'd-OPFAIL001',
          commands: ['ApplicationStop', 'DownloadBundle', 'BeforeInstall', 'Install', 'AfterInstall', 'ApplicationStart', 'ValidateService'],
          spec: makeSpec({ deploymentId: 'd-OPFAIL001', deploymentGroupId: group, revision: localRevision(bundleDir), fileExistsBehavior: 'OVERWRITE' }),
        });
        await waitForDeployment(service, failing, agent, 30_000);
        expect(failing.status).toBe('Failed');
        const later = lines(daemonRecord).slice(afterStopped).map((line) => line.split('|').slice(0, 5).join('|'));
        expect(later[0]).toBe('post-deployment|BeforeInstall|Abandoned|5|d-OPSTOP001');
        expect(later[1]).toBe('pre-deployment|ApplicationStop|||d-OPFAIL001');
        expect(later.slice(-2)).toEqual(['post-event|BeforeInstall|Failed|4|d-OPFAIL001', 'post-deployment|BeforeInstall|Failed|4|d-OPFAIL001']);
        const beforeInstall = failing.commands.find((c) => c.commandName === 'BeforeInstall')!;
        expect(beforeInstall.status).toBe('Failed');
        expect(payloadOf(beforeInstall.completions[0])).toMatchObject({
          error_code: 4,
          script_name: join(dir, 'pre-event'),
          message: `Operator hook ${join(dir, 'pre-event')} failed with exit code 5; pre-event hooks must succeed, so BeforeInstall was not run`,
        });
        expect(payloadOf(beforeInstall.completions[0]).log).toContain('[pre-event][stdout]hello from pre-event');
      } finally {
        expect((await agent.stop()).exitCode).toBe(0);
      }
    });
  });
});
