import { describe, expect, it } from 'vitest';
import { effectiveFileExistsBehavior, planInstall } from '../../src/install/plan.js';
import type { Permission } from '../../src/appspec/types.js';
import type { InstallOperation, InstallPlan } from '../../src/install/types.js';
import { appspec, scan, source } from './plan-fixtures.js';

/** Operations as short strings, easy to compare in a table. */
function summary(plan: InstallPlan): string[] {
  return plan.operations.map((op: InstallOperation) => {
    switch (op.type) {
      case 'mkdir':
        return `mkdir ${op.directory}`;
      case 'copy':
        return `copy ${op.source} ${op.destination}${op.replaces ? ' (replace)' : ''}${op.entry.type === 'symlink' ? ` (link ${op.entry.linkTarget})` : ''}`;
      case 'chmod':
        return `chmod ${op.mode.toString(8)} ${op.file}`;
      case 'setfacl':
        return `setfacl ${op.acl.join(',')} ${op.file}`;
      case 'semanage':
        return `semanage ${op.context.type} ${op.file}`;
      case 'chown':
        return `chown ${op.owner ?? ''}:${op.group ?? ''} ${op.file}${op.link ? ' (link)' : ''}`;
    }
  });
}

const appTree = { '': 'directory', 'a.txt': 'file', sub: 'directory', 'sub/b.sh': 'file', 'sub/c.txt': 'file' } as const;
const wholeArchive = { source: '/', destination: '/opt/app' };

describe('planInstall: files', () => {
  it('creates the missing ancestors, the destination and the tree, in walk order', () => {
    const plan = planInstall({ appspec: appspec([wholeArchive]), scan: scan([source(wholeArchive, appTree)]) });
    expect(summary(plan)).toEqual([
      'mkdir /opt',
      'mkdir /opt/app',
      'copy /archive/a.txt /opt/app/a.txt',
      'mkdir /opt/app/sub',
      'copy /archive/sub/b.sh /opt/app/sub/b.sh',
      'copy /archive/sub/c.txt /opt/app/sub/c.txt',
    ]);
    expect(plan.fileExistsBehavior).toBe('DISALLOW');
    expect(plan.removals).toEqual([]);
  });

  it('installs a single file under the destination with its own name, creating the destination', () => {
    const mapping = { source: 'bin/run.sh', destination: '/usr/local/bin' };
    const plan = planInstall({
      appspec: appspec([mapping]),
      scan: scan([source(mapping, { '': 'file' })], { '/usr': 'directory', '/usr/local': 'directory' }),
    });
    expect(summary(plan)).toEqual(['mkdir /usr/local/bin', 'copy /archive/bin/run.sh /usr/local/bin/run.sh']);
  });

  it('does not create directories that exist, also through a link to a directory', () => {
    const plan = planInstall({
      appspec: appspec([wholeArchive]),
      scan: scan([source(wholeArchive, appTree)], { '/opt': 'directory', '/opt/app': { link: 'directory' }, '/opt/app/sub': 'directory' }),
    });
    expect(summary(plan)).toEqual([
      'copy /archive/a.txt /opt/app/a.txt',
      'copy /archive/sub/b.sh /opt/app/sub/b.sh',
      'copy /archive/sub/c.txt /opt/app/sub/c.txt',
    ]);
  });

  it('resolves relative destinations against the working directory', () => {
    const mapping = { source: 'a.txt', destination: 'rel/dir/' };
    const plan = planInstall({ appspec: appspec([mapping]), scan: scan([source(mapping, { '': 'file' })], { '/cwd': 'directory' }) });
    expect(summary(plan)).toEqual(['mkdir /cwd/rel', 'mkdir /cwd/rel/dir', 'copy /archive/a.txt /cwd/rel/dir/a.txt']);
  });

  it('recreates links from the bundle as links, file and directory links alike, without descending', () => {
    const tree = { '': 'directory', 'current': { link: 'releases/v1' }, 'etc': { link: '/etc' }, 'f': 'file' } as const;
    const plan = planInstall({ appspec: appspec([wholeArchive]), scan: scan([source(wholeArchive, tree)], { '/opt': 'directory' }) });
    expect(summary(plan)).toEqual([
      'mkdir /opt/app',
      'copy /archive/current /opt/app/current (link releases/v1)',
      'copy /archive/etc /opt/app/etc (link /etc)',
      'copy /archive/f /opt/app/f',
    ]);
  });

  it('treats a source that is itself a link as a file named like the link', () => {
    const mapping = { source: 'docs', destination: '/srv' };
    const plan = planInstall({ appspec: appspec([mapping]), scan: scan([source(mapping, { '': { link: '/usr/share/doc' } })], { '/srv': 'directory' }) });
    expect(summary(plan)).toEqual(['copy /archive/docs /srv/docs (link /usr/share/doc)']);
  });
});

