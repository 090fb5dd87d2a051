import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * A newcomer's first hour, from the user's side: the mistakes people make with `validate` and `deploy`,
 * each answered by a message that says where the mistake is and what to do. Every case runs the built
 * CLI as a child process and reads what it prints.
 */
const tmp = makeTempDir('cda-first-hour-');
afterAll(tmp.cleanup);
const configFile = join(tmp.dir, 'agent.yml');
const isRoot = process.getuid?.() === 0;

beforeAll(() => {
  chmodSync(tmp.dir, 0o755);
  writeAgentConfig(configFile, { root_dir: join(tmp.dir, 'root'), log_dir: join(tmp.dir, 'log'), pid_dir: join(tmp.dir, 'pid') });
});

/** A bundle folder with a before and an after script; `hooks` is the appspec's hooks section. */
function bundle(name: string, hooks: string, options: { destination?: string; after?: string } = {}): string {
  const dir = join(tmp.dir, name);
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  writeFileSync(join(dir, 'index.html'), 'hello\n');
  writeFileSync(join(dir, 'scripts/before.sh'), '#!/bin/sh\necho before\n');
  writeFileSync(join(dir, 'scripts/after.sh'), options.after ?? '#!/bin/sh\necho after\n');
  chmodSync(join(dir, 'scripts/before.sh'), 0o755);
  chmodSync(join(dir, 'scripts/after.sh'), 0o755);
  const destination = options.destination ?? join(tmp.dir, `${name}-dest`);
  writeFileSync(join(dir, 'appspec.yml'), `version: 0.0\nos: linux\nfiles:\n  - source: index.html\n    destination: ${destination}\nhooks:\n${hooks}`);
  return dir;
}

const deploy = (args: string[], cwd?: string) => runCli(['deploy', '-c', configFile, ...args], cwd ? { cwd } : {});

describe('validate and deploy agree, and a deployment that must fail fails before anything runs', () => {
  const hooks = '  BeforeInstall:\n    - location: scripts/before.sh\n  AfterInstal:\n    - location: scripts/after.sh\n';

  it('AfterInstal: is an error with its position and "did you mean" in validate', async () => {
    const dir = bundle('misspelt', hooks);
    const result = await runCli(['validate'], { cwd: dir });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain(
      'appspec.yml:9:3: error: AfterInstal is not a CodeDeploy lifecycle event, so its scripts would never run (did you mean AfterInstall? Event names are case-sensitive; a custom event runs only in a local deployment whose --events names it)',
    );
    // Declared as a custom event of the deployment, it is fine.
    expect((await runCli(['validate', '-e', 'BeforeInstall,AfterInstal'], { cwd: dir })).exitCode).toBe(0);
  });

  it('deploy refuses the same appspec with the same message before its first hook', async () => {
    const dir = bundle('misspelt-deploy', hooks);
    const result = await deploy([], dir);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).not.toContain('started');
    expect(result.stderr).toContain(`ERROR: The revision cannot run the events of this deployment, so nothing of it was installed or run:\n${dir}/appspec.yml:9:3: AfterInstal is not a CodeDeploy lifecycle event, so its scripts would never run (did you mean AfterInstall?`);
    expect(existsSync(join(tmp.dir, 'misspelt-deploy-dest'))).toBe(false);
  });

  it('a runas user the host lacks is a warning in validate, and on the terminal before deploy runs anything', async () => {
    const user = `cdanobody${process.pid}`;
    const dir = bundle('runas', `  AfterInstall:\n    - location: scripts/after.sh\n      runas: ${user}\n`);
    const validated = await runCli(['validate'], { cwd: dir });
    expect(validated.exitCode).toBe(0);
    expect(validated.stdout).toContain(`appspec.yml:8:17: warning: the AfterInstall script scripts/after.sh runs as user ${user}, who does not exist on this host`);
    const deployed = await deploy([], dir);
    const warning = `warning: ${dir}/appspec.yml:8:17: the AfterInstall script scripts/after.sh runs as user ${user}, who does not exist on this host`;
    expect(deployed.all).toContain(warning);
    expect(deployed.all.indexOf(warning)).toBeLessThan(deployed.all.indexOf('started'));
    expect(deployed.exitCode).toBe(1);
  });
});

/** A zip of every file under `dir` (modes kept), made with yazl so this needs no zip program. */
function zipOf(dir: string, file: string): string {
  execFileSync(process.execPath, ['-e', `
    const yazl = require('yazl'); const fs = require('fs'); const path = require('path');
    const dir = ${JSON.stringify(dir)};
    const zip = new yazl.ZipFile();
    for (const f of fs.readdirSync(dir, { recursive: true })) {
      const stat = fs.statSync(path.join(dir, f));
      if (stat.isFile()) zip.addFile(path.join(dir, f), f, { mode: stat.mode });
    }
    zip.outputStream.pipe(fs.createWriteStream(${JSON.stringify(file)})).on('close', () => {});
    zip.end();`], { cwd: REPO_ROOT });
  return file;
}

