import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanupFile, deploymentPaths, installJsonFile } from '../../src/deployment/layout.js';
import { runInstall } from '../../src/install/install.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { InstallError } from '../../src/report/errors.js';
import { makeTempDir } from '../helpers/tmp.js';
import { DEPLOYMENT_FOLDER_AFTER_INSTALL, makeAppSpec, makeRevision, readOptional, snapshot, writeTree, type TreeSpec } from './install-fixtures.js';

/**
 * A real failure half-way through Install: the destination is a 1 MiB tmpfs and the revision holds
 * 4 MiB, so a copy hits ENOSPC after others succeeded. The deployment root is on another file system,
 * so moving files aside to the backup also takes the EXDEV (copy) path.
 */
describe('rollback after a failure half-way through Install', () => {
  let tmp: string;
  let removeTmp: () => void;
  let root: string;
  let dest: string;
  let mounted = false;

  beforeEach(() => {
    ({ dir: tmp, cleanup: removeTmp } = makeTempDir('cda-rollback-'));
    root = join(tmp, 'root');
    dest = join(tmp, 'dest');
    mkdirSync(dest);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dest], { stdio: 'pipe' });
      mounted = true;
    } catch (error) {
      // Without CAP_SYS_ADMIN (an unprivileged container) there is no way to fill a file system on purpose.
      console.warn(`cannot mount a tmpfs (${(error as Error).message.split('\n')[0]}); the ENOSPC rollback test is skipped`);
      mounted = false;
    }
  });

  afterEach(() => {
    if (mounted) execFileSync('umount', [dest]);
    removeTmp();
  });

  const install = (deploymentId: string, appspec: ReturnType<typeof makeAppSpec>) =>
    runInstall({ rootDir: root, groupId: 'grp', deploymentId, archiveDir: deploymentPaths(root, 'grp', deploymentId).archiveDir, appspec, logger: new MemoryLogger() });

  it('disk full: the previous deployment and the replaced file come back, the new files go, the cleanup file is as before', async (context) => {
    if (!mounted) context.skip();
    makeRevision(root, 'd-1', { 'app/a.txt': 'one', 'app/sub/b.txt': 'b', 'app/sub/link': { link: '../a.txt' }, 'app/script.sh': { content: '#!/bin/sh\n', mode: 0o4750 } });
    await install('d-1', makeAppSpec([{ source: 'app', destination: dest }]));
    writeTree(dest, { 'conf.ini': 'local settings', 'sub/users.txt': 'mine' });
    const before = snapshot(dest);
    const cleanupBefore = readOptional(cleanupFile(root, 'grp'));
    const jsonBefore = readOptional(installJsonFile(root, 'grp'));

    const big: TreeSpec = { 'app/conf.ini': 'new settings', 'app/a.txt': 'two' };
    for (let index = 0; index < 40; index++) big[`app/data/blob-${index}.bin`] = { content: Buffer.alloc(100 * 1024, index) };
    makeRevision(root, 'd-2', big);

    const error = await install('d-2', makeAppSpec([{ source: 'app', destination: dest }], [], 'OVERWRITE')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InstallError);
    expect((error as Error).message).toMatch(/The deployment failed while copying .* ENOSPC/);
    expect((error as Error).message).toContain('Everything Install had changed was undone.');

    expect(snapshot(dest)).toEqual(before);
    expect(readOptional(cleanupFile(root, 'grp'))).toBe(cleanupBefore);
    expect(readOptional(installJsonFile(root, 'grp'))).toBe(jsonBefore);
    expect(readdirSync(deploymentPaths(root, 'grp', 'd-2').deploymentDir)).toEqual(DEPLOYMENT_FOLDER_AFTER_INSTALL);

    // And the host still takes a deployment that fits.
    makeRevision(root, 'd-3', { 'app/a.txt': 'three' });
    await install('d-3', makeAppSpec([{ source: 'app', destination: dest }]));
    expect(readdirSync(dest).sort()).toEqual(['a.txt', 'conf.ini', 'sub']);
  });

  it('permission denied even for root (an immutable folder): everything written is removed, the previous deployment is back', async (context) => {
    const locked = join(dest, 'locked');
    mkdirSync(locked);
    try {
      execFileSync('chattr', ['+i', locked], { stdio: 'pipe' });
    } catch (error) {
      console.warn(`chattr +i is not available here (${(error as Error).message.split('\n')[0]}); the EPERM rollback test is skipped`);
      context.skip();
    }
    try {
      makeRevision(root, 'd-1', { 'app/a.txt': 'one', 'app/sub/b.txt': 'b' });
      await install('d-1', makeAppSpec([{ source: 'app', destination: dest }]));
      const before = snapshot(dest);
      const cleanupBefore = readOptional(cleanupFile(root, 'grp'));

      const tree: TreeSpec = { 'late/f.txt': 'refused' };
      for (let index = 0; index < 100; index++) tree[`app/many/file-${index}.txt`] = `content ${index}`;
      makeRevision(root, 'd-2', tree);
      const appspec = makeAppSpec([
        { source: 'app', destination: dest },
        { source: 'late', destination: locked },
      ]);
      const error = await install('d-2', appspec).catch((e: unknown) => e);
      expect((error as Error).message).toMatch(/The deployment failed while copying .*late\/f\.txt .*EPERM/);
      expect(snapshot(dest)).toEqual(before);
      expect(readOptional(cleanupFile(root, 'grp'))).toBe(cleanupBefore);
    } finally {
      execFileSync('chattr', ['-i', locked]);
    }
  });
});
