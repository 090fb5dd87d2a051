import { parseFailure, parsedValue, type Parsed } from './parsed.js';

const MODE_HINT = 'write one to four octal digits, e.g. mode: 644 or mode: 2775 (setuid 4, setgid 2, sticky 1 in front)';

/**
 * A permissions mode as `mode_info.rb` reads it: the digits as written, left-padded with `0` to three,
 * at most four, each 0-7. Returns the mode as a number (0o644).
 *
 * Takes the text the user wrote, not the YAML value: AWS's agent lets YAML 1.1 turn an unquoted `0644`
 * into 420 and then applies mode 0420 (docs/compatibility.md, "AppSpec"); here `0644` means 0644.
 */
export function parseMode(written: string): Parsed<number> {
  const mode = written.padStart(3, '0');
  if (mode.length > 4) {
    return parseFailure(
      `The deployment failed because the length of a permissions mode (${mode}) in the application specification file is invalid. Permissions modes must be between one and four characters long. Update the permissions section of the AppSpec file, and then try again.`,
      MODE_HINT,
    );
  }
  for (const char of mode) {
    if (char < '0' || char > '7') {
      return parseFailure(
        `The deployment failed because the permissions mode (${mode}) in the application specification file contains an invalid character (${char}). Update the permissions section of the AppSpec file, and then try again.`,
        /[ugoa+=]/.test(written) ? `symbolic modes such as u+x are not supported; ${MODE_HINT}` : MODE_HINT,
      );
    }
  }
  return parsedValue(Number.parseInt(mode, 8));
}