describe('planInstall: file_exists_behavior', () => {
  const existing = { '/opt': 'directory', '/opt/app': 'directory', '/opt/app/a.txt': 'file', '/opt/app/sub': 'directory', '/opt/app/sub/c.txt': 'file' } as const;
  const run = (appspecValue?: 'DISALLOW' | 'OVERWRITE' | 'RETAIN', deploymentValue?: string) =>
    planInstall({ appspec: appspec([wholeArchive], [], appspecValue), scan: scan([source(wholeArchive, appTree)], existing), fileExistsBehavior: deploymentValue });

  it('DISALLOW refuses with the anchor message for the first file, then lists the others', () => {
    expect(() => run('DISALLOW')).toThrowError(
      'The deployment failed because a specified file already exists at this location: /opt/app/a.txt\n1 more file(s) already exist: /opt/app/sub/c.txt',
    );
  });

  it('DISALLOW with one conflict gives exactly the anchor message', () => {
    expect(() =>
      planInstall({ appspec: appspec([wholeArchive]), scan: scan([source(wholeArchive, appTree)], { '/opt': 'directory', '/opt/app': 'directory', '/opt/app/a.txt': 'file' }) }),
    ).toThrowError(/^The deployment failed because a specified file already exists at this location: \/opt\/app\/a\.txt$/);
  });

  it('a dangling link at a destination is a conflict too', () => {
    expect(() =>
      planInstall({ appspec: appspec([wholeArchive]), scan: scan([source(wholeArchive, appTree)], { '/opt': 'directory', '/opt/app': 'directory', '/opt/app/a.txt': { link: undefined } }) }),
    ).toThrowError('already exists at this location: /opt/app/a.txt');
  });

  it('OVERWRITE copies over existing files, marking them to be moved aside', () => {
    expect(summary(run('OVERWRITE'))).toEqual([
      'copy /archive/a.txt /opt/app/a.txt (replace)',
      'copy /archive/sub/b.sh /opt/app/sub/b.sh',
      'copy /archive/sub/c.txt /opt/app/sub/c.txt (replace)',
    ]);
  });

  it('RETAIN leaves existing files alone and does not track them; the plan lists them as kept', () => {
    const plan = run('RETAIN');
    expect(summary(plan)).toEqual(['copy /archive/sub/b.sh /opt/app/sub/b.sh']);
    expect(plan.kept).toEqual(['/opt/app/a.txt', '/opt/app/sub/c.txt']);
    expect(run('OVERWRITE').kept).toEqual([]);
  });

  it('the appspec value wins over the deployment value, which is upper-cased, and DISALLOW is the default', () => {
    expect(run('RETAIN', 'OVERWRITE').fileExistsBehavior).toBe('RETAIN');
    expect(run(undefined, 'overwrite').fileExistsBehavior).toBe('OVERWRITE');
    expect(effectiveFileExistsBehavior(undefined, undefined)).toBe('DISALLOW');
    expect(effectiveFileExistsBehavior(undefined, '')).toBe('DISALLOW');
  });

  it('an unknown deployment value fails only when a file exists, with the anchor message', () => {
    expect(() => run(undefined, 'merge')).toThrowError(
      'The deployment failed because an invalid option was specified for fileExistsBehavior: MERGE. Valid options include OVERWRITE, RETAIN, and DISALLOW.',
    );
    const plan = planInstall({ appspec: appspec([wholeArchive]), scan: scan([source(wholeArchive, appTree)]), fileExistsBehavior: 'merge' });
    expect(plan.operations).toHaveLength(6);
  });

  it('OVERWRITE refuses to replace a directory with a file', () => {
    const mapping = { source: 'a.txt', destination: '/opt/app' };
    expect(() =>
      planInstall({
        appspec: appspec([mapping], [], 'OVERWRITE'),
        scan: scan([source(mapping, { '': 'file' })], { '/opt': 'directory', '/opt/app': 'directory', '/opt/app/a.txt': 'directory' }),
      }),
    ).toThrowError('file_exists_behavior is OVERWRITE but /opt/app/a.txt is a directory');
  });
});

