import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';

/**
 * `npm run demo` (after the build the test suite already did): the whole lifecycle twice, with
 * ApplicationStop from the first revision and its files cleaned up — and, when the tests run as root,
 * as an ordinary user, since the demo must need no root (nor network, nor AWS account).
 */
const isRoot = process.getuid?.() === 0;
const user = `cdademo-u${process.pid % 100000}`;
let ids: { uid: number; gid: number } | undefined;
let demoFolder: string | undefined;

beforeAll(() => {
  if (!isRoot) return;
  execFileSync('useradd', ['-m', '-s', '/bin/sh', user]);
  ids = {
    uid: Number(execFileSync('id', ['-u', user], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', user], { encoding: 'utf8' })),
  };
});

afterAll(async () => {
  if (demoFolder) rmSync(demoFolder, { recursive: true, force: true });
  if (!isRoot) return;
  // userdel refuses while a process of the user runs: the sample's ApplicationStart leaves a `sleep 1`.
  for (let attempt = 0; ; attempt++) {
    try {
      execFileSync('userdel', ['-r', user], { stdio: 'ignore' });
      return;
    } catch (error) {
      if (attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
});

it('deploys the sample app twice through the whole lifecycle, without root or network', async () => {
  const result = await execa(process.execPath, [join(REPO_ROOT, 'scripts', 'demo.mjs')], {
    reject: false,
    all: true,
    cwd: REPO_ROOT,
    // No AWS credentials, no region, no proxy: nothing of the demo may need them.
    env: { PATH: process.env.PATH, HOME: ids ? `/home/${user}` : process.env.HOME, LANG: 'C.UTF-8' },
    extendEnv: false,
    ...(ids ?? {}),
    timeout: 60_000,
  });
  demoFolder = /Everything the demo made is in (\S+) \(nothing outside it\); remove it with: rm -rf \1$/m.exec(result.all)?.[1];
  expect(demoFolder, result.all).toMatch(/^\//);
  expect(result.exitCode, result.all).toBe(0);
  const output = result.all;
  expect(output.match(/AppSpec file valid\. Local deployment successful/g)).toHaveLength(2);
  // The first deployment has nothing to stop; the second runs revision 1's ApplicationStop script.
  expect(output).toMatch(/ApplicationStop: succeeded in \d+ms \(nothing to run\)/);
  expect(output).toMatch(/\[stdout\]ApplicationStop from revision 1 for d-[A-Z0-9]{9}-local/);
  for (const event of ['BeforeBlockTraffic', 'AfterBlockTraffic', 'BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService', 'BeforeAllowTraffic', 'AfterAllowTraffic']) {
    expect(output, event).toContain(`LifecycleEvent - ${event}`);
  }
  expect(output).toContain('Revision 1 installed public/retired-page.html: yes');
  expect(output).toContain('Cleanup: public/retired-page.html (revision 1 only) is gone after revision 2');
  // Every path it shows at the end is absolute, so it can be pasted from any folder.
  const landed = output.split('=== Where everything landed ===')[1];
  expect(landed).toContain(`Agent log: ${demoFolder}/log/codedeploy-local.log`);
  const treeEntry = /^\s+\S+\s+\d{4}$/; // `  etc/  0755`: a name under the installed folder shown above it
  for (const line of landed.split('\n').filter((text) => text.includes('/') && !treeEntry.test(text))) expect(line, line).toMatch(/(^|[ (])\/\S/);
  if (ids) expect(output).toContain(`user=${user}`);
  expect(demoFolder).toBeDefined();
  expect(existsSync(join(demoFolder!, 'installed-app', 'VERSION'))).toBe(true);
  expect(existsSync(join(demoFolder!, 'installed-app', 'public', 'retired-page.html'))).toBe(false);
});
