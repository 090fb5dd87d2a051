import { describe, expect, it } from 'vitest';
import { parseMode } from '../../src/appspec/mode.js';

describe('parseMode (mode_info.rb rules)', () => {
  it.each([
    ['644', 0o644],
    ['0644', 0o644],
    ['755', 0o755],
    ['4755', 0o4755],
    ['7', 0o7],
    ['77', 0o77],
    ['0', 0],
    ['0000', 0],
    ['1777', 0o1777],
  ])('%s → %o', (written, mode) => {
    expect(parseMode(written)).toEqual({ ok: true, value: mode });
  });

  it('refuses more than four digits, showing the padded mode', () => {
    const parsed = parseMode('00644');
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.message).toBe(
        'The deployment failed because the length of a permissions mode (00644) in the application specification file is invalid. Permissions modes must be between one and four characters long. Update the permissions section of the AppSpec file, and then try again.',
      );
      expect(parsed.hint).toMatch(/octal digits/);
    }
  });

  it.each([
    ['648', '648', '8'],
    ['9', '009', '9'],
    ['rwx', 'rwx', 'r'],
    ['0o64', '0o64', 'o'],
  ])('%s has an invalid character', (written, shown, char) => {
    const parsed = parseMode(written);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.message).toBe(
        `The deployment failed because the permissions mode (${shown}) in the application specification file contains an invalid character (${char}). Update the permissions section of the AppSpec file, and then try again.`,
      );
    }
  });

  it('explains that symbolic modes are not supported', () => {
    const parsed = parseMode('u+x');
    expect(!parsed.ok && parsed.hint).toMatch(/symbolic modes/);
  });
});
