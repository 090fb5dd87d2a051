import { describe, expect, it } from 'vitest';
import { isDefaultAce, parseAce } from '../../src/appspec/acl.js';

const invalid = (ace: string) =>
  `The deployment failed because of a problem with the acls permission settings in the application specification file. Invalid acl entry (${ace}).`;

describe('parseAce (ace_info.rb rules)', () => {
  it.each([
    ['d:u:bob:7', 'default:user:bob:rwx'],
    ['default:user:bob:rw', 'default:user:bob:rw-'],
    ['m:0', 'mask::---'],
    ['mask:rx', 'mask::r-x'],
    ['u:bob:rw-', 'user:bob:rw-'],
    ['user:bob:6', 'user:bob:rw-'],
    ['bob:5', 'user:bob:r-x'],
    ['g:www:r-x', 'group:www:r-x'],
    ['group:www:xr', 'group:www:r-x'],
    ['d:g:www:5', 'default:group:www:r-x'],
    ['d:m:7', 'default:mask::rwx'],
    ['d:o:4', 'default:other::r--'],
    ['d:u::7', 'default:user::rwx'],
    ['m::rwx', 'mask::rwx'],
    ['g:m:7', 'group:mask:rwx'],
    ['u:o:1', 'user:other:--x'],
    ['u:bob:', 'user:bob:---'],
    ['u:bob:rrww', 'user:bob:rw-'],
  ])('%s → %s', (ace, canonical) => {
    expect(parseAce(ace)).toEqual({ ok: true, value: canonical });
  });

  it.each(['7', '::7', 'a:b:c:d:7', 'x:u:bob:7', 'd:d:bob:7', 'default:d:bob:7', 'z:bob:7', 'm:bob:7', 'o:bob:7', 'm:m:7', 'o:o:7', 'd:m:bob:7'])(
    '%s is an invalid entry',
    (ace) => {
      expect(parseAce(ace)).toMatchObject({ ok: false, message: invalid(ace) });
    },
  );

  it.each(['u::7', 'g::r', 'o:7', 'other:r', 'group::7', 'user::rwx'])('%s is a base entry that mode sets', (ace) => {
    expect(parseAce(ace)).toMatchObject({
      ok: false,
      message: `The deployment failed because of a problem with the acls permission settings in the application specification file. Use mode to set the base acl entry (${ace}). Update the permissions section of the AppSpec file, and then try again.`,
    });
  });

  it.each([
    ['u:bob:8', '8'],
    ['u:bob:rwz', 'z'],
    ['u:bob:77', '7'],
    ['g:www:R', 'R'],
  ])('%s has an invalid permission character', (ace, char) => {
    expect(parseAce(ace)).toMatchObject({
      ok: false,
      message: `The deployment failed because the access control list (ACL) named ${ace} in the application specification file contains an invalid character (${char}). Correct the ACL in the permissions section of the AppSpec file, and then try again.`,
    });
  });

  it('tells default entries apart', () => {
    expect(isDefaultAce('default:user:bob:rwx')).toBe(true);
    expect(isDefaultAce('user:bob:rwx')).toBe(false);
  });
});