describe('a broken archive fails before any hook, even the previous revision\'s ApplicationStop', () => {
  const markers = join(tmp.dir, 'stop-markers');
  const stopHooks = ['BeforeBlockTraffic', 'AfterBlockTraffic', 'ApplicationStop'].map((event) => `  ${event}:\n    - location: scripts/mark.sh\n`).join('');
  /** A revision whose stop hooks leave a marker named for their event (they run when the next revision comes). */
  function stoppable(name: string, afterInstall: string): string {
    const dir = bundle(name, `${stopHooks}${afterInstall}`, { destination: join(tmp.dir, `${name.split('-')[1]}-dest`) });
    writeFileSync(join(dir, 'scripts/mark.sh'), `#!/bin/sh\nmkdir -p '${markers}'\ntouch '${markers}'/"$LIFECYCLE_EVENT"\n`);
    chmodSync(join(dir, 'scripts/mark.sh'), 0o755);
    return dir;
  }
  const packers = { tgz: (dir: string, file: string) => (execFileSync('tar', ['-czf', file, '-C', dir, '.']), file), zip: zipOf };
  const broken = [
    {
      what: 'AfterInstal:',
      afterInstall: '  AfterInstal:\n    - location: scripts/after.sh\n',
      message: '/appspec.yml:13:3: AfterInstal is not a CodeDeploy lifecycle event, so its scripts would never run (did you mean AfterInstall?',
    },
    {
      what: 'a missing script',
      afterInstall: '  AfterInstall:\n    - location: scripts/aftr.sh\n',
      message: '/appspec.yml:14:17: the AfterInstall script scripts/aftr.sh does not exist in the bundle (did you mean scripts/after.sh?',
    },
  ];

  describe.each(Object.entries(packers))('%s', (type, pack) => {
    const group = `stoppable-${type}`;
    const stopped = () => (existsSync(markers) ? readdirSync(markers) : []);
    beforeAll(async () => {
      rmSync(markers, { recursive: true, force: true });
      const good = pack(stoppable(`stoppable-${type}-v1`, '  AfterInstall:\n    - location: scripts/after.sh\n'), join(tmp.dir, `stoppable-v1.${type}`));
      const first = await deploy(['-l', good, '-g', group]);
      expect(first.exitCode, first.all).toBe(0);
      // The first revision has no previous one: nothing stopped yet.
      expect(stopped()).toEqual([]);
    });

    it.each(broken)('$what: exit 1, the positioned message, and no stop hook of the previous revision ran', async ({ what, afterInstall, message }) => {
      const archive = pack(stoppable(`stoppable-${type}-${what.replace(/\W+/g, '-')}`, afterInstall), join(tmp.dir, `stoppable-broken.${type}`));
      const result = await deploy(['-l', archive, '-g', group]);
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`ERROR: DownloadBundle failed with`);
      expect(result.stderr).toContain(`${archive}${message}`);
      expect(stopped()).toEqual([]);
      expect(result.stdout).not.toMatch(/^(BeforeBlockTraffic|AfterBlockTraffic|ApplicationStop): started$/m);
      expect(result.stdout).toContain('ApplicationStop: skipped (DownloadBundle failed)');
      expect(result.all).not.toContain('deployment-archive');

      // What the record (for `logs`) and the disk say: DownloadBundle failed; the refused revision is in
      // its deployment-archive, is not the most recent install, and left no staged folder.
      const folder = /from within folder (\S+)/.exec(result.stdout)?.[1] ?? '';
      const record = JSON.parse(readFileSync(join(folder, 'logs', 'deployment.json'), 'utf8')) as { events: { event: string; status: string }[] };
      expect(record.events.map(({ event, status }) => `${event} ${status}`)).toEqual(['DownloadBundle Failed']);
      expect(existsSync(join(folder, 'deployment-archive', 'appspec.yml'))).toBe(true);
      expect(existsSync(join(folder, 'deployment-archive-staged'))).toBe(false);
      expect(readFileSync(join(tmp.dir, 'root', 'deployment-instructions', `${group}_most_recent_install`), 'utf8')).not.toContain(folder);
      const listed = await runCli(['logs', '-c', configFile, '--json', '-g', group]);
      expect(JSON.parse(listed.stdout.split('\n')[0])).toMatchObject({ result: 'Failed', failedEvent: 'DownloadBundle' });
    });

    it('a good revision after them stops the first one (its stop hooks were due all along)', async () => {
      const good = pack(stoppable(`stoppable-${type}-v2`, '  AfterInstall:\n    - location: scripts/after.sh\n'), join(tmp.dir, `stoppable-v2.${type}`));
      const result = await deploy(['-l', good, '-g', group]);
      expect(result.exitCode, result.all).toBe(0);
      expect(stopped().sort()).toEqual(['AfterBlockTraffic', 'ApplicationStop', 'BeforeBlockTraffic']);
      // Reported in the usual order, though the download came first; the record says when it began.
      const lines = result.stdout.split('\n');
      expect(lines.indexOf('ApplicationStop: started')).toBeLessThan(lines.indexOf('DownloadBundle: started'));
      const folder = /from within folder (\S+)/.exec(result.stdout)?.[1] ?? '';
      const record = JSON.parse(readFileSync(join(folder, 'logs', 'deployment.json'), 'utf8')) as { startedAt: string; events: { event: string; startedAt: string; status: string }[] };
      const names = record.events.map(({ event }) => event);
      expect(names.slice(0, 5)).toEqual(['BeforeBlockTraffic', 'AfterBlockTraffic', 'ApplicationStop', 'DownloadBundle', 'BeforeInstall']);
      const download = record.events[3];
      expect(download.status).toBe('Succeeded');
      expect(record.startedAt).toBe(download.startedAt);
      expect(Date.parse(download.startedAt)).toBeLessThanOrEqual(Date.parse(record.events[0].startedAt));
      expect(readFileSync(join(tmp.dir, 'root', 'deployment-instructions', `${group}_most_recent_install`), 'utf8')).toContain(folder);
      expect(existsSync(join(folder, 'deployment-archive-staged'))).toBe(false);
    });
  });
});

