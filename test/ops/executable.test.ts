/**
 * The single executable on its own: codedeploy-local through a link, a revision of many files (which the
 * file-job pool's worker threads, started from embedded source text, create), and the arm64 build run
 * under qemu user emulation (Debian's qemu-user-static with the arm64 C libraries).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, linkSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_VERSION } from '../../src/version.js';
import { FakeCommandsService, makeSpec, TEST_CREDENTIALS } from '../doubles/commands-service.js';
import { executablePath, REPO_ROOT } from '../helpers/cli.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeTempDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = makeTempDir('cda-executable-'); });
afterAll(() => tmp?.cleanup());

/** A config whose folders are all under `dir`. */
function config(dir: string): string {
  const file = join(dir, 'agent.yml');
  return writeAgentConfig(file, { root_dir: join(dir, 'root'), log_dir: join(dir, 'log'), pid_dir: join(dir, 'pid') });
}

/** examples/sample-app as a tgz whose files go to `destination`. */
function sampleAppTgz(dir: string, destination: string): string {
  const revision = join(dir, 'sample-app');
  cpSync(join(REPO_ROOT, 'examples/sample-app'), revision, { recursive: true });
  const appspec = join(revision, 'appspec.yml');
  writeFileSync(appspec, readFileSync(appspec, 'utf8').replaceAll('/tmp/codedeploy-sample-app', destination));
  const tgz = join(dir, 'sample-app.tgz');
  execFileSync('tar', ['-czf', tgz, '-C', revision, '.']);
  return tgz;
}

/** What a successful local deployment of the sample app leaves behind. */
function expectSampleAppDeployed(output: string, destination: string): void {
  expect(output).toContain('AppSpec file valid. Local deployment successful');
  expect(output).toContain('ValidateService: succeeded');
  expect(readFileSync(join(destination, 'public/index.html'), 'utf8')).toContain('<');
  expect(statSync(join(destination, 'run.sh')).mode & 0o777).toBe(0o755);
  expect(statSync(join(destination, 'etc/app.conf')).mode & 0o777).toBe(0o640);
}

const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: '/nonexistent' };

describe('the x64 executable', () => {
  it('is codedeploy-local when called through a link of that name: deploys the sample app from a tgz', async () => {
    const dir = join(tmp.dir, 'local');
    mkdirSync(dir);
    const local = join(dir, 'codedeploy-local');
    symlinkSync(executablePath(), local);
    const destination = join(dir, 'app');
    const result = await execa(local, ['-l', sampleAppTgz(dir, destination), '-t', 'tgz', '-c', config(dir)], { reject: false, all: true, env, extendEnv: false });
    expect(result.exitCode, String(result.all)).toBe(0);
    expectSampleAppDeployed(String(result.stdout), destination);
    expect((await execa(local, ['--help'], { env, extendEnv: false })).stdout).toContain('Usage: codedeploy-local');
  });

  it('creates a revision of many files through its worker threads', async () => {
    const dir = join(tmp.dir, 'many');
    const revision = join(dir, 'revision');
    const files = 6000;
    for (let i = 0; i < files; i++) {
      const folder = join(revision, 'content', `d${i % 30}`);
      if (i < 30) mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, `f${i}.txt`), `file ${i}\n`);
    }
    const destination = join(dir, 'dest');
    writeFileSync(join(revision, 'appspec.yml'), `version: 0.0\nos: linux\nfiles:\n  - source: content\n    destination: ${destination}\n`);
    const tgz = join(dir, 'many.tgz');
    execFileSync('tar', ['-czf', tgz, '-C', revision, '.']);
    const child = execa(executablePath(), ['deploy', '-l', tgz, '-t', 'tgz', '-c', config(dir)], { reject: false, all: true, env, extendEnv: false });
    // Node.js names a worker_threads thread "WorkerThread": watch the process's threads while it deploys.
    const threadNames = new Set<string>();
    let done = false;
    void child.finally(() => { done = true; });
    while (!done) {
      try {
        for (const task of readdirSync(`/proc/${child.pid}/task`)) threadNames.add(readFileSync(`/proc/${child.pid}/task/${task}/comm`, 'utf8').trim());
      } catch {
        // between threads, or already gone
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const result = await child;
    expect(result.exitCode, String(result.all)).toBe(0);
    expect([...threadNames]).toContain('WorkerThread');
    const installed = readdirSync(destination).flatMap((folder) => readdirSync(join(destination, folder)).map((name) => join(folder, name)));
    expect(installed.length).toBe(files);
    expect(readFileSync(join(destination, 'd7', 'f5977.txt'), 'utf8')).toBe('file 5977\n');
  });
});

