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
  it('refuses a NUL anywhere in the name or in a link target', () => {
    expect(ruleOf(() => refuseNulByte('a\0b'))).toBe('nul-byte');
    expect(ruleOf(() => refuseNulByte('link', 'target\0'))).toBe('nul-byte');
    expect(ruleOf(() => refuseNulByte('plain/name'))).toBeUndefined();
  });
});

describe('refuseAbsolutePath', () => {
  it('refuses a leading slash only', () => {
    expect(ruleOf(() => refuseAbsolutePath('/etc/passwd'))).toBe('absolute-path');
    expect(ruleOf(() => refuseAbsolutePath('//double'))).toBe('absolute-path');
    expect(ruleOf(() => refuseAbsolutePath('etc/passwd'))).toBeUndefined();
    // On Linux 'C:' is an ordinary name, as GNU tar treats it.
    expect(ruleOf(() => refuseAbsolutePath('C:/x'))).toBeUndefined();
  });
});

describe('normalizeInsideArchive', () => {
  it("resolves '.', '..' and repeated slashes by name", () => {
    expect(normalizeInsideArchive('./a//b/./c/')).toBe('a/b/c');
    expect(normalizeInsideArchive('a/b/../c')).toBe('a/c');
    expect(normalizeInsideArchive('./')).toBe('');
    expect(normalizeInsideArchive('a/..')).toBe('');
  });

  it('refuses a path that climbs above the archive folder', () => {
    for (const path of ['..', '../x', 'a/../../x', './../x', 'a/b/../../../x']) {
      expect(ruleOf(() => normalizeInsideArchive(path)), path).toBe('parent-escape');
    }
  });
});

describe('resolveEntryPath', () => {
  it('applies every name rule and returns the path to write', () => {
    expect(resolveEntryPath('./dir/file')).toBe('dir/file');
    expect(ruleOf(() => resolveEntryPath('/abs'))).toBe('absolute-path');
    expect(ruleOf(() => resolveEntryPath('../x'))).toBe('parent-escape');
    expect(ruleOf(() => resolveEntryPath('x\0'))).toBe('nul-byte');
  });

  it('names the entry as stored in the message', () => {
    expect(() => resolveEntryPath('a/../../x')).toThrow("Refused to unpack bundle entry 'a/../../x': its '..' components lead outside the archive folder");
  });
});

describe('refuseRootReplacement', () => {
  it("lets only a directory stand for the archive folder ('./')", () => {
    expect(ruleOf(() => refuseRootReplacement('./', '', 'directory'))).toBeUndefined();
    expect(ruleOf(() => refuseRootReplacement('.', '', 'symlink'))).toBe('root-replaced');
    expect(ruleOf(() => refuseRootReplacement('a/..', '', 'file'))).toBe('root-replaced');
    expect(ruleOf(() => refuseRootReplacement('a', 'a', 'file'))).toBeUndefined();
  });
});

describe('refuseSpecialFile', () => {
  it('refuses devices, FIFOs and sockets and nothing else', () => {
    const refused: EntryKind[] = ['character-device', 'block-device', 'fifo', 'socket'];
    const allowed: EntryKind[] = ['file', 'directory', 'symlink', 'hardlink', 'unsupported'];
    for (const kind of refused) expect(ruleOf(() => refuseSpecialFile('x', kind)), kind).toBe('special-file');
    for (const kind of allowed) expect(ruleOf(() => refuseSpecialFile('x', kind)), kind).toBeUndefined();
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
  const none = new Map<string, string>();
  it('allows targets that stay inside, dangling or not', () => {
    expect(ruleOf(() => refuseSymlinkOutside('a/l', 'a/l', '../b', none))).toBeUndefined();
    expect(ruleOf(() => refuseSymlinkOutside('a/b/l', 'a/b/l', '../../c/d', none))).toBeUndefined();
    expect(ruleOf(() => refuseSymlinkOutside('l', 'l', '.', none))).toBeUndefined();
    expect(ruleOf(() => refuseSymlinkOutside('l', 'l', 'missing/../x', none))).toBeUndefined();
  });
  it('refuses absolute targets', () => {
    expect(ruleOf(() => refuseSymlinkOutside('l', 'l', '/etc', none))).toBe('symlink-absolute');
  });
  it("refuses targets that climb out with '..'", () => {
    expect(ruleOf(() => refuseSymlinkOutside('l', 'l', '..', none))).toBe('symlink-escape');
    expect(ruleOf(() => refuseSymlinkOutside('a/l', 'a/l', '../../x', none))).toBe('symlink-escape');
    expect(ruleOf(() => refuseSymlinkOutside('a/l', 'a/l', 'b/../../../x', none))).toBe('symlink-escape');
  });
  it('follows the other links of the archive, the way the kernel would', () => {
    // 'up/..' looks like the root by name, but 'up' is a link to '.', so it is the parent.
    expect(ruleOf(() => refuseSymlinkOutside('l', 'l', 'up/..', new Map([['up', '.']])))).toBe('symlink-escape');
    expect(ruleOf(() => refuseSymlinkOutside('l', 'l', 'abs/x', new Map([['abs', '/etc']])))).toBe('symlink-escape');
    expect(ruleOf(() => refuseSymlinkOutside('l', 'l', 'deep/..', new Map([['deep', 'a/b']])))).toBeUndefined();
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
  it('refuses targets outside the archive', () => {
    expect(ruleOf(() => resolveHardlinkTarget('h', '/etc/passwd', unpacked, symlinks))).toBe('hardlink-outside');
    expect(ruleOf(() => resolveHardlinkTarget('h', '../outside', unpacked, symlinks))).toBe('hardlink-outside');
  });
  it('refuses targets through a symlink, missing targets and directories', () => {
    expect(ruleOf(() => resolveHardlinkTarget('h', 'sym/inner', unpacked, symlinks))).toBe('through-symlink');
    expect(ruleOf(() => resolveHardlinkTarget('h', 'later', unpacked, symlinks))).toBe('hardlink-missing');
    expect(ruleOf(() => resolveHardlinkTarget('h', 'dir', unpacked, symlinks))).toBe('hardlink-directory');
    expect(ruleOf(() => resolveHardlinkTarget('h', '.', unpacked, symlinks))).toBe('hardlink-directory');
  });
});
