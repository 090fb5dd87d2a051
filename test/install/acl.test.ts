import { describe, expect, it } from 'vitest';
import { completeAcl, hasDefaultEntries } from '../../src/install/acl.js';

describe('completeAcl', () => {
  it('the example of AWS\'s own tests (mode 100421)', () => {
    expect(completeAcl(['user:bob:rwx', 'default:user:bob:rwx'], 0o100421).join(',')).toBe(
      'user:bob:rwx,default:user:bob:rwx,user::r--,group::-w-,other::--x,mask::-w-,default:user::r--,default:group::-w-,default:other::--x,default:mask::-w-',
    );
  });

  it('adds only the base entries when there is no named entry', () => {
    expect(completeAcl(['mask::r-x'], 0o100750)).toEqual(['mask::r-x', 'user::rwx', 'group::r-x', 'other::---']);
  });

  it('keeps a given mask and given default base entries', () => {
    expect(completeAcl(['group:web:r-x', 'mask::rwx', 'default:group::r--', 'default:user:bob:rw-'], 0o40755)).toEqual([
      'group:web:r-x',
      'mask::rwx',
      'default:group::r--',
      'default:user:bob:rw-',
      'user::rwx',
      'group::r-x',
      'other::r-x',
      'default:user::rwx',
      'default:other::r-x',
      'default:mask::r--',
    ]);
  });

  it('is computed afresh for every file (AWS\'s agent repeated base entries from the second file on)', () => {
    const acl = ['user:bob:rwx'];
    const first = completeAcl(acl, 0o100644);
    const second = completeAcl(acl, 0o100600);
    expect(acl).toEqual(['user:bob:rwx']);
    expect(second).toEqual(['user:bob:rwx', 'user::rw-', 'group::---', 'other::---', 'mask::---']);
    expect(first).not.toBe(second);
  });

  it('hasDefaultEntries', () => {
    expect(hasDefaultEntries(['user:bob:rwx'])).toBe(false);
    expect(hasDefaultEntries(['user:bob:rwx', 'default:mask::r-x'])).toBe(true);
  });
});
