import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The agent may run with a PATH without the sbin folders, where semanage, restorecon and setpriv live. */
const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of an executable found on PATH or in the system folders, or undefined (the caller says what to install). */
export function findTool(name: string, pathVariable = process.env.PATH ?? ''): string | undefined {
  const dirs = [...pathVariable.split(delimiter).filter((dir) => dir.startsWith('/')), ...SYSTEM_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The command to run a system tool by: its absolute path when found, else its bare name, so the failure to
 * start it names the tool (sudo, setpriv for hooks: the hook's PATH may not contain the sbin folders).
 */
export function toolCommand(name: string, pathVariable = process.env.PATH ?? ''): string {
  return findTool(name, pathVariable) ?? name;
}
