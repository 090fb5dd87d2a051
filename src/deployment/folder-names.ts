/**
 * The names the agent gives folders under the deployment root, and the rules a name from outside (the
 * service's DeploymentGroupId and DeploymentId, `deploy -g`) must meet before it becomes one. One home
 * for these rules: the daemon's spec parser and `deploy` share them, and retention deletes only what
 * matches them. Pure: no I/O here.
 */

/** Folders of the deployment root itself that a group may not be named after (the group folder would be one of them). */
export const RESERVED_ROOT_NAMES: readonly string[] = ['deployment-instructions', 'deployment-logs', 'ongoing-deployment'];

/** NAME_MAX of Linux file systems, in bytes. */
const MAX_SEGMENT_BYTES = 255;

/**
 * Why `value` cannot be one folder name under the deployment root, or undefined when it can: one path
 * segment, not `.` or `..`, no `/`, `\` or NUL, not empty, at most 255 bytes.
 */
export function pathSegmentProblem(value: string): string | undefined {
  if (value === '') return 'it is empty';
  if (value === '.' || value === '..') return `${value} names a folder relative to another`;
  if (/[/\\\0]/.test(value)) return 'it holds a /, \\ or NUL character: it must be one folder name';
  if (Buffer.byteLength(value) > MAX_SEGMENT_BYTES) return `it is longer than ${MAX_SEGMENT_BYTES} bytes`;
  return undefined;
}

/** A deployment group id's problem: a path segment's, or one of the deployment root's own folder names. */
export function groupIdProblem(value: string, trackingName = 'ongoing-deployment'): string | undefined {
  const segment = pathSegmentProblem(value);
  if (segment !== undefined) return segment;
  if (RESERVED_ROOT_NAMES.includes(value) || value === trackingName) return `${value} is a folder of the agent's own in the deployment root`;
  return undefined;
}

/**
 * A deployment folder's name as CodeDeploy and the agent make them: `d-` and nine capitals or digits
 * (the service's deployment ids), with `-local` for `deploy`'s own.
 */
const DEPLOYMENT_FOLDER_NAME = /^d-[A-Z0-9]{9}(?:-local)?$/;

export function isDeploymentFolderName(name: string): boolean {
  return DEPLOYMENT_FOLDER_NAME.test(name);
}

/** What the agent puts in a deployment folder (layout.ts, the install journal's backups); retention looks for one of these. */
export function isDeploymentFolderEntry(name: string): boolean {
  return name === 'bundle.tar' || name === 'deployment-archive' || name === 'deployment-archive-temp' || name === 'logs'
    || name === 'operator-hooks.json' || name.startsWith('install-backup-');
}
