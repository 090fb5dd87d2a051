import { accessSync, chmodSync, closeSync, constants, existsSync, openSync, readSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Logger } from '../log/logger.js';
import { ErrorCode } from '../report/error-codes.js';
import { ScriptError } from '../report/errors.js';

/**
 * Where a script's appspec `location` points (agent-spec §6.2 steps 1–2).
 *
 * As in the anchor the location is joined to the revision folder, so a leading `/` is still relative
 * to it. Unlike the anchor, a location that leaves the revision with `..` is refused: it could only run
 * something the revision does not contain.
 */
export function resolveScriptPath(archiveDir: string, location: string): string {
  const root = resolve(archiveDir);
  const scriptPath = join(root, location);
  const inside = relative(root, scriptPath);
  if (inside === '..' || inside.startsWith(`..${'/'}`) || isAbsolute(inside)) {
    throw new ScriptError(
      ErrorCode.ScriptMissing,
      location,
      `Script location ${location} points outside the revision (${root}); script locations are relative to the revision root and may not leave it with ".."`,
    );
  }
  if (!existsSync(scriptPath)) {
    throw new ScriptError(ErrorCode.ScriptMissing, location, `Script does not exist at specified location: ${scriptPath}`);
  }
  return scriptPath;
}

/** Executable by the agent (as root: any execute bit set). */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Scripts zipped on Windows or committed without +x are common (users-and-peers theme 16): like the
 * anchor, warn and add the execute bits; only if that fails is it an error (code 2).
 * Returns the warning that was logged, if any, so the caller can put it in scripts.log too.
 */
export function ensureExecutable(scriptPath: string, location: string, logger?: Logger): string | undefined {
  if (isExecutable(scriptPath)) return undefined;
  const warning = `Script at specified location: ${location} is not executable.  Trying to make it executable.`;
  logger?.warn(warning);
  try {
    chmodSync(scriptPath, statSync(scriptPath).mode | 0o111);
  } catch {
    // reported below
  }
  if (!isExecutable(scriptPath)) {
    throw new ScriptError(
      ErrorCode.ScriptNotExecutable,
      location,
      `Unable to set script at specified location: ${location} as executable`,
    );
  }
  return warning;
}

/** What to do about a script whose `#!` line ends in a carriage return; said wherever its failure is. */
export const CRLF_HINT = 'its #! line ends in a carriage return (Windows CRLF line endings), so it names an interpreter that does not exist: convert the script to LF line endings, e.g. with dos2unix, and deploy again';

/** Whether a file's first bytes are a `#!` line that ends in `\r\n` (a script saved on Windows). */
export function isCrlfShebang(head: Buffer): boolean {
  const text = head.toString('latin1');
  const lineEnd = text.indexOf('\n');
  return text.startsWith('#!') && lineEnd > 0 && text[lineEnd - 1] === '\r';
}

/** isCrlfShebang of a script on the disk. */
export function hasCrlfShebang(path: string): boolean {
  const buffer = Buffer.alloc(512);
  let length = 0;
  try {
    const fd = openSync(path, 'r');
    try {
      length = readSync(fd, buffer, 0, buffer.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
  return isCrlfShebang(buffer.subarray(0, length));
}