describe('deploy works out the bundle type', () => {
  let zipped: string;
  beforeAll(() => {
    const dir = bundle('typed', '  AfterInstall:\n    - location: scripts/after.sh\n');
    zipped = join(tmp.dir, 'bundle.zip');
    execFileSync('tar', ['-czf', join(tmp.dir, 'bundle.tgz'), '-C', dir, '.']);
    // A zip made without the zip program, so this needs nothing but tar and node.
    execFileSync(process.execPath, ['-e', `
      const yazl = require('yazl'); const fs = require('fs'); const path = require('path');
      const zip = new yazl.ZipFile();
      for (const f of ['appspec.yml', 'index.html', 'scripts/before.sh', 'scripts/after.sh']) zip.addFile(path.join(${JSON.stringify(dir)}, f), f, { mode: 0o100755 });
      zip.outputStream.pipe(fs.createWriteStream(${JSON.stringify(zipped)}));
      zip.end();`], { cwd: REPO_ROOT });
  });

  it('without -t: from the archive, and says so', async () => {
    const result = await deploy(['-l', zipped, '-g', 'typed']);
    expect(result.stdout).toContain(`${zipped} is a zip archive (by its contents): deploying it as -t zip`);
    expect(result.exitCode).toBe(0);
    // The contents win over a misleading name.
    const renamed = join(tmp.dir, 'bundle.bin');
    copyFileSync(join(tmp.dir, 'bundle.tgz'), renamed);
    const tgz = await deploy(['-l', renamed, '-g', 'typed']);
    expect(tgz.stdout).toContain(`${renamed} is a gzip-compressed tar (tgz) (by its contents): deploying it as -t tgz`);
    expect(tgz.exitCode, tgz.all).toBe(0);
  });

  it('a -t that contradicts the file says what the file looks like', async () => {
    const asDirectory = await deploy(['-l', zipped, '-t', 'directory']);
    expect(asDirectory.exitCode).toBe(1);
    expect(asDirectory.stderr).toBe(`ERROR: location ${zipped} is specified with type directory but it is a file; it looks like a zip archive: give -t zip, or leave out -t`);
    const asTar = await deploy(['-l', zipped, '-t', 'tar']);
    expect(asTar.stderr).toBe(`ERROR: location ${zipped} is specified with type tar but it looks like a zip archive: give -t zip, or leave out -t`);
  });

  it('validate -t compares the type with the file as deploy does, and says what the file looks like', async () => {
    const tgz = join(tmp.dir, 'bundle.tgz');
    const asZip = await runCli(['validate', tgz, '-t', 'zip']);
    expect(asZip.exitCode).toBe(1);
    expect(asZip.stdout).toContain(`error: location ${tgz} is specified with type zip but it looks like a gzip-compressed tar (tgz): give -t tgz, or leave out -t`);
    expect(asZip.stdout).not.toContain('cannot unpack');
    const asDirectory = await runCli(['validate', zipped, '-t', 'directory']);
    expect(asDirectory.stdout).toContain(`error: location ${zipped} is specified with type directory but it is a file; it looks like a zip archive: give -t zip, or leave out -t`);
    const folder = join(tmp.dir, 'typed');
    const folderAsZip = await runCli(['validate', folder, '-t', 'zip']);
    expect(folderAsZip.stdout).toContain(`error: location ${folder} is specified as a compressed local file but it is a directory: leave out -t (or give -t directory) for a folder`);
    // tar and tgz read the same files, so either fits either; and the right type passes.
    expect((await runCli(['validate', tgz, '-t', 'tar'])).exitCode).toBe(0);
    expect((await runCli(['validate', zipped, '-t', 'zip'])).exitCode).toBe(0);
  });
});

