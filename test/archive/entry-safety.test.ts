import { describe, expect, it } from 'vitest';
import type { EntryKind } from '../../src/archive/archive-entry.js';
import {
  ancestorsOf,
  normalizeInsideArchive,
  refuseAbsolutePath,
  refuseNulByte,
  refuseRootReplacement,
  refuseSpecialFile,
  refuseSymlinkAncestor,
  refuseSymlinkOutside,
  refuseSymlinksEscapingAfterStrip,
  resolveEntryPath,
  resolveHardlinkTarget,
  UnsafeEntryError,
  type UnsafeEntryRule,
} from '../../src/archive/entry-safety.js';
import { ArchiveError } from '../../src/report/errors.js';

function ruleOf(check: () => unknown): UnsafeEntryRule | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(UnsafeEntryError);
    expect(error).toBeInstanceOf(ArchiveError);
    return (error as UnsafeEntryError).rule;
  }
}

describe('refuseNulByte', () => {
  it.each([
    ['a\0b', undefined, 'nul-byte'],
    ['link', 'target\0', 'nul-byte'],
    ['plain/name', undefined, undefined],
  ] as const)('%j (link target %j) → %s', (name, target, rule) => {
    expect(ruleOf(() => refuseNulByte(name, target))).toBe(rule);
  });
});

describe('refuseAbsolutePath: a leading slash only', () => {
  it.each([
    ['/etc/passwd', 'absolute-path'],
    ['//double', 'absolute-path'],
    ['etc/passwd', undefined],
    // On Linux 'C:' is an ordinary name, as GNU tar treats it.
    ['C:/x', undefined],
  ] as const)('%s → %s', (path, rule) => {
    expect(ruleOf(() => refuseAbsolutePath(path))).toBe(rule);
  });
});

describe('normalizeInsideArchive', () => {
  it.each([
    ['./a//b/./c/', 'a/b/c'],
    ['a/b/../c', 'a/c'],
    ['./', ''],
    ['a/..', ''],
  ])("resolves '.', '..' and repeated slashes by name: %s → %j", (path, normalized) => {
    expect(normalizeInsideArchive(path)).toBe(normalized);
  });

  it.each(['..', '../x', 'a/../../x', './../x', 'a/b/../../../x'])('refuses %s, which climbs above the archive folder', (path) => {
    expect(ruleOf(() => normalizeInsideArchive(path))).toBe('parent-escape');
  });
});

describe('resolveEntryPath', () => {
  it('returns the path to write', () => {
    expect(resolveEntryPath('./dir/file')).toBe('dir/file');
  });

  it.each([
    ['/abs', 'absolute-path'],
    ['../x', 'parent-escape'],
    ['x\0', 'nul-byte'],
  ])('applies every name rule: %j → %s', (path, rule) => {
    expect(ruleOf(() => resolveEntryPath(path))).toBe(rule);
  });

  it('names the entry as stored in the message', () => {
    expect(() => resolveEntryPath('a/../../x')).toThrow("Refused to unpack bundle entry 'a/../../x': its '..' components lead outside the archive folder");
  });
});

describe("refuseRootReplacement: only a directory stands for the archive folder ('./')", () => {
  it.each([
    ['./', '', 'directory', undefined],
    ['.', '', 'symlink', 'root-replaced'],
    ['a/..', '', 'file', 'root-replaced'],
    ['a', 'a', 'file', undefined],
  ] as const)('%s (normalized %j) as a %s → %s', (path, normalized, kind, rule) => {
    expect(ruleOf(() => refuseRootReplacement(path, normalized, kind))).toBe(rule);
  });
});

describe('refuseSpecialFile: devices, FIFOs and sockets and nothing else', () => {
  it.each<[EntryKind, UnsafeEntryRule | undefined]>([
    ['character-device', 'special-file'],
    ['block-device', 'special-file'],
    ['fifo', 'special-file'],
    ['socket', 'special-file'],
    ['file', undefined],
    ['directory', undefined],
    ['symlink', undefined],
    ['hardlink', undefined],
    ['unsupported', undefined],
  ])('%s → %s', (kind, rule) => {
    expect(ruleOf(() => refuseSpecialFile('x', kind))).toBe(rule);
  });
});

describe('ancestorsOf', () => {
  it('lists the parents, shortest first', () => {
    expect(ancestorsOf('a/b/c')).toEqual(['a', 'a/b']);
    expect(ancestorsOf('a')).toEqual([]);
  });
});

