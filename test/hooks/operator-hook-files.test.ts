import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scanOperatorHooks } from '../../src/hooks/operator-hook-files.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * Which operator hooks run, in which order, and which are refused: real files, modes and owners
 * (as root, chown to a uid nobody has; the trust rules need root to be tested at all).
 */
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.info('[operator hooks] not root: the ownership cases need root (run the tests as root, as CI does)');

const cleanups: (() => void)[] = [];
afterEach(() => { while (cleanups.length) cleanups.pop()!(); });

function hooksDir(): string {
  const tmp = makeTempDir('cda-ophooks-');
  cleanups.push(tmp.cleanup);
  const dir = join(tmp.dir, 'hooks.d');
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(tmp.dir, 0o755);
  return dir;
}

function hook(path: string, mode = 0o755): string {
  writeFileSync(path, '#!/bin/sh\nexit 0\n');
  chmodSync(path, mode);
  return path;
}

describe('scanOperatorHooks', () => {
  it('is undefined without a hooks folder: nothing changes for hosts that do not use them', () => {
    expect(scanOperatorHooks('/nonexistent/hooks.d')).toBeUndefined();
  });

  it('runs the point\'s file first, then its .d folder in byte order; skips what is disabled or left over', () => {
    const dir = hooksDir();
    hook(join(dir, 'pre-event'));
    mkdirSync(join(dir, 'pre-event.d'));
    for (const name of ['20-notify', '10-lb', 'B-upper', 'a-lower']) hook(join(dir, 'pre-event.d', name));
    hook(join(dir, 'pre-event.d', '30-off'), 0o644);
    for (const name of ['.hidden', '10-lb~', '10-lb.dpkg-old', '10-lb.rpmnew', 'x.swp']) hook(join(dir, 'pre-event.d', name));
    mkdirSync(join(dir, 'pre-event.d', 'sub'));
    hook(join(dir, 'post-deployment'));
    const scan = scanOperatorHooks(dir)!;
    expect(scan['pre-event'].run).toEqual([join(dir, 'pre-event'), ...['10-lb', '20-notify', 'B-upper', 'a-lower'].map((n) => join(dir, 'pre-event.d', n))]);
    expect(scan['pre-event'].refused).toEqual([]);
    expect(scan['pre-event'].skipped.map((s) => s.path.split('/').pop()).sort()).toEqual(['.hidden', '10-lb.dpkg-old', '10-lb.rpmnew', '10-lb~', '30-off', 'sub', 'x.swp']);
    expect(scan['pre-event'].skipped.find((s) => s.path.endsWith('30-off'))?.reason).toContain('is not executable (chmod +x it to enable it)');
    expect(scan['post-deployment'].run).toEqual([join(dir, 'post-deployment')]);
    expect(scan['post-event']).toEqual({ run: [], refused: [], skipped: [] });
  });

  it.skipIf(!isRoot)('refuses hooks another user owns or may write, directly, through a symlink, a .d folder or a folder above', () => {
    const dir = hooksDir();
    const other = hook(join(dir, 'pre-event'));
    chownSync(other, 4242, 4242);
    hook(join(dir, 'post-event'), 0o775);
    mkdirSync(join(dir, 'pre-deployment.d'));
    chmodSync(join(dir, 'pre-deployment.d'), 0o777);
    hook(join(dir, 'pre-deployment.d', '10-ok'));
    // A symlink is judged by what it points to: a trusted target is fine, an untrusted one is not.
    const outside = join(dir, '..', 'elsewhere');
    mkdirSync(outside, { mode: 0o755 });
    hook(join(outside, 'trusted'));
    const untrusted = hook(join(outside, 'untrusted'));
    chownSync(untrusted, 4242, 4242);
    mkdirSync(join(dir, 'post-deployment.d'));
    symlinkSync(join(outside, 'trusted'), join(dir, 'post-deployment.d', '10-link'));
    symlinkSync(untrusted, join(dir, 'post-deployment.d', '20-link'));
    const scan = scanOperatorHooks(dir)!;
    expect(scan['pre-event'].refused).toEqual([{ path: other, reason: `${other} belongs to uid 4242, not to root` }]);
    expect(scan['post-event'].refused[0].reason).toBe(`${join(dir, 'post-event')} is writable by its group (gid 0) (mode 0775)`);
    expect(scan['pre-deployment'].refused[0].reason).toBe(`${join(dir, 'pre-deployment.d')} is writable by everyone (mode 0777)`);
    expect(scan['pre-deployment'].run).toEqual([]);
    expect(scan['post-deployment'].run).toEqual([join(dir, 'post-deployment.d', '10-link')]);
    expect(scan['post-deployment'].refused).toEqual([{ path: join(dir, 'post-deployment.d', '20-link'), reason: `${join(dir, 'post-deployment.d', '20-link')} (→ ${untrusted}) belongs to uid 4242, not to root` }]);

    // A folder above the hooks that others may write (not sticky): they could swap the whole folder.
    chmodSync(join(dir, '..'), 0o777);
    const above = scanOperatorHooks(dir)!;
    expect(above['post-deployment'].run).toEqual([]);
    expect(above['post-deployment'].refused[0].reason).toBe(`${join(dir, '..')} is writable by everyone (mode 0777)`);
    // Sticky, like /tmp: others cannot rename root's entries, so it is fine.
    chmodSync(join(dir, '..'), 0o1777);
    expect(scanOperatorHooks(dir)!['post-deployment'].run).toEqual([join(dir, 'post-deployment.d', '10-link')]);
  });
});