describe('deploy shows what failed', () => {
  it('a failing hook: the last lines of its output on the terminal', async () => {
    const dir = bundle('failing', '  AfterInstall:\n    - location: scripts/after.sh\n', { after: '#!/bin/sh\necho "migrating"\necho "table users is locked" >&2\nexit 3\n' });
    const result = await deploy([], dir);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('ERROR: AfterInstall failed with ScriptFailed (error code 4): Script at specified location: scripts/after.sh failed with exit code 3\n' +
      'The last output of scripts/after.sh:\n  LifecycleEvent - AfterInstall\n  Script - scripts/after.sh\n  [stdout]migrating\n  [stderr]table users is locked');
  });

  it('a file that is already there: how to choose', async () => {
    const destination = join(tmp.dir, 'taken');
    mkdirSync(destination);
    writeFileSync(join(destination, 'index.html'), 'someone else\'s\n');
    const result = await deploy([], bundle('taken-bundle', '', { destination }));
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`a specified file already exists at this location: ${destination}/index.html`);
    expect(result.stderr).toContain('run again with -b OVERWRITE; to keep them, -b RETAIN; or set file_exists_behavior: OVERWRITE (or RETAIN) in the AppSpec file');
  });

  it('a YAML error names the user\'s file, also inside an archive', async () => {
    const dir = bundle('broken', '');
    writeFileSync(join(dir, 'appspec.yml'), 'version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: x\n   bad: [\n');
    const folder = await deploy([], dir);
    expect(folder.stderr).toContain(`${dir}/appspec.yml:6:1: YAML syntax error`);
    const archive = join(tmp.dir, 'broken.tgz');
    execFileSync('tar', ['-czf', archive, '-C', dir, '.']);
    const packed = await deploy(['-l', archive]);
    expect(packed.exitCode).toBe(1);
    expect(packed.stderr).toContain(`${archive}/appspec.yml:6:1: YAML syntax error`);
    expect(packed.all).not.toContain('deployment-archive/appspec.yml');
  });

  it.skipIf(!isRoot)('a user without root and without -c: the deployment root needs root, and how to point -c elsewhere', async () => {
    const user = `cdanewbie${process.pid % 100000}`;
    execFileSync('useradd', ['--no-create-home', '--shell', '/bin/sh', user]);
    try {
      const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }));
      const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }));
      const dir = bundle('non-root', '');
      const result = await runCli(['deploy'], { cwd: dir, uid, gid, env: { HOME: tmp.dir } });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`needs root, and ${user} cannot write it. Run deploy as root (sudo), or point -c at an agent configuration whose :root_dir: (and :log_dir:) ${user} can write, for example:`);
      expect(result.stderr).toContain('codedeploy-agent deploy -c ~/codedeploy.yml');
      expect(result.all).not.toContain('scripts.log');
      // The daemon, started by hand without root, says the same.
      const daemon = await runCli(['run'], { uid, gid, env: { HOME: tmp.dir, AWS_EC2_METADATA_DISABLED: 'true' }, timeout: 30_000 });
      expect(daemon.exitCode).toBe(1);
      expect(daemon.all).toContain('The agent runs as root (systemctl start codedeploy-agent, or sudo codedeploy-agent run); to try it as another user, point -c at a configuration');
    } finally {
      execFileSync('userdel', [user]);
    }
  });
});

describe('messages that say what was checked', () => {
  it('a configuration YAML error gives its position once', async () => {
    const bad = join(tmp.dir, 'bad-agent.yml');
    writeFileSync(bad, ':root_dir: /tmp\n  :log_dir: [\n');
    const result = await runCli(['deploy', '-c', bad]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^ERROR: An error occurred loading the CodeDeploy agent config file at .*bad-agent\.yml\. Error message: [^\n]+ \(line 1, column 12\)$/);
    expect(result.stderr.match(/line 1/g)).toHaveLength(1);
  });
});
