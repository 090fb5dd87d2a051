import { chmodSync, constants, existsSync, fchmodSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The modes of files that can hold hook output or the agent's log lines (scripts.log, the deployments
 * log, codedeploy-local.log, the daemon's log): readable by root and the root group only, so a local
 * user cannot read what another application's hooks printed. The folders the agent makes for them are
 * 0750, as install.sh makes the log folder. See docs/decisions.md, "Privilege safety".
 */
export const LOG_FILE_MODE = 0o640;
export const LOG_DIR_MODE = 0o750;

/** Makes the log file's folder when it is missing, 0750 whatever the umask; an existing folder keeps the mode its owner gave it. */
export function makeLogFolder(dir: string): void {
  if (existsSync(dir)) return;
  // Only the log folder itself is closed: the folders above it (a deployment folder, the deployment
  // root) must stay reachable by the runas users whose scripts live there.
  mkdirSync(dirname(dir), { recursive: true });
  mkdirSync(dir, { recursive: true, mode: LOG_DIR_MODE });
  chmodSync(dir, LOG_DIR_MODE);
}

/**
 * Opens a log file for appending, never through a symlink, and gives it mode 0640 when it is this
 * user's (a file an earlier agent left 0644 is tightened; the umask cannot loosen a new one).
 */
export function openLogForAppend(path: string): number {
  makeLogFolder(dirname(path));
  const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, LOG_FILE_MODE);
  try {
    const stats = fstatSync(fd);
    if ((stats.mode & 0o7777) !== LOG_FILE_MODE && stats.uid === process.geteuid?.()) fchmodSync(fd, LOG_FILE_MODE);
  } catch {
    // the mode is a protection, not a condition of writing
  }
  return fd;
}