describe('the x64 executable in an installation of its own', () => {
  it('sends the .version beside its bin folder when <root_dir>/.. has none', async () => {
    const service = await FakeCommandsService.start({ longPollMs: 300 });
    const dir = join(tmp.dir, 'prefix-install');
    mkdirSync(join(dir, 'prefix/bin'), { recursive: true });
    // A hard link: the program's own path is <dir>/prefix/bin/codedeploy-agent.
    linkSync(executablePath(), join(dir, 'prefix/bin/codedeploy-agent'));
    writeFileSync(join(dir, 'prefix/.version'), 'agent_version: PROGRAM_TEST_1\n');
    writeFileSync(join(dir, 'onprem.yml'), [`aws_access_key_id: ${TEST_CREDENTIALS.accessKeyId}`, `aws_secret_access_key: ${TEST_CREDENTIALS.secretAccessKey}`, 'iam_user_arn: arn:aws:iam::123456789012:user/version-test', 'region: us-east-1', ''].join('\n'));
    writeAgentConfig(join(dir, 'agent.yml'), {
      root_dir: join(dir, 'elsewhere/deployment-root'), log_dir: join(dir, 'log'), pid_dir: join(dir, 'pid'),
      on_premises_config_file: join(dir, 'onprem.yml'), deploy_control_endpoint: service.url, startup_splay_seconds: 0, wait_between_runs: 0.2,
    });
    const agent = execa(join(dir, 'prefix/bin/codedeploy-agent'), ['run', '-c', join(dir, 'agent.yml')], { reject: false, all: true, env: { ...env, AWS_EC2_METADATA_DISABLED: 'true' }, extendEnv: false });
    try {
      await service.waitFor(() => service.requestsFor('PollHostCommand')[0], 20_000, 'the first poll');
      expect(service.requestsFor('PollHostCommand')[0].headers['x-amz-codedeploy-agent-version']).toBe('PROGRAM_TEST_1');
    } finally {
      agent.kill('SIGTERM');
      await agent;
      await service.close();
    }
  });
});

