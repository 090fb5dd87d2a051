import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = makeTempDir('cda-validate-')));
afterEach(() => cleanup());

const GOOD = `version: 0.0
os: linux
files:
  - source: app
    destination: /var/www/app
hooks:
  ApplicationStart:
    - location: scripts/start.sh
      timeout: 60
`;

/** Runs `codedeploy-agent validate …` and returns its exit code and stdout as text. */
async function validate(args: string[], cwd?: string): Promise<{ exitCode: number | undefined; stdout: string }> {
  const result = await runCli(['validate', ...args], cwd === undefined ? {} : { cwd });
  return { exitCode: result.exitCode, stdout: String(result.stdout) };
}

function put(root: string, path: string, text: string, mode = 0o755): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
  chmodSync(join(root, path), mode);
}

function goodBundle(root: string, appspecName = 'appspec.yml'): void {
  put(root, appspecName, GOOD, 0o644);
  put(root, 'scripts/start.sh', '#!/bin/sh\necho started\n');
  put(root, 'app/index.html', '<h1>hi</h1>', 0o644);
}

describe('codedeploy-agent validate', () => {
  it('accepts a good bundle folder and exits 0', async () => {
    goodBundle(join(dir, 'bundle'));
    const result = await validate(['bundle'], dir);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('bundle: AppSpec file valid');
  });

  it('validates the current folder by default', async () => {
    goodBundle(dir);
    const result = await validate([], dir);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('.: AppSpec file valid');
  });

  it('validates an appspec file given directly, checking scripts beside it', async () => {
    put(dir, 'appspec.yml', GOOD, 0o644);
    put(dir, 'app/x', 'x', 0o644);
    const result = await validate(['appspec.yml'], dir);
    expect(result.exitCode).toBe(1);
    expect(result.stdout.split('\n')).toEqual([
      'appspec.yml:8:17: error: the ApplicationStart script scripts/start.sh does not exist in the bundle (add it to the bundle, or fix the path: it is relative to the folder that holds the appspec)',
      'appspec.yml: 1 error, 0 warnings',
    ]);
  });

  it('reports every problem at once, with positions and hints, and exits 1', async () => {
    const result = await validate(['examples/bad-appspecs/common-mistakes'], REPO_ROOT);
    expect(result.exitCode).toBe(1);
    const file = 'examples/bad-appspecs/common-mistakes/appspec.yml';
    const lines = result.stdout.split('\n');
    expect(lines.map((line) => (line.startsWith(`${file}:`) ? /^[^:]+:(\d+:\d+: \w+):/.exec(line)?.[1] : line))).toEqual([
      '6:13: error',
      '8:5: warning',
      '12:11: error',
      '14:3: error',
      '17:5: error',
      '19:17: error',
      '20:16: error',
      '21:3: error',
      '22:17: error',
      '23:23: error',
      'examples/bad-appspecs/common-mistakes: 9 errors, 1 warning',
    ]);
    expect(lines[2]).toBe(`${file}:12:11: error: permissions[0].type must be a list of file and/or directory, but it is the text "file" (write it as a list: type: [file])`);
    expect(lines[5]).toContain('scripts/check.sh does not exist in the bundle (did you mean scripts/Check.sh?');
  });

  it('prints {ok, problems, warnings} with --json', async () => {
    put(dir, 'appspec.yml', 'version: 0.0\nos: linux\nhooks:\n  Install:\n    - location: a.sh\ncolour: blue\n', 0o644);
    put(dir, 'a.sh', '#!/bin/sh\n');
    const result = await validate(['--json'], dir);
    expect(result.exitCode).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report).toEqual({
      ok: false,
      problems: [
        {
          file: 'appspec.yml',
          line: 4,
          col: 3,
          message: 'Install is a step the agent performs itself; it cannot run scripts',
          hint: 'put these scripts under BeforeInstall or AfterInstall',
        },
      ],
      warnings: [{ file: 'appspec.yml', line: 6, col: 1, message: 'unknown top-level key colour is ignored', hint: expect.any(String) }],
    });
  });

  it('exits 0 with warnings only, and prints them', async () => {
    goodBundle(dir);
    put(dir, 'scripts/start.sh', '#!/bin/sh\necho\n', 0o644);
    const result = await validate([dir]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout.split('\n')).toEqual([
      `${dir}/appspec.yml:8:17: warning: the ApplicationStart script scripts/start.sh is not executable; the agent will make it executable (run chmod +x scripts/start.sh before packing the bundle)`,
      `${dir}: AppSpec file valid (1 warning)`,
    ]);
  });

  it('finds appspec.yaml, and a custom name with -A', async () => {
    goodBundle(join(dir, 'yaml'), 'appspec.yaml');
    expect((await validate(['yaml'], dir)).exitCode).toBe(0);
    goodBundle(join(dir, 'custom'), 'deploy/spec.yml');
    const result = await validate(['custom', '--appspec-filename', 'deploy/spec.yml'], dir);
    // Paths in the appspec stay relative to the bundle root, not to the appspec's folder.
    expect(result.stdout).toBe('custom: AppSpec file valid');
  });

  it('reports a bundle without an appspec with the anchor message', async () => {
    mkdirSync(join(dir, 'empty'));
    const result = await validate(['empty', '-A', 'my.yml'], dir);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain('error: The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory at revision-relative path "my.yml"');
    expect(result.stdout).toContain('the revision has no my.yml: add it at the top of the bundle, or fix the name given with --appspec-filename (-A)');
    expect(result.stdout).toMatch(/\nempty: 1 error, 0 warnings$/);
  });

  it('names the archive, not a temporary folder, when an archive holds no appspec', async () => {
    put(join(dir, 'content'), 'index.html', 'x', 0o644);
    execFileSync('tar', ['-cf', join(dir, 'no-appspec.tar'), '-C', join(dir, 'content'), '.']);
    const result = await validate(['no-appspec.tar'], dir);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain('no-appspec.tar: error: The CodeDeploy agent did not find an AppSpec file');
    expect(result.stdout).toContain('The revision was unpacked to directory "no-appspec.tar", and the AppSpec file was expected but not found at path "no-appspec.tar/appspec.yml"');
    expect(result.stdout).not.toContain('codedeploy-validate-');
  });

  it('reports a path that does not exist and a bad --type', async () => {
    const missing = await validate(['nowhere'], dir);
    expect(missing.exitCode).toBe(1);
    expect(missing.stdout).toContain('error: nowhere does not exist');
    goodBundle(dir);
    const badType = await validate(['.', '--type', 'rar'], dir);
    expect(badType.exitCode).toBe(1);
    expect(badType.stdout).toContain('error: type rar is not a valid type. Must be one of tar,tgz,zip,directory');
  });

  it('reports YAML syntax errors with their position', async () => {
    put(dir, 'appspec.yml', 'version: 0.0\nos: linux\nhooks:\n\tAfterInstall: []\n', 0o644);
    const result = await validate([], dir);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain('appspec.yml:4:1: error: YAML syntax error: Tabs are not allowed as indentation (indent with spaces');
  });

  it('checks the agent configuration given with --config', async () => {
    goodBundle(dir);
    put(dir, 'agent.yml', ':max_revisions: many\n', 0o644);
    const result = await validate(['-c', 'agent.yml'], dir);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/^agent\.yml: error: .*max_revisions/m);
    const missing = await validate(['-c', 'absent.yml'], dir);
    expect(missing.stdout).toContain('absent.yml: error: The config file absent.yml does not exist or is not readable');
  });

  it('unpacks tar.gz and zip archives, stripping one top folder', async () => {
    goodBundle(join(dir, 'src', 'myapp-1.0'));
    execFileSync('tar', ['-czf', join(dir, 'bundle.tar.gz'), '-C', join(dir, 'src'), 'myapp-1.0']);
    const tgz = await validate(['bundle.tar.gz'], dir);
    expect(tgz.stdout).toBe('bundle.tar.gz: AppSpec file valid');
    expect(tgz.exitCode).toBe(0);

    put(join(dir, 'src', 'myapp-1.0'), 'appspec.yml', `${GOOD}  AfterInstall:\n    - location: scripts/missing.sh\n`, 0o644);
    execFileSync('tar', ['-cf', join(dir, 'bundle.bin'), '-C', join(dir, 'src', 'myapp-1.0'), '.']);
    const tar = await validate(['bundle.bin', '--type', 'tar'], dir);
    expect(tar.exitCode).toBe(1);
    expect(tar.stdout.split('\n')[0]).toBe(
      'bundle.bin/appspec.yml:11:17: error: the AfterInstall script scripts/missing.sh does not exist in the bundle (add it to the bundle, or fix the path: it is relative to the folder that holds the appspec)',
    );

    const yazl = await import('yazl');
    const zip = new yazl.ZipFile();
    zip.addBuffer(Buffer.from('version: 0.0\nos: windows\n'), 'appspec.yml');
    zip.end();
    const chunks: Buffer[] = [];
    for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
    writeFileSync(join(dir, 'bundle.zip'), Buffer.concat(chunks));
    const zipped = await validate(['bundle.zip'], dir);
    expect(zipped.exitCode).toBe(1);
    expect(zipped.stdout).toContain('bundle.zip/appspec.yml:2:5: error: The deployment failed because the application specification file specifies an unsupported operating system (windows).');
  });
});