describe('planInstall: conflicts inside the appspec', () => {
  it('two sources for one destination', () => {
    const first = { source: 'one/x', destination: '/srv' };
    const second = { source: 'two/x', destination: '/srv' };
    expect(() =>
      planInstall({ appspec: appspec([first, second]), scan: scan([source(first, { '': 'file' }), source(second, { '': 'file' })], { '/srv': 'directory' }) }),
    ).toThrowError(
      'The deployment failed because the application specification file specifies two source files named /archive/two/x and /archive/one/x for the same destination (/srv/x). Remove one of the source file paths from the AppSpec file, and then try again.',
    );
  });

  it('a file where the same install creates a directory', () => {
    const dirs = { source: 'tree', destination: '/srv' };
    const file = { source: 'x', destination: '/srv' };
    expect(() =>
      planInstall({
        appspec: appspec([dirs, file]),
        scan: scan([source(dirs, { '': 'directory', x: 'directory' }), source(file, { '': 'file' })], { '/srv': 'directory' }),
      }),
    ).toThrowError(
      'The deployment failed because the application specification file calls for installing the file /archive/x, but a file with that name already exists at the location (/srv/x). Update your AppSpec file or directory structure, and then try again.',
    );
  });

  it('a directory where the same install copies a file', () => {
    const file = { source: 'x', destination: '/srv' };
    const dirs = { source: 'tree', destination: '/srv' };
    expect(() =>
      planInstall({
        appspec: appspec([file, dirs]),
        scan: scan([source(file, { '': 'file' }), source(dirs, { '': 'directory', x: 'directory' })], { '/srv': 'directory' }),
      }),
    ).toThrowError(
      'The deployment failed because the application specification file includes an mkdir command more than once for the same destination path (/srv/x) from (/archive/x). Update the files section of the AppSpec file, and then try again.',
    );
  });

  it('the same directory from two entries is created once', () => {
    const one = { source: 'a', destination: '/srv/app' };
    const two = { source: 'b', destination: '/srv/app' };
    const plan = planInstall({ appspec: appspec([one, two]), scan: scan([source(one, { '': 'file' }), source(two, { '': 'file' })], { '/srv': 'directory' }) });
    expect(summary(plan)).toEqual(['mkdir /srv/app', 'copy /archive/a /srv/app/a', 'copy /archive/b /srv/app/b']);
  });

  it('an existing file where a directory is needed', () => {
    expect(() =>
      planInstall({ appspec: appspec([wholeArchive]), scan: scan([source(wholeArchive, appTree)], { '/opt': 'directory', '/opt/app': 'file' }) }),
    ).toThrowError('/opt/app exists and is not a directory, but installing /archive needs a directory there');
    expect(() =>
      planInstall({ appspec: appspec([wholeArchive]), scan: scan([source(wholeArchive, appTree)], { '/opt': 'file' }) }),
    ).toThrowError('/opt exists and is not a directory');
    expect(() =>
      planInstall({ appspec: appspec([wholeArchive]), scan: scan([source(wholeArchive, appTree)], { '/opt': 'directory', '/opt/app': 'directory', '/opt/app/sub': 'file' }) }),
    ).toThrowError('/opt/app/sub exists and is not a directory');
  });

  it('a missing source and a source outside the revision', () => {
    const mapping = { source: 'nope', destination: '/srv' };
    expect(() => planInstall({ appspec: appspec([mapping]), scan: scan([source(mapping, {}, 'missing')]) })).toThrowError(
      'the source nope in the files section of the AppSpec file does not exist in the revision (/archive/nope)',
    );
    expect(() => planInstall({ appspec: appspec([mapping]), scan: scan([source(mapping, {}, 'outside')]) })).toThrowError('points outside the revision');
  });

  it('device nodes and names with a line break', () => {
    expect(() => planInstall({ appspec: appspec([wholeArchive]), scan: scan([source(wholeArchive, { '': 'directory', fifo: 'other' })]) })).toThrowError(
      'is not a regular file, directory or symbolic link',
    );
    expect(() => planInstall({ appspec: appspec([wholeArchive]), scan: scan([source(wholeArchive, { '': 'directory', 'a\nb': 'file' })]) })).toThrowError(
      'a name with a line break',
    );
  });
});

