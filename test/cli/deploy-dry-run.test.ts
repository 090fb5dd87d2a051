import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DryRunPlan } from '../../src/deployment/dry-run.js';
import { AGENT_BIN, runCli } from '../helpers/cli.js';
import { missingTool } from '../helpers/prerequisites.js';
import { findTool } from '../../src/util/find-tool.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * `deploy --dry-run` end to end, as a child process: it prints what the real run does (checked by
 * running the real deployment right after and comparing), lists every problem that would stop it,
 * and writes nothing anywhere: the deployment root, the log folder, the destination and $TMPDIR are
 * the same byte for byte (and inode for inode) before and after, also when the root does not exist.
 */
const tmp = makeTempDir('cda-dry-run-');
afterAll(tmp.cleanup);

const root = join(tmp.dir, 'root');
const logDir = join(tmp.dir, 'log');
const childTmp = join(tmp.dir, 'child-tmp');
const configFile = join(tmp.dir, 'agent.yml');

beforeAll(() => {
  // The AfterInstall hook runs as nobody, who must reach its script under the deployment root.
  chmodSync(tmp.dir, 0o755);
  mkdirSync(childTmp);
  writeAgentConfig(configFile, { root_dir: root, log_dir: logDir, pid_dir: join(tmp.dir, 'pid') });
});

interface BundleOptions {
  destination: string;
  files?: Record<string, string>;
  extraAppspec?: string;
  hooks?: string;
}

