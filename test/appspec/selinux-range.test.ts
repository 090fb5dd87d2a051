import { describe, expect, it } from 'vitest';
import { parseSelinuxRange } from '../../src/appspec/selinux-range.js';

const backwards = (range: string) =>
  `The deployment failed because of a problem with the SELinux range specified (${range}) for the context parameter in the permissions section of the application specification file. Make corrections in the permissions section of the AppSpec file, and then try again.`;

describe('parseSelinuxRange (range_info.rb rules)', () => {
  it.each([
    ['s0', 's0'],
    ['s00', 's0'],
    ['s0-s0', 's0'],
    ['s0-s15', 's0-s15'],
    ['s3-s7:c5,c8,c9,c10,c17', 's3-s7:c5,c8.c10,c17'],
    ['s3-s7:c5,c8.c10,c17', 's3-s7:c5,c8.c10,c17'],
    ['s0:c3,c1,c2', 's0:c1.c3'],
    ['s0:c0.c1023', 's0:c0.c1023'],
    ['s0:c4.c4', 's0:c4'],
    ['s1:c1,', 's1:c1'],
  ])('%s → %s', (range, canonical) => {
    expect(parseSelinuxRange(range)).toEqual({ ok: true, value: canonical });
  });

  it.each([
    ['s3-s1', backwards('s3-s1')],
    ['s0:', 'invalid range part s0:'],
    [':c1', 'invalid range part :c1'],
    ['s0-', 'invalid range part s0-'],
    ['s0:c1.', 'invalid range part c1.'],
    ['s0:.c1', 'invalid range part .c1'],
    ['s', 'invalid sensitivity s'],
    ['x0', 'invalid sensitivity x0'],
    ['s1a', 'invalid sensitivity s1a'],
    ['s0-t1', 'invalid sensitivity t1'],
    ['s0:c1024', 'invalid category c1024'],
    ['s0:d1', 'invalid category d1'],
    ['s0:c1:c2', 'invalid category c1:c2'],
    ['s0:c1,,c2', 'invalid category '],
    ['s0:c1.c2.c3', 'invalid category c2.c3'],
    ['s0:c5.c2', 'invalid category range c5.c2'],
    ['s0:c1,c1', 'duplicate categories'],
    ['s0:c1.c3,c2', 'duplicate categories'],
  ])('%s → %s', (range, message) => {
    const parsed = parseSelinuxRange(range);
    expect(parsed).toMatchObject({ ok: false, message });
    expect(!parsed.ok && parsed.hint).toMatch(/s<low>/);
  });
});