describe('planInstall: the previous deployment', () => {
  it('removes what the cleanup file lists, newest first, so those files do not conflict', () => {
    const plan = planInstall({
      appspec: appspec([wholeArchive]),
      scan: scan([source(wholeArchive, appTree)], { '/opt': 'directory', '/opt/app': 'directory', '/opt/app/a.txt': 'file', '/opt/app/old': { link: 'file' } }, {
        entries: [
          { kind: 'path', path: '/opt/app' },
          { kind: 'path', path: '/opt/app/a.txt' },
          { kind: 'path', path: '/opt/app/old' },
          { kind: 'path', path: '/opt/app/gone' },
          { kind: 'semanage', path: '/opt/app/a.txt' },
        ],
        children: { '/opt/app': ['/opt/app/a.txt', '/opt/app/old'] },
      }),
    });
    expect(plan.removals).toEqual([
      { type: 'semanage-delete', path: '/opt/app/a.txt' },
      { type: 'remove', path: '/opt/app/old', entryType: 'symlink' },
      { type: 'remove', path: '/opt/app/a.txt', entryType: 'file' },
      { type: 'remove', path: '/opt/app', entryType: 'directory' },
    ]);
    expect(summary(plan)[0]).toBe('mkdir /opt/app');
  });

  it('keeps a listed directory that still holds other files', () => {
    const plan = planInstall({
      appspec: appspec([wholeArchive]),
      scan: scan([source(wholeArchive, appTree)], { '/opt': 'directory', '/opt/app': 'directory', '/opt/app/a.txt': 'file', '/opt/app/mine.txt': 'file' }, {
        entries: [
          { kind: 'path', path: '/opt/app' },
          { kind: 'path', path: '/opt/app/a.txt' },
        ],
        children: { '/opt/app': ['/opt/app/a.txt', '/opt/app/mine.txt'] },
      }),
    });
    expect(plan.removals).toEqual([{ type: 'remove', path: '/opt/app/a.txt', entryType: 'file' }]);
    expect(summary(plan)).not.toContain('mkdir /opt/app');
    expect(summary(plan)).toContain('copy /archive/a.txt /opt/app/a.txt');
  });
});