describe('the x64 executable as the daemon', () => {
  it('runs a deployment through its command worker, which is the executable itself started as command-worker', async () => {
    const service = await FakeCommandsService.start({ longPollMs: 300 });
    const dir = join(tmp.dir, 'daemon');
    mkdirSync(dir);
    const host = 'arn:aws:iam::123456789012:user/executable-daemon-test';
    writeFileSync(join(dir, 'onprem.yml'), [`aws_access_key_id: ${TEST_CREDENTIALS.accessKeyId}`, `aws_secret_access_key: ${TEST_CREDENTIALS.secretAccessKey}`, `iam_user_arn: ${host}`, 'region: us-east-1', ''].join('\n'));
    writeFileSync(join(dir, 'agent.yml'), [
      `:root_dir: ${join(dir, 'root')}`, `:log_dir: ${join(dir, 'log')}`, `:pid_dir: ${join(dir, 'pid')}`, ':verbose: true',
      `:on_premises_config_file: ${join(dir, 'onprem.yml')}`, `:deploy_control_endpoint: ${service.url}`, ':startup_splay_seconds: 0', ':wait_between_runs: 0.2', '',
    ].join('\n'));
    const destination = join(dir, 'app');
    const revision = { RevisionType: 'Local File', LocalRevision: { Location: sampleAppTgz(dir, destination), BundleType: 'tgz' } };
    const agent = execa(executablePath(), ['run', '-c', join(dir, 'agent.yml')], { reject: false, all: true, env: { ...env, AWS_EC2_METADATA_DISABLED: 'true' }, extendEnv: false });
    try {
      const deployment = service.addDeployment({ hostIdentifier: host, spec: makeSpec({ revision }) });
      await service.waitForDeployment(deployment, 60_000);
      expect(deployment.status).toBe('Succeeded');
      expect(readFileSync(join(destination, 'public/index.html'), 'utf8')).toContain('<');
      const worker = /Started the command worker \(pid (\d+)\)/.exec(readFileSync(join(dir, 'log', 'codedeploy-agent.log'), 'utf8'))?.[1];
      expect(worker).toBeDefined();
      // Still up (it stops 10 s after the last command): the same file, as a hidden subcommand.
      expect(readFileSync(`/proc/${worker}/cmdline`, 'utf8').split('\0').slice(1, -1)).toEqual(['command-worker']);
      expect(realpathSync(`/proc/${worker}/exe`)).toBe(realpathSync(executablePath()));
    } finally {
      agent.kill('SIGTERM');
      const result = await agent;
      expect(result.exitCode, String(result.all)).toBe(0);
      await service.close();
    }
  });
});

/** How to run arm64 programs here (qemu with the arm64 C libraries), or why not. */
function arm64Runner(): { runner?: string[]; reason?: string } {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e',
    "import { runnerFor, cannotRunReason } from './scripts/runtime.mjs'; console.log(JSON.stringify({ runner: runnerFor('arm64'), reason: cannotRunReason('arm64') }))"],
  { cwd: REPO_ROOT, encoding: 'utf8' });
  return JSON.parse(out);
}

const arm64 = arm64Runner();
if (arm64.reason) {
  if (process.env.CI) throw new Error(`${arm64.reason}; CI must run the arm64 test (.ci/run installs qemu-user-static and the arm64 libraries)`);
  console.warn(`skipped the arm64 executable test: ${arm64.reason}`);
}

describe.skipIf(arm64.reason !== undefined)('the arm64 executable under qemu', () => {
  let executable: string;
  const run = (file: string, args: string[], options = {}) => execa(arm64.runner![0], [...arm64.runner!.slice(1), file, ...args], { reject: false, all: true, env, extendEnv: false, ...options });

  beforeAll(() => {
    executable = join(tmp.dir, 'arm64', 'codedeploy-agent');
    execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/sea.mjs'), '--arch', 'arm64', '--out', executable], { stdio: ['ignore', 'ignore', 'inherit'] });
  }, 600_000);

  it('is an aarch64 program that says its version', async () => {
    const header = readFileSync(executable).subarray(0, 20);
    expect(header.readUInt16LE(18)).toBe(0xb7);
    const result = await run(executable, ['--version']);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(String(result.stdout).trim()).toBe(AGENT_VERSION);
  }, 120_000);

  it('validates the sample app and deploys it from a tgz as codedeploy-local', async () => {
    const dir = join(tmp.dir, 'arm64-local');
    mkdirSync(dir);
    const destination = join(dir, 'app');
    const tgz = sampleAppTgz(dir, destination);
    const validate = await run(executable, ['validate', join(dir, 'sample-app')]);
    expect(validate.exitCode, String(validate.all)).toBe(0);
    const local = join(dir, 'codedeploy-local');
    symlinkSync(executable, local);
    const result = await run(local, ['-l', tgz, '-t', 'tgz', '-c', config(dir)]);
    expect(result.exitCode, String(result.all)).toBe(0);
    expectSampleAppDeployed(String(result.stdout), destination);
  }, 300_000);
});
