import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { InstallError } from '../report/errors.js';
import type { Requirement, ToolName } from './types.js';

export type ToolPaths = Partial<Record<ToolName, string>>;

/** The agent may run with a PATH without the sbin folders, where semanage and restorecon live. */
const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of an executable, or undefined. */
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

const PURPOSE: Record<ToolName, { what: string; package: string }> = {
  setfacl: { what: 'sets ACLs (acls)', package: 'the acl package' },
  semanage: { what: 'sets an SELinux context (context)', package: 'policycoreutils-python-utils (policycoreutils-python on older systems)' },
  restorecon: { what: 'sets an SELinux context (context)', package: 'policycoreutils' },
};

/** Every tool the plan needs, found before anything is written, or a message saying what to install. */
export function requireTools(requirements: readonly Requirement<ToolName>[]): ToolPaths {
  const paths: ToolPaths = {};
  for (const { name, object } of requirements) {
    const path = findTool(name);
    if (path === undefined) {
      const { what, package: pkg } = PURPOSE[name];
      throw new InstallError(
        `The deployment failed because the permissions section of the AppSpec file ${what} on ${object}, but ${name} is not installed on this host. Install ${pkg}, or remove that setting from the AppSpec file, and then try again.`,
      );
    }
    paths[name] = path;
  }
  return paths;
}