describe('planInstall: permissions', () => {
  const existing = { '/opt': 'directory' } as const;
  const plan = (permissions: Parameters<typeof appspec>[1], tree: Parameters<typeof source>[1] = appTree, extra: Record<string, 'directory' | 'file'> = {}) =>
    planInstall({ appspec: appspec([wholeArchive], permissions), scan: scan([source(wholeArchive, tree)], { ...existing, ...extra }) });
  const permissionOps = (p: InstallPlan) => summary(p).filter((line) => !line.startsWith('mkdir') && !line.startsWith('copy'));

  it('sets chmod, setfacl, semanage then chown on a file object, and records what the host must provide', () => {
    const result = plan([
      { object: '/opt/app/a.txt', mode: 0o4755, acls: ['user:bob:rwx'], context: { type: 'httpd_sys_content_t' }, owner: 'bob', group: 'web' },
    ]);
    expect(permissionOps(result)).toEqual([
      'chmod 4755 /opt/app/a.txt',
      'setfacl user:bob:rwx /opt/app/a.txt',
      'semanage httpd_sys_content_t /opt/app/a.txt',
      'chown bob:web /opt/app/a.txt',
    ]);
    expect(result.users).toEqual([{ name: 'bob', object: '/opt/app/a.txt' }]);
    expect(result.groups).toEqual([{ name: 'web', object: '/opt/app/a.txt' }]);
    expect(result.tools.map((t) => t.name)).toEqual(['setfacl', 'semanage', 'restorecon']);
  });

  it.each<[string, Partial<Permission>, string[]]>([
    ['** takes every descendant, files first then directories; never the object itself', { object: '/opt/app', mode: 0o750 }, ['/opt/app/a.txt', '/opt/app/sub/b.sh', '/opt/app/sub/c.txt', '/opt/app/sub']],
    ['a glob takes direct children only', { object: '/opt/app/sub', pattern: '*.sh', mode: 0o750 }, ['/opt/app/sub/b.sh']],
    ['a glob on the top object does not reach grandchildren', { object: '/opt/app', pattern: '*', mode: 0o750 }, ['/opt/app/a.txt', '/opt/app/sub']],
    ['except removes direct children', { object: '/opt/app', except: ['a.*'], mode: 0o750 }, ['/opt/app/sub/b.sh', '/opt/app/sub/c.txt', '/opt/app/sub']],
    ['except never matches deeper paths (anchor rule)', { object: '/opt/app', except: ['*.sh'], mode: 0o750 }, ['/opt/app/a.txt', '/opt/app/sub/b.sh', '/opt/app/sub/c.txt', '/opt/app/sub']],
    ['type directory', { object: '/opt/app', type: ['directory'], mode: 0o750 }, ['/opt/app/sub']],
    ['type file', { object: '/opt/app', type: ['file'], mode: 0o750 }, ['/opt/app/a.txt', '/opt/app/sub/b.sh', '/opt/app/sub/c.txt']],
    ['an existing directory above the install', { object: '/opt', pattern: 'app', mode: 0o750 }, ['/opt/app']],
    ['an unrelated object is ignored', { object: '/var/www', mode: 0o750 }, []],
    ['a file object with type directory is ignored', { object: '/opt/app/a.txt', type: ['directory'], mode: 0o750 }, []],
  ])('matching: %s', (_name, permission, files) => {
    const result = plan([permission]);
    expect(permissionOps(result)).toEqual(files.map((file) => `chmod 750 ${file}`));
  });

  it('a relative object resolves against the working directory', () => {
    const mapping = { source: '/', destination: 'app' };
    const result = planInstall({ appspec: appspec([mapping], [{ object: 'app/a.txt', mode: 0o600 }]), scan: scan([source(mapping, appTree)], { '/cwd': 'directory' }) });
    expect(permissionOps(result)).toEqual(['chmod 600 /cwd/app/a.txt']);
  });

  it('on a link from the bundle only the link\'s own owner changes', () => {
    const tree = { '': 'directory', l: { link: '/etc/shadow' } } as const;
    const result = plan([{ object: '/opt/app', mode: 0o777, acls: ['user:bob:rwx'], owner: 'bob' }], tree);
    expect(permissionOps(result)).toEqual(['chown bob: /opt/app/l (link)']);
    expect(result.tools).toEqual([]);
  });

  it.each<[string, Partial<Permission>, string]>([
    ['a pattern on a file object', { object: '/opt/app/a.txt', pattern: '*.txt' }, 'The deployment failed because the application specification file includes an object (/opt/app/a.txt) with an invalid pattern (*.txt), such as a pattern for a file applied to a directory. Correct the permissions section of the AppSpec file, and then try again.'],
    ['except on a file object', { object: '/opt/app/a.txt', except: ['x', 'y'] }, 'The deployment failed because the except parameter for a pattern in the permissions section (["x", "y"]) for the object named /opt/app/a.txt contains an invalid format. Update the AppSpec file, and then try again.'],
    ['a default ACL on a file object', { object: '/opt/app/a.txt', acls: ['default:user:bob:rwx'] }, 'The deployment failed because the -d parameter has been specified to apply an acl setting to a file. This parameter is supported for directories only. Update the AppSpec file, and then try again.'],
    ['a default ACL reaching files through a directory', { object: '/opt/app', acls: ['default:user:bob:rwx'] }, 'The deployment failed because the -d parameter has been specified'],
  ])('file-permission validation: %s', (_name, permission, message) => {
    expect(() => plan([permission])).toThrowError(message);
  });

  it('a default ACL on directories only is fine', () => {
    const result = plan([{ object: '/opt/app', type: ['directory'], acls: ['default:user:bob:rwx'] }]);
    expect(permissionOps(result)).toEqual(['setfacl default:user:bob:rwx /opt/app/sub']);
  });

  it('the same object twice', () => {
    expect(() => plan([{ object: '/opt/app', mode: 0o755 }, { object: '/opt/app/sub', mode: 0o700 }])).toThrowError(
      'The deployment failed because the permissions setting for (/opt/app/sub/b.sh) is specified more than once in the application specification file. Update the files section of the AppSpec file, and then try again.',
    );
  });

  it('pre-existing files are never touched', () => {
    const result = planInstall({
      appspec: appspec([wholeArchive], [{ object: '/opt/app', mode: 0o700 }], 'RETAIN'),
      scan: scan([source(wholeArchive, appTree)], { '/opt': 'directory', '/opt/app': 'directory', '/opt/app/a.txt': 'file' }),
    });
    expect(permissionOps(result)).toEqual(['chmod 700 /opt/app/sub/b.sh', 'chmod 700 /opt/app/sub/c.txt', 'chmod 700 /opt/app/sub']);
  });
});