function makeBundle(name: string, options: BundleOptions): string {
  const dir = join(tmp.dir, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  for (const [path, text] of Object.entries(options.files ?? { 'index.html': 'v1\n' })) {
    mkdirSync(join(dir, 'content', path, '..'), { recursive: true });
    writeFileSync(join(dir, 'content', path), text);
  }
  writeFileSync(join(dir, 'scripts', 'hook.sh'), '#!/bin/sh\necho "hook $LIFECYCLE_EVENT"\n');
  chmodSync(join(dir, 'scripts', 'hook.sh'), 0o755);
  const hooks = options.hooks ?? 'hooks:\n  ApplicationStop:\n    - location: scripts/hook.sh\n      timeout: 45\n  AfterInstall:\n    - location: scripts/hook.sh\n      timeout: 30\n      runas: nobody\n';
  writeFileSync(
    join(dir, 'appspec.yml'),
    `version: 0.0\nos: linux\nfiles:\n  - source: content\n    destination: ${options.destination}\n${options.extraAppspec ?? ''}${hooks}`,
  );
  return dir;
}

function tgz(dir: string): string {
  const file = `${dir}.tgz`;
  execFileSync('tar', ['-czf', file, '-C', dir, '.']);
  return file;
}

function dryRun(args: string[], env: Record<string, string> = {}) {
  return runCli(['deploy', '-c', configFile, '--dry-run', ...args], { env: { TMPDIR: childTmp, ...env } });
}

async function dryRunJson(args: string[]): Promise<DryRunPlan> {
  const result = await dryRun([...args, '--json']);
  expect(result.stderr).not.toMatch(/ERROR/);
  return JSON.parse(result.stdout) as DryRunPlan;
}

/** Everything about a tree a write could change (not atime: reading moves it), or 'absent'. */
function snapshot(path: string): string[] | 'absent' {
  if (!existsSync(path) && !isLink(path)) return 'absent';
  const lines: string[] = [];
  const walk = (current: string) => {
    const stats = lstatSync(current);
    const content = stats.isFile() ? createHash('sha256').update(readFileSync(current)).digest('hex') : stats.isSymbolicLink() ? readlinkSync(current) : '';
    lines.push(`${current} ${stats.mode.toString(8)} ${stats.uid}:${stats.gid} ${stats.size} ${stats.ino} ${stats.mtimeMs} ${stats.ctimeMs} ${content}`);
    if (stats.isDirectory()) for (const name of readdirSync(current).sort()) walk(join(current, name));
  };
  walk(path);
  return lines;
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

const watched = () => [root, logDir, childTmp, join(tmp.dir, 'dest'), join(tmp.dir, 'dest-conflict')].map((path) => [path, snapshot(path)]);

describe('deploy --dry-run writes nothing anywhere', () => {
  it('with no deployment root yet: folder, tgz and zip bundles, text and JSON', async () => {
    const destination = join(tmp.dir, 'dest');
    const dir = makeBundle('fresh', { destination, files: { 'index.html': 'v1\n', 'sub/data.txt': 'data\n' } });
    const archives = [tgz(dir)];
    if (!missingTool('zip')) {
      execFileSync('zip', ['-qr', `${dir}.zip`, '.'], { cwd: dir });
      archives.push(`${dir}.zip`);
    }
    const before = watched();
    expect(snapshot(root)).toBe('absent');
    for (const location of [dir, ...archives]) {
      const text = await dryRun(['-l', location]);
      expect(text.stderr).toBe('');
      expect(text.exitCode, text.stdout).toBe(0);
      expect(text.stdout).toContain(`+ ${destination}/index.html (new)`);
      expect(text.stdout).toContain(`+ ${destination}/sub/ (folder created)`);
      expect(text.stdout).toContain('The deployment would get past Install\'s checks.');
      const json = await dryRunJson(['-l', location]);
      expect(json.ok).toBe(true);
    }
    expect(watched()).toEqual(before);
  });
});

describe('deploy --dry-run shows what the real run does', () => {
  const destination = join(tmp.dir, 'dest');
  const group = 'plan-group';

  it('after a first deployment: replaced, removed, new and kept files, permissions, the previous revision\'s ApplicationStop', async () => {
    const v1 = makeBundle('v1', { destination, files: { 'index.html': 'v1\n', 'old.txt': 'old\n', 'sub/data.txt': 'data\n' } });
    const first = await runCli(['deploy', '-c', configFile, '-l', v1, '-g', group]);
    expect(first.exitCode, first.all).toBe(0);
    // Someone else's file, where v2 puts one: kept under RETAIN.
    writeFileSync(join(destination, 'local.conf'), 'mine\n');
    symlinkSync('index.html', join(tmp.dir, 'v1', 'content', 'unused-link'));

    const v2 = makeBundle('v2', {
      destination,
      files: { 'index.html': 'v2\n', 'local.conf': 'theirs\n', 'new/page.html': 'new\n' },
      extraAppspec: `file_exists_behavior: RETAIN\npermissions:\n  - object: ${destination}\n    pattern: "*.html"\n    mode: 640\n    owner: nobody\n    type: [file]\n`,
    });
    const archive = tgz(v2);
    const before = watched();
    const text = await dryRun(['-l', archive, '-g', group]);
    expect(watched()).toEqual(before);
    expect(text.exitCode, text.stdout).toBe(0);
    const lines = text.stdout.split('\n');
    expect(lines).toEqual(expect.arrayContaining([
      `~ ${destination}/index.html (replaced, the previous deployment's removed first)`,
      `= ${destination}/local.conf (kept, RETAIN)`,
      `+ ${destination}/new/ (folder created)`,
      `+ ${destination}/new/page.html (new)`,
      `- ${destination}/old.txt (removed, installed by the previous deployment)`,
      `- ${destination}/sub/data.txt (removed, installed by the previous deployment)`,
      `- ${destination}/sub (removed, installed by the previous deployment)`,
      `  chmod 0640 ${destination}/index.html`,
      `  chown nobody ${destination}/index.html`,
      '  BeforeInstall       nothing to run',
      '  AfterInstall        scripts/hook.sh  (timeout 30 s, as nobody)',
    ]));
    const stop = lines.find((line) => line.startsWith('  ApplicationStop'));
    expect(stop).toMatch(new RegExp(`from the previous revision ${root}/${group}/d-\\w+-local: *$`));
    expect(lines[lines.indexOf(stop!) + 1].trim()).toBe('scripts/hook.sh  (timeout 45 s, as root)');
    expect(lines.find((line) => line.startsWith('  DownloadBundle'))).toMatch(new RegExp(`unpack \\d+ entries \\(\\d+ bytes\\) of ${archive} into ${root}/${group}/d-\\w+-local/deployment-archive`));

    // The real run does what the plan said: every file the plan names ends up as it said.
    const plan = await dryRunJson(['-l', archive, '-g', group]);
    const real = await runCli(['deploy', '-c', configFile, '-l', archive, '-g', group]);
    expect(real.exitCode, real.all).toBe(0);
    for (const file of plan.files) {
      if (file.change === 'remove') expect(existsSync(file.path), file.path).toBe(false);
      else expect(existsSync(file.path), file.path).toBe(true);
    }
    expect(readFileSync(join(destination, 'local.conf'), 'utf8')).toBe('mine\n');
    expect(readFileSync(join(destination, 'index.html'), 'utf8')).toBe('v2\n');
    expect((lstatSync(join(destination, 'index.html')).mode & 0o777).toString(8)).toBe('640');
    expect(real.stdout).toContain('ApplicationStop: succeeded');
  });
});

describe('deploy --dry-run lists every problem a real run would stop on', () => {
  it('an appspec typo (with file:line:col), a missing script, files already there, an unknown owner; exit 1; JSON says the same', async () => {
    const destination = join(tmp.dir, 'dest-conflict');
    mkdirSync(destination, { recursive: true });
    writeFileSync(join(destination, 'index.html'), 'already here\n');
    const dir = makeBundle('problems', {
      destination,
      extraAppspec: `permissions:\n  - object: ${destination}\n    owner: nosuchuser${process.pid}\n    type: [file]\n`,
      hooks: 'hooks:\n  AfterInstal:\n    - location: scripts/hook.sh\n  ApplicationStart:\n    - location: scripts/hok.sh\n',
    });
    const before = watched();
    const text = await dryRun(['-l', dir]);
    expect(watched()).toEqual(before);
    expect(text.exitCode).toBe(1);
    expect(text.stdout).toMatch(new RegExp(`x ${dir}/appspec\\.yml:11:3: .*AfterInstal.*did you mean AfterInstall`));
    expect(text.stdout).toMatch(new RegExp(`x ${dir}/appspec\\.yml:14:17: the ApplicationStart script scripts/hok.sh does not exist in the bundle \\(did you mean scripts/hook.sh\\?`));
    expect(text.stdout).toContain(`x The deployment failed because a specified file already exists at this location: ${destination}/index.html`);
    expect(text.stdout).toContain('The deployment would fail: 3 problems above.');

    // The owner is checked once the plan exists: a bundle without the conflict shows it.
    rmSync(join(destination, 'index.html'));
    const json = await dryRunJson(['-l', dir]);
    expect(json.ok).toBe(false);
    expect(json.problems.map((problem) => problem.message)).toEqual(expect.arrayContaining([
      expect.stringContaining(`sets the owner of ${destination}/index.html to nosuchuser${process.pid}, but there is no user named`),
    ]));
    expect(json.problems.find((problem) => problem.message.includes('AfterInstal'))).toMatchObject({ file: `${dir}/appspec.yml`, line: 11, col: 3 });
  });

  it('ACL and SELinux changes are listed; a tool the host lacks for them is a problem', async () => {
    const destination = join(tmp.dir, 'dest-acl');
    const dir = makeBundle('acl', {
      destination,
      extraAppspec: `permissions:\n  - object: ${destination}\n    pattern: "**"\n    acls:\n      - u:nobody:r\n    context:\n      type: httpd_sys_content_t\n      range: s0\n    type: [file]\n`,
    });
    const result = await dryRun(['-l', dir]);
    expect(result.stdout).toContain(`  setfacl user:nobody:r-- ${destination}/index.html`);
    expect(result.stdout).toContain(`  semanage fcontext -a -t httpd_sys_content_t -r s0 ${destination}/index.html`);
    const semanage = findTool('semanage');
    const setfacl = findTool('setfacl');
    expect(result.stdout.includes('but semanage is not installed on this host')).toBe(semanage === undefined);
    expect(result.stdout.includes('but setfacl is not installed on this host')).toBe(setfacl === undefined);
    expect(result.exitCode).toBe(semanage === undefined || setfacl === undefined ? 1 : 0);
    expect(existsSync(destination)).toBe(false);
  });

  it('an archive the agent refuses to unpack: the refusal, and the events not reached', async () => {
    const bad = join(tmp.dir, 'escape.tar');
    const src = join(tmp.dir, 'escape-src');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'appspec.yml'), 'version: 0.0\nos: linux\n');
    symlinkSync('/etc', join(src, 'etc-link'));
    execFileSync('tar', ['-cf', bad, '-C', src, '.']);
    const result = await dryRun(['-l', bad]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain(`x ${bad}: DownloadBundle would fail: Refused to unpack bundle entry './etc-link': it is a symbolic link to the absolute path '/etc'`);
    expect(result.stdout).toMatch(/Install +not reached/);
  });

  it('--json goes with --dry-run only', async () => {
    const result = await runCli(['deploy', '-c', configFile, '--json']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('--json goes with --dry-run');
  });
});

describe.skipIf(missingTool('script'))('deploy --dry-run colours', () => {
  const dir = () => makeBundle('colour', { destination: join(tmp.dir, 'dest-colour') });
  /** Runs through `script`, which gives the child a pseudo-terminal as its stdout. */
  const onTerminal = async (env: Record<string, string>) => {
    const command = [process.execPath, AGENT_BIN, 'deploy', '-c', configFile, '--dry-run', '-l', dir()].map((word) => `'${word}'`).join(' ');
    return (await execa('script', ['-qec', command, '/dev/null'], { env: { ...env, TMPDIR: childTmp }, reject: false })).stdout;
  };

  it('on a terminal: coloured', async () => {
    const output = await onTerminal({ NO_COLOR: '' });
    expect(output).toContain('\u001b[32m+ ');
    expect(output).toContain('\u001b[1mEvents, in order:');
  });

  it('on a terminal with NO_COLOR, or into a pipe: plain', async () => {
    expect(await onTerminal({ NO_COLOR: '1' })).not.toContain('\u001b[');
    const piped = await dryRun(['-l', dir()]);
    expect(piped.stdout).toContain('+ ');
    expect(piped.stdout).not.toContain('\u001b[');
  });
});
