import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scanInstall, scanSource } from '../../src/install/scan.js';
import { makeTempDir } from '../helpers/tmp.js';
import { writeTree } from './install-fixtures.js';

describe('scan', () => {
  let tmp: string;
  let removeTmp: () => void;
  let archive: string;
  beforeEach(() => {
    ({ dir: tmp, cleanup: removeTmp } = makeTempDir('cda-scan-'));
    archive = join(tmp, 'archive');
    writeTree(join(tmp, 'outside'), { 'secret.txt': 's' });
    writeTree(archive, {
      'app/a.txt': 'a',
      'app/sub/b.txt': 'b',
      'app/out': { link: join(tmp, 'outside') },
      'via-link': { link: join(tmp, 'outside') },
    });
  });
  afterEach(() => removeTmp());

  it('lists a tree in pre-order, links as links, never descending them', () => {
    const scan = scanSource(archive, { source: 'app', destination: '/d' });
    expect(scan.problem).toBeUndefined();
    const entries = scan.entries.map((e) => `${e.relativePath}:${e.type}${e.linkTarget ? `->${e.linkTarget}` : ''}`);
    expect(entries[0]).toBe(':directory');
    expect(entries.slice(1).sort()).toEqual(['a.txt:file', `out:symlink->${join(tmp, 'outside')}`, 'sub/b.txt:file', 'sub:directory']);
    expect(entries.indexOf('sub:directory')).toBeLessThan(entries.indexOf('sub/b.txt:file'));
  });

  it('a source given with a trailing slash is still not followed when it is a link', () => {
    const scan = scanSource(archive, { source: 'via-link/', destination: '/d' });
    expect(scan.entries.map((e) => e.type)).toEqual(['symlink']);
    expect(scan.sourcePath).toBe(join(archive, 'via-link'));
  });

  it('refuses sources outside the revision, by path or through a linked folder; reports missing ones', () => {
    expect(scanSource(archive, { source: '../outside/secret.txt', destination: '/d' }).problem).toBe('outside');
    expect(scanSource(archive, { source: 'via-link/secret.txt', destination: '/d' }).problem).toBe('outside');
    expect(scanSource(archive, { source: 'nope', destination: '/d' }).problem).toBe('missing');
    expect(scanSource(archive, { source: '/', destination: '/d' }).entries[0].relativePath).toBe('');
  });

  it('probes targets, their ancestors, permission objects and the cleanup file\'s folders', () => {
    const dest = join(tmp, 'dest');
    mkdirSync(join(dest, 'sub'), { recursive: true });
    writeFileSync(join(dest, 'a.txt'), 'old');
    symlinkSync('nowhere', join(dest, 'out'));
    const scan = scanInstall({
      archiveDir: archive,
      files: [{ source: 'app', destination: dest }],
      permissions: [{ object: tmp, pattern: '**', except: [], type: ['file'] }],
      cleanupEntries: [{ kind: 'path', path: join(dest, 'sub') }],
    });
    expect(scan.destination.get(dest)).toEqual({ type: 'directory', resolved: 'directory' });
    expect(scan.destination.get(join(dest, 'a.txt'))).toEqual({ type: 'file', resolved: 'file' });
    expect(scan.destination.get(join(dest, 'out'))).toEqual({ type: 'symlink', resolved: undefined });
    expect(scan.destination.has(join(dest, 'sub/b.txt'))).toBe(false);
    expect(scan.destination.get(tmp)?.type).toBe('directory');
    expect(scan.cleanupChildren.get(join(dest, 'sub'))).toEqual([]);
  });
});