describe('refuseSymlinkAncestor', () => {
  const symlinks = new Map([['link', 'elsewhere']]);
  it('refuses an entry below a symlink of the archive', () => {
    expect(ruleOf(() => refuseSymlinkAncestor('link/x', 'link/x', symlinks))).toBe('through-symlink');
    expect(ruleOf(() => refuseSymlinkAncestor('link/deep/x', 'link/deep/x', symlinks))).toBe('through-symlink');
  });
  it('allows the link itself being replaced, and names that merely start alike', () => {
    expect(ruleOf(() => refuseSymlinkAncestor('link', 'link', symlinks))).toBeUndefined();
    expect(ruleOf(() => refuseSymlinkAncestor('linked/x', 'linked/x', symlinks))).toBeUndefined();
  });
});

describe('refuseSymlinkOutside', () => {
  it.each<[string, string, Record<string, string>, UnsafeEntryRule | undefined]>([
    // Targets that stay inside, dangling or not.
    ['a/l', '../b', {}, undefined],
    ['a/b/l', '../../c/d', {}, undefined],
    ['l', '.', {}, undefined],
    ['l', 'missing/../x', {}, undefined],
    ['l', '/etc', {}, 'symlink-absolute'],
    // Targets that climb out with '..'.
    ['l', '..', {}, 'symlink-escape'],
    ['a/l', '../../x', {}, 'symlink-escape'],
    ['a/l', 'b/../../../x', {}, 'symlink-escape'],
    // The other links of the archive are followed, the way the kernel would: 'up/..' looks like the
    // root by name, but 'up' is a link to '.', so it is the parent.
    ['l', 'up/..', { up: '.' }, 'symlink-escape'],
    ['l', 'abs/x', { abs: '/etc' }, 'symlink-escape'],
    ['l', 'deep/..', { deep: 'a/b' }, undefined],
  ])('%s -> %s (other links %j) → %s', (path, target, others, rule) => {
    expect(ruleOf(() => refuseSymlinkOutside(path, path, target, new Map(Object.entries(others))))).toBe(rule);
  });
  it('names the link it went through', () => {
    expect(() => refuseSymlinkOutside('l', 'l', 'up/..', new Map([['up', '.']]))).toThrow("(through the link 'up')");
  });
  it('refuses a chain of links too long to prove anything about', () => {
    const loop = new Map([
      ['a', 'b'],
      ['b', 'a'],
    ]);
    expect(ruleOf(() => refuseSymlinkOutside('l', 'l', 'a', loop))).toBe('symlink-loop');
  });
});

describe('refuseSymlinksEscapingAfterStrip', () => {
  it('checks the links again as if the top folder were the root', () => {
    // Inside while 'top' is below the root; '../x' leaves once top's content is the root.
    expect(ruleOf(() => refuseSymlinksEscapingAfterStrip(new Map([['top/l', '../x']]), 'top'))).toBe('symlink-escape');
    expect(ruleOf(() => refuseSymlinksEscapingAfterStrip(new Map([['top/sub/l', '../x']]), 'top'))).toBeUndefined();
    expect(() => refuseSymlinksEscapingAfterStrip(new Map([['top/l', '../x']]), 'top')).toThrow("Refused to unpack bundle entry 'top/l'");
    expect(
      ruleOf(() =>
        refuseSymlinksEscapingAfterStrip(
          new Map([
            ['top/a', '.'],
            ['top/b', 'a/..'],
          ]),
          'top',
        ),
      ),
    ).toBe('symlink-escape');
  });
});

describe('resolveHardlinkTarget', () => {
  const unpacked = new Map<string, EntryKind>([
    ['file', 'file'],
    ['dir', 'directory'],
    ['dir/inner', 'file'],
    ['sym', 'symlink'],
  ]);
  const symlinks = new Map([['sym', 'dir']]);
  it('returns the archive-relative target of an earlier entry', () => {
    expect(resolveHardlinkTarget('h', './file', unpacked, symlinks)).toBe('file');
    expect(resolveHardlinkTarget('h', 'dir/../file', unpacked, symlinks)).toBe('file');
    expect(resolveHardlinkTarget('h', 'sym', unpacked, symlinks)).toBe('sym');
  });
  it.each<[string, UnsafeEntryRule]>([
    ['/etc/passwd', 'hardlink-outside'],
    ['../outside', 'hardlink-outside'],
    ['sym/inner', 'through-symlink'],
    ['later', 'hardlink-missing'],
    ['dir', 'hardlink-directory'],
    ['.', 'hardlink-directory'],
  ])('refuses a link to %s: %s', (target, rule) => {
    expect(ruleOf(() => resolveHardlinkTarget('h', target, unpacked, symlinks))).toBe(rule);
  });
});
