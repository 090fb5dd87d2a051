import { describe, expect, it } from 'vitest';
import { globMatches, permissionMatcher } from '../../src/install/permission-match.js';

describe('permission matching (AWS\'s rules)', () => {
  it.each([
    ['*.sh', 'run.sh', true],
    ['*.sh', 'run.shx', false],
    ['*', 'anything', true],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
    ['file.txt', 'file.txt', true],
    ['file.txt', 'fileXtxt', false],
    ['[ab]?.(x)', '[ab]?.(x)', true],
    ['*', 'a/b', false],
    ['', 'a', false],
  ])('glob %s on %s: %s', (glob, name, expected) => {
    expect(globMatches(name, glob)).toBe(expected);
  });

  it('** takes every descendant but never the object itself', () => {
    const matches = permissionMatcher({ object: '/opt/app/', pattern: '**', except: [] }, '/');
    expect(matches('/opt/app')).toBe(false);
    expect(matches('/opt/app/a')).toBe(true);
    expect(matches('/opt/app/a/b/c')).toBe(true);
    expect(matches('/opt/application')).toBe(false);
  });

  it('a pattern and except apply to direct children only', () => {
    const matches = permissionMatcher({ object: 'app', pattern: '*.sh', except: ['skip*'] }, '/srv');
    expect(matches('/srv/app/run.sh')).toBe(true);
    expect(matches('/srv/app/skip.sh')).toBe(false);
    expect(matches('/srv/app/sub/run.sh')).toBe(false);
  });

  it('the object / covers everything', () => {
    expect(permissionMatcher({ object: '/', pattern: '**', except: [] }, '/')('/etc/x')).toBe(true);
  });
});
