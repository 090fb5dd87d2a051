import { describe, expect, it } from 'vitest';
import { formatCleanupFile, parseCleanupFile } from '../../src/install/cleanup-file.js';

describe('cleanup file', () => {
  it('reads paths and semanage lines in file order', () => {
    expect(parseCleanupFile('/opt/app\n/opt/app/a.txt\nsemanage\0/opt/app/a.txt\n')).toEqual([
      { kind: 'path', path: '/opt/app' },
      { kind: 'path', path: '/opt/app/a.txt' },
      { kind: 'semanage', path: '/opt/app/a.txt' },
    ]);
  });

  it('drops a last line without its newline: the agent stopped while writing it', () => {
    expect(parseCleanupFile('/opt/app\n/opt/app/half-writ')).toEqual([{ kind: 'path', path: '/opt/app' }]);
    expect(parseCleanupFile('/only-partial')).toEqual([]);
  });

  it('empty content, blank lines and surrounding whitespace', () => {
    expect(parseCleanupFile('')).toEqual([]);
    expect(parseCleanupFile('\n  /opt/x \r\n\n')).toEqual([{ kind: 'path', path: '/opt/x' }]);
  });

  it('writes what it reads back', () => {
    const entries = [
      { kind: 'path', path: '/srv/a b' },
      { kind: 'semanage', path: '/srv/a b' },
    ] as const;
    const text = formatCleanupFile([...entries]);
    expect(text).toBe('/srv/a b\nsemanage\0/srv/a b\n');
    expect(parseCleanupFile(text)).toEqual(entries);
  });
});
