import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { missingTool } from '../helpers/prerequisites.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * `codedeploy-agent deploy` end to end: the built CLI as a real child process, real hook scripts, a real
 * deployment root — for directory, tar, tgz and zip bundles.
 */
const tmp = makeTempDir('cda-deploy-');
afterAll(tmp.cleanup);

const root = join(tmp.dir, 'root');
const configFile = join(tmp.dir, 'agent.yml');

const RECORD = `#!/bin/sh
# Appends what the hook saw to a file outside the deployment so the test can read it.
echo "$LIFECYCLE_EVENT|$DEPLOYMENT_ID|$APPLICATION_NAME|$DEPLOYMENT_GROUP_NAME|$DEPLOYMENT_GROUP_ID|$(cat "$(dirname "$0")/VERSION")|$AWS_SECRET_ACCESS_KEY" >> "$RECORD_FILE"
echo "stdout from $LIFECYCLE_EVENT"
echo "stderr from $LIFECYCLE_EVENT" >&2
`;

function makeBundle(name: string, version: string, destination: string, extra: { failIn?: string; hooks?: string[] } = {}): string {
  const dir = join(tmp.dir, name);
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  mkdirSync(join(dir, 'content', 'sub'), { recursive: true });
  writeFileSync(join(dir, 'content', 'index.html'), `version ${version}\n`);
  writeFileSync(join(dir, 'content', 'sub', 'data.txt'), 'data\n');
  writeFileSync(join(dir, 'scripts', 'VERSION'), version);
  writeFileSync(join(dir, 'scripts', 'record.sh'), RECORD);
  chmodSync(join(dir, 'scripts', 'record.sh'), 0o755);
  writeFileSync(join(dir, 'scripts', 'fail.sh'), '#!/bin/sh\necho "about to fail"\nexit 3\n');
  chmodSync(join(dir, 'scripts', 'fail.sh'), 0o755);
  const hooks = extra.hooks ?? ['ApplicationStop', 'BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService'];
  const hookYaml = hooks
    .map((event) => `  ${event}:\n    - location: scripts/${event === extra.failIn ? 'fail.sh' : 'record.sh'}\n      timeout: 30\n`)
    .join('');
  writeFileSync(
    join(dir, 'appspec.yml'),
    `version: 0.0\nos: linux\nfiles:\n  - source: content\n    destination: ${destination}\nhooks:\n${hookYaml}`,
  );
  return dir;
}

function deploy(args: string[], recordFile: string) {
  return runCli(['deploy', '--agent-configuration-file', configFile, ...args], {
    env: { RECORD_FILE: recordFile, AWS_SECRET_ACCESS_KEY: 'agent-secret-must-not-leak' },
  });
}

function records(file: string): string[][] {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split('|')) : [];
}

beforeAll(() => {
  writeAgentConfig(configFile, { root_dir: root, log_dir: join(tmp.dir, 'log'), pid_dir: join(tmp.dir, 'pid') });
});

