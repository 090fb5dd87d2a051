/**
 * Small defects of `deploy` found while hardening it: `-A NAME` for a file the bundle lacks fails and names
 * it (it used to fall back to appspec.yml), and a hook script saved with Windows line endings gets the
 * hint on the terminal (its failure used to be a bare ENOENT).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeTempDir } from '../helpers/tmp.js';

const tmp = makeTempDir('cda-deploy-defects-');
afterAll(tmp.cleanup);
const configFile = join(tmp.dir, 'agent.yml');
writeAgentConfig(configFile, { root_dir: join(tmp.dir, 'root'), log_dir: join(tmp.dir, 'log') });

function bundle(name: string, files: Record<string, string>): string {
  const dir = join(tmp.dir, name);
  mkdirSync(dir, { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    writeFileSync(join(dir, path), text);
    if (path.endsWith('.sh')) chmodSync(join(dir, path), 0o755);
  }
  return dir;
}

describe('deploy: small defects', () => {
  it('fails when -A names a file an archive lacks, and names it, instead of using appspec.yml', async () => {
    const dir = bundle('no-custom', { 'appspec.yml': 'version: 0.0\nos: linux\n' });
    const tarball = join(tmp.dir, 'no-custom.tar');
    execFileSync('tar', ['-cf', tarball, '-C', dir, '.']);
    const result = await runCli(['deploy', '-c', configFile, '-l', tarball, '-g', 'custom-name', '-A', 'deploy-spec.yml']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('revision-relative path "deploy-spec.yml"');
    expect(result.stderr).toContain('the revision has no deploy-spec.yml, but it has appspec.yml: leave out --appspec-filename (-A) to use it');
    expect(result.stdout).not.toContain('Install: succeeded');
  });

  it.each([
    ['#!/bin/sh', 'exec'],
    ['#!/usr/bin/env sh', 'env'],
  ])('says a %s script with Windows line endings has them, on the terminal (%s)', async (shebang) => {
    const dir = bundle(`crlf-${shebang.length}`, {
      'appspec.yml': 'version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: start.sh\n',
      'start.sh': `${shebang}\r\necho started\r\n`,
    });
    const result = await runCli(['deploy', '-c', configFile, '-l', dir, '-g', 'crlf']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/ERROR: AfterInstall failed with ScriptFailed \(error code 4\): Script at specified location: start\.sh .*: its #! line ends in a carriage return \(Windows CRLF line endings\)/);
    expect(result.stderr).toContain('dos2unix');
  });
});
