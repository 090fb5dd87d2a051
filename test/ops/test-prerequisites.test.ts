import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { readPrerequisites } from '../../scripts/test-prerequisites.mjs';
import { REPO_ROOT } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * `npm test` and `.ci/run` first run scripts/test-prerequisites.mjs, which reads the one list of what the
 * tests need (test/prerequisites.txt). Here it runs with a PATH that lacks the tools, in the mode that
 * installs nothing, and must name each missing tool with the way to get it.
 */
const tmp = makeTempDir('cda-prereq-');
afterAll(tmp.cleanup);

const SCRIPT = join(REPO_ROOT, 'scripts/test-prerequisites.mjs');

/**
 * A PATH folder holding node and fake executables for `commands`; the entries that are absolute paths (files,
 * not commands) go under its files-root folder, which check() passes as CDA_TEST_FILES_ROOT.
 */
function pathWith(name: string, commands: string[]): string {
  const dir = join(tmp.dir, name);
  mkdirSync(dir);
  symlinkSync(process.execPath, join(dir, 'node'));
  for (const command of commands) {
    const file = command.startsWith('/') ? join(dir, 'files-root', command) : join(dir, command);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, '#!/bin/sh\n');
    chmodSync(file, 0o755);
  }
  return dir;
}

function check(path: string, ...flags: string[]) {
  return execa(process.execPath, [SCRIPT, '--check', ...flags], {
    reject: false,
    env: { PATH: path, CDA_TEST_TOOLS: join(tmp.dir, 'tools'), CDA_TEST_FILES_ROOT: join(path, 'files-root'), CI: '' },
    extendEnv: false,
  });
}

describe('test prerequisites', () => {
  const all = readPrerequisites().map((tool) => tool.command);

  it('names a missing setfacl (and only what is missing) with the package that brings it', async () => {
    const result = await check(pathWith('no-setfacl', all.filter((command) => command !== 'setfacl')));
    expect(result.exitCode).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual([
      'test prerequisites: setfacl is missing, so these tests skip: the ACL tests of Install (permissions with acls). To get it: apt-get install acl (npm test installs it when run as root)',
    ]);
  });

  it('says how to get moto_server, and --strict (CI) fails instead of skipping', async () => {
    const result = await check(pathWith('no-moto', all.filter((command) => command !== 'moto_server')), '--strict');
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain("moto_server is missing, so CI cannot run: the S3 tests (a real S3 server on 127.0.0.1). To get it: apt-get install python3-moto");
    expect(result.stdout).toContain("pip install 'moto[server]==5.2.1'");
    expect(result.stdout).toContain('CI never skips a test');
  });

  it('prints nothing when everything is there', async () => {
    const result = await check(pathWith('everything', all), '--strict');
    expect(result).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('is what npm test and .ci/run start with', () => {
    const scripts = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
    expect(scripts.test).toMatch(/^node scripts\/test-prerequisites\.mjs && /);
    expect(readFileSync(join(REPO_ROOT, '.ci/run'), 'utf8')).toContain('node scripts/test-prerequisites.mjs --strict');
  });
});