describe('codedeploy-agent deploy', () => {
  it('--help and --version exit 0 (better than the anchor, §10.29)', async () => {
    const help = await runCli(['deploy', '--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain('--bundle-location');
    expect(help.stdout).toContain('--agent-configuration-file');
    const version = await runCli(['deploy', '--version']);
    expect(version.exitCode).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  for (const type of ['directory', 'tar', 'tgz', 'zip'] as const) {
    it.skipIf(type === 'zip' && missingTool('zip'))(`runs the whole lifecycle from a ${type} bundle, then ApplicationStop from the previous revision`, async () => {
      const destination = join(tmp.dir, `dest-${type}`);
      const recordFile = join(tmp.dir, `record-${type}.txt`);
      const group = `group-${type}`;
      const v1 = makeBundle(`bundle-${type}-1`, 'v1', destination);
      const v2 = makeBundle(`bundle-${type}-2`, 'v2', destination);
      const location = (dir: string) => {
        if (type === 'directory') return dir;
        const file = `${dir}.${type}`;
        if (type === 'zip') execFileSync('zip', ['-qr', file, '.'], { cwd: dir });
        else execFileSync('tar', [type === 'tgz' ? '-czf' : '-cf', file, '-C', dir, '.']);
        return file;
      };

      const first = await deploy(['-l', location(v1), '-t', type, '-g', group, '-a', 'MyApp', '-d', 'MyGroup'], recordFile);
      expect(first.stdout).toContain('AppSpec file valid. Local deployment successful');
      expect(first.exitCode).toBe(0);
      expect(first.stdout).toMatch(/Starting to execute deployment from within folder .*group-/);
      expect(first.stdout).toMatch(/ApplicationStop: succeeded in .* \(nothing to run\)/);
      expect(readFileSync(join(destination, 'index.html'), 'utf8')).toBe('version v1\n');

      const firstRecords = records(recordFile);
      // First deployment: no ApplicationStop (no previous revision).
      expect(firstRecords.map((r) => r[0])).toEqual(['BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService']);
      const deploymentId = firstRecords[0][1];
      expect(deploymentId).toMatch(/^d-[A-Z0-9]{9}-local$/);
      for (const r of firstRecords) {
        expect(r.slice(1, 6)).toEqual([deploymentId, 'MyApp', 'MyGroup', group, 'v1']);
        expect(r[6]).toBe(''); // the agent's credentials never reach hooks
      }

      const second = await deploy(['-l', location(v2), '-t', type, '-g', group, '-a', 'MyApp', '-d', 'MyGroup'], recordFile);
      expect(second.exitCode).toBe(0);
      const secondRecords = records(recordFile).slice(firstRecords.length);
      expect(secondRecords[0][0]).toBe('ApplicationStop');
      expect(secondRecords[0][5]).toBe('v1'); // scripts of the last successful revision
      expect(secondRecords[0][1]).not.toBe(deploymentId); // variables describe the current deployment
      expect(secondRecords.slice(1).every((r) => r[5] === 'v2')).toBe(true);
      expect(readFileSync(join(destination, 'index.html'), 'utf8')).toBe('version v2\n');

      // The anchor's layout: pointer files, cleanup file, scripts.log with its format.
      const instructions = readdirSync(join(root, 'deployment-instructions')).sort();
      expect(instructions).toEqual(expect.arrayContaining([`${group}-cleanup`, `${group}-install.json`, `${group}_last_successful_install`, `${group}_most_recent_install`]));
      const last = readFileSync(join(root, 'deployment-instructions', `${group}_last_successful_install`), 'utf8');
      expect(last).toBe(join(root, group, secondRecords[0][1]));
      const scriptsLog = readFileSync(join(last, 'logs', 'scripts.log'), 'utf8');
      expect(scriptsLog).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d LifecycleEvent - ApplicationStop$/m);
      expect(scriptsLog).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d Script - scripts\/record\.sh$/m);
      expect(scriptsLog).toMatch(/\[stdout\]stdout from AfterInstall$/m);
      expect(scriptsLog).toMatch(/\[stderr\]stderr from AfterInstall$/m);
      if (type !== 'directory') expect(existsSync(join(last, 'bundle.tar'))).toBe(true);
      if (type !== 'directory') expect(readlinkSync(join(last, 'bundle.tar'))).toBe(location(v2));
    });
  }

  it('a failing hook stops later events and exits 1 with the event, the error code name and the message', async () => {
    const destination = join(tmp.dir, 'dest-fail');
    const recordFile = join(tmp.dir, 'record-fail.txt');
    const bundle = makeBundle('bundle-fail', 'v1', destination, { failIn: 'AfterInstall' });
    const result = await deploy(['-l', bundle, '-g', 'group-fail'], recordFile);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('ERROR: AfterInstall failed with ScriptFailed (error code 4): Script at specified location: scripts/fail.sh failed with exit code 3');
    expect(result.stderr).toMatch(/Your local deployment failed while trying to execute your script at .*deployment-archive\/scripts\/fail\.sh/);
    expect(result.stdout).toContain('ApplicationStart: skipped');
    expect(result.stdout).toMatch(/See the deployment log at .*logs\/scripts\.log for more details/);
    expect(records(recordFile).map((r) => r[0])).toEqual(['BeforeInstall']);
  });

  it('--events runs only the given events (DownloadBundle and Install added) and checks their order', async () => {
    const destination = join(tmp.dir, 'dest-events');
    const recordFile = join(tmp.dir, 'record-events.txt');
    const bundle = makeBundle('bundle-events', 'v1', destination);
    const ok = await deploy(['-l', bundle, '-g', 'group-events', '-e', 'ValidateService,AfterInstall'], recordFile);
    expect(ok.exitCode).toBe(0);
    expect(records(recordFile).map((r) => r[0])).toEqual(['ValidateService', 'AfterInstall']);
    expect(ok.stdout.indexOf('DownloadBundle: started')).toBeLessThan(ok.stdout.indexOf('Install: started'));

    const bad = await deploy(['-l', bundle, '-g', 'group-events2', '-e', 'AfterInstall,Install'], recordFile);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('The only events that can be specified before Install are');
  });

  it('custom events run for local deployments when the appspec has them', async () => {
    const destination = join(tmp.dir, 'dest-custom');
    const recordFile = join(tmp.dir, 'record-custom.txt');
    const bundle = makeBundle('bundle-custom', 'v1', destination, { hooks: ['MyCustomEvent'] });
    const result = await deploy(['-l', bundle, '-g', 'group-custom', '-e', 'MyCustomEvent'], recordFile);
    expect(result.all).toContain('MyCustomEvent: succeeded');
    expect(result.exitCode).toBe(0);
    expect(records(recordFile).map((r) => r[0])).toEqual(['MyCustomEvent']);
  });

  it('DISALLOW refuses a file that is already there and leaves it untouched; OVERWRITE replaces it', async () => {
    const destination = join(tmp.dir, 'dest-exists');
    mkdirSync(destination, { recursive: true });
    writeFileSync(join(destination, 'index.html'), 'hand-made\n');
    const recordFile = join(tmp.dir, 'record-exists.txt');
    const bundle = makeBundle('bundle-exists', 'v1', destination);
    const refused = await deploy(['-l', bundle, '-g', 'group-exists'], recordFile);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('Install failed');
    expect(refused.stderr).toContain(join(destination, 'index.html'));
    expect(readFileSync(join(destination, 'index.html'), 'utf8')).toBe('hand-made\n');
    expect(existsSync(join(destination, 'sub'))).toBe(false);
    const overwrite = await deploy(['-l', bundle, '-g', 'group-exists', '-b', 'OVERWRITE'], recordFile);
    expect(overwrite.exitCode).toBe(0);
    expect(readFileSync(join(destination, 'index.html'), 'utf8')).toBe('version v1\n');
  });

  it('prints every event as it starts and ends with its duration and result; --verbose streams hook output in between', async () => {
    const destination = join(tmp.dir, 'dest-verbose');
    const recordFile = join(tmp.dir, 'record-verbose.txt');
    const bundle = makeBundle('bundle-verbose', 'v1', destination);
    const quiet = await deploy(['-l', bundle, '-g', 'group-verbose'], recordFile);
    expect(quiet.exitCode).toBe(0);
    expect(quiet.stdout).not.toContain('[stdout]');
    const events = [
      'BeforeBlockTraffic', 'AfterBlockTraffic', 'ApplicationStop', 'DownloadBundle', 'BeforeInstall', 'Install',
      'AfterInstall', 'ApplicationStart', 'ValidateService', 'BeforeAllowTraffic', 'AfterAllowTraffic',
    ];
    const eventLines = quiet.stdout.split('\n').filter((line) => /^[A-Za-z]+: /.test(line));
    expect(eventLines.map((line) => line.replace(/ in \d+ms| in \d+(\.\d)?s/, ' in <t>'))).toEqual(
      events.flatMap((event) => [
        `${event}: started`,
        `${event}: succeeded in <t>${['BeforeBlockTraffic', 'AfterBlockTraffic', 'ApplicationStop', 'BeforeAllowTraffic', 'AfterAllowTraffic'].includes(event) ? ' (nothing to run)' : ''}`,
      ]),
    );

    const loud = await deploy(['-l', bundle, '-g', 'group-verbose', '--verbose'], recordFile);
    expect(loud.exitCode).toBe(0);
    const lines = loud.stdout.split('\n');
    const started = lines.indexOf('AfterInstall: started');
    const ended = lines.findIndex((line) => line.startsWith('AfterInstall: succeeded in '));
    const between = lines.slice(started + 1, ended);
    expect(between.some((line) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d LifecycleEvent - AfterInstall$/.test(line))).toBe(true);
    expect(between.some((line) => line.endsWith('[stdout]stdout from AfterInstall'))).toBe(true);
    expect(between.some((line) => line.endsWith('[stderr]stderr from AfterInstall'))).toBe(true);
    // The second deployment runs ApplicationStop from the first revision, and streams it too.
    expect(loud.stdout).toMatch(/ApplicationStop: started\n.*LifecycleEvent - ApplicationStop\n.*\n.*\[stdout\]stdout from ApplicationStop\n.*\[stderr\]stderr from ApplicationStop\nApplicationStop: succeeded in /);
  });

  it('takes the appspec name from -A', async () => {
    const destination = join(tmp.dir, 'dest-appspec-name');
    const recordFile = join(tmp.dir, 'record-appspec-name.txt');
    const bundle = makeBundle('bundle-appspec-name', 'v1', destination, { hooks: ['AfterInstall'] });
    execFileSync('mv', [join(bundle, 'appspec.yml'), join(bundle, 'deploy-spec.yml')]);
    const missing = await deploy(['-l', bundle, '-g', 'group-appspec-name'], recordFile);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('Expecting appspec file at location');
    const result = await deploy(['-l', bundle, '-g', 'group-appspec-name', '-A', 'deploy-spec.yml'], recordFile);
    expect(result.exitCode).toBe(0);
    expect(records(recordFile).map((r) => r[0])).toEqual(['AfterInstall']);
    expect(readFileSync(join(destination, 'index.html'), 'utf8')).toBe('version v1\n');
  });

  it('--ignore-application-stop-failures forgives a failing ApplicationStop of the previous revision', async () => {
    const destination = join(tmp.dir, 'dest-stop');
    const recordFile = join(tmp.dir, 'record-stop.txt');
    const v1 = makeBundle('bundle-stop-1', 'v1', destination, { failIn: 'ApplicationStop' });
    const v2 = makeBundle('bundle-stop-2', 'v2', destination);
    expect((await deploy(['-l', v1, '-g', 'group-stop'], recordFile)).exitCode).toBe(0);

    const failing = await deploy(['-l', v2, '-g', 'group-stop'], recordFile);
    expect(failing.exitCode).toBe(1);
    expect(failing.stdout).toMatch(/^ApplicationStop: failed in \d+ms: ScriptFailed: Script at specified location: scripts\/fail\.sh failed with exit code 3$/m);
    expect(failing.stdout).toContain('DownloadBundle: skipped');
    expect(failing.stderr).toContain('ERROR: ApplicationStop failed with ScriptFailed (error code 4)');
    expect(readFileSync(join(destination, 'index.html'), 'utf8')).toBe('version v1\n');
    // An archive is unpacked before ApplicationStop (to check it first); when DownloadBundle's turn never
    // comes, the staged revision is removed and nothing of it is in place.
    const archive = join(tmp.dir, 'bundle-stop-2.tgz');
    execFileSync('tar', ['-czf', archive, '-C', v2, '.']);
    const failingArchive = await deploy(['-l', archive, '-g', 'group-stop'], recordFile);
    expect(failingArchive.exitCode).toBe(1);
    expect(failingArchive.stdout).toContain('DownloadBundle: skipped (ApplicationStop failed)');
    const folder = /from within folder (\S+)/.exec(failingArchive.stdout)?.[1] ?? '';
    expect(readdirSync(folder).sort()).toEqual(['bundle.tar', 'logs']);

    const forgiven = await deploy(['-l', v2, '-g', 'group-stop', '--ignore-application-stop-failures'], recordFile);
    expect(forgiven.exitCode).toBe(0);
    expect(forgiven.stdout).toMatch(/^ApplicationStop: failed in \d+ms, ignored \(--ignore-application-stop-failures\): ScriptFailed: /m);
    expect(forgiven.stdout).toContain('AppSpec file valid. Local deployment successful');
    expect(readFileSync(join(destination, 'index.html'), 'utf8')).toBe('version v2\n');
  });

  it('checks the scripts and runas users of the events to run before installing anything, with positions', async () => {
    const destination = join(tmp.dir, 'dest-check');
    const recordFile = join(tmp.dir, 'record-check.txt');
    const bundle = makeBundle('bundle-check', 'v1', destination);
    writeFileSync(
      join(bundle, 'appspec.yml'),
      [
        'version: 0.0',
        'os: linux',
        'files:',
        '  - source: content',
        `    destination: ${destination}`,
        'hooks:',
        '  BeforeInstall:',
        '    - location: scripts/record.sh',
        '  AfterInstall:',
        '    - location: scripts/missing.sh',
        '  ValidateService:',
        '    - location: scripts/record.sh',
        '      runas: cdaaudit-no-such-user',
        '',
      ].join('\n'),
    );
    const result = await deploy(['-l', bundle, '-g', 'group-check'], recordFile);
    expect(result.exitCode).toBe(1);
    // A folder bundle is checked before any event runs, and messages name the user's own file.
    const appspec = join(bundle, 'appspec.yml');
    expect(result.stdout).not.toContain('started');
    expect(result.stderr).toContain('ERROR: The revision cannot run the events of this deployment, so nothing of it was installed or run:');
    expect(result.stderr).toContain(`${appspec}:10:17: the AfterInstall script scripts/missing.sh does not exist in the bundle`);
    // An unknown runas user is only a warning (an earlier hook may create it), said on the terminal and in the log.
    const warning = `${appspec}:12:17: the ValidateService script scripts/record.sh runs as user cdaaudit-no-such-user, who does not exist on this host`;
    expect(result.stderr).toContain(`warning: ${warning}`);
    expect(readFileSync(join(tmp.dir, 'log', 'codedeploy-local.log'), 'utf8')).toContain(warning);
    expect(existsSync(destination)).toBe(false);
    expect(records(recordFile)).toEqual([]);

    // Events that are not run are not checked.
    const partial = await deploy(['-l', bundle, '-g', 'group-check', '-e', 'BeforeInstall'], recordFile);
    expect(partial.exitCode).toBe(0);
    expect(records(recordFile).map((r) => r[0])).toEqual(['BeforeInstall']);
  });

  it('bad input gives a specific error and exit 1, never a crash', async () => {
    const missing = await deploy(['-l', join(tmp.dir, 'nowhere'), '-t', 'tgz'], join(tmp.dir, 'r.txt'));
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('is specified as a file or directory which does not exist');
    const badConfig = await runCli(['deploy', '-c', join(tmp.dir, 'no-config.yml')]);
    expect(badConfig.exitCode).toBe(1);
    expect(badConfig.stderr).toContain('does not exist or is not readable');
    const bundle = makeBundle('bundle-badspec', 'v1', join(tmp.dir, 'dest-badspec'));
    writeFileSync(join(bundle, 'appspec.yml'), 'version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - timeout: 10\n');
    const badSpec = await deploy(['-l', bundle, '-g', 'group-badspec'], join(tmp.dir, 'r.txt'));
    expect(badSpec.exitCode).toBe(1);
    expect(badSpec.stderr).toMatch(/appspec\.yml:5:\d+/);
  });

  it('is also reachable as codedeploy-local', async () => {
    const link = join(tmp.dir, 'codedeploy-local');
    cpSync(join(process.cwd(), 'bin', 'codedeploy-agent.mjs'), link);
    const { REPO_ROOT } = await import('../helpers/cli.js');
    // The copy must import the bundle relative to the repository; use a symlink instead.
    execFileSync('rm', ['-f', link]);
    execFileSync('ln', ['-s', join(REPO_ROOT, 'bin', 'codedeploy-agent.mjs'), link]);
    const { execa } = await import('execa');
    const result = await execa(process.execPath, [link, '--help'], { reject: false });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('codedeploy-local');
    expect(result.stdout).toContain('--bundle-location');
  });
});
