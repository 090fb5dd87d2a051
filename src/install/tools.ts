import { InstallError } from '../report/errors.js';
import type { Requirement, ToolName } from './types.js';
import { findTool } from '../util/find-tool.js';

export type ToolPaths = Partial<Record<ToolName, string>>;


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

/**
 * execa, loaded on first use: only ACLs and SELinux contexts run a tool, and loading it at start cost
 * every deployment about 20 ms (the small and many-files benchmarks).
 */
export const loadExeca = () => import('execa');
