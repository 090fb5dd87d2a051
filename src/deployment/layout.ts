import { dirname, join } from 'node:path';

/**
 * Paths under the deployment root, with AWS's names (docs/architecture.md, "On disk") so a host can switch
 * agents without losing its history. Pure: no I/O here.
 */
export interface DeploymentPaths {
  /** ROOT/<group>/<deployment> */
  deploymentDir: string;
  bundleFile: string;
  archiveDir: string;
  /**
   * The bundle's own modes and owners that deployment-archive does not keep (../archive/original-attributes.ts);
   * ours, not AWS's. Its presence also says the archive was made root's.
   */
  archiveAttributesFile: string;
  archiveTempDir: string;
  /**
   * Where a local run unpacks an archive before the events that precede DownloadBundle, to check it
   * (ours, not AWS's): renamed to `archiveDir` when DownloadBundle's turn comes, since until then the
   * stop events must not see a `deployment-archive` of this deployment.
   */
  stagedArchiveDir: string;
  logsDir: string;
  scriptsLog: string;
}

export function deploymentPaths(rootDir: string, groupId: string, deploymentId: string): DeploymentPaths {
  const deploymentDir = join(rootDir, groupId, deploymentId);
  return {
    deploymentDir,
    bundleFile: join(deploymentDir, 'bundle.tar'),
    archiveDir: join(deploymentDir, 'deployment-archive'),
    archiveAttributesFile: archiveAttributesFileFor(join(deploymentDir, 'deployment-archive')),
    archiveTempDir: join(deploymentDir, 'deployment-archive-temp'),
    stagedArchiveDir: join(deploymentDir, 'deployment-archive-staged'),
    logsDir: join(deploymentDir, 'logs'),
    scriptsLog: join(deploymentDir, 'logs', 'scripts.log'),
  };
}

/** Install's journal of what it changes (ours, not AWS's): present while an Install runs, or after one was interrupted. */
export function installJournalFile(deploymentDir: string): string {
  return join(deploymentDir, 'install-journal');
}

/** What Install moved out of the way, kept until it commits or is rolled back. */
export function installBackupDir(deploymentDir: string): string {
  return join(deploymentDir, 'install-backup');
}

/** The file beside a deployment-archive folder that records what its bundle said (see DeploymentPaths). */
export function archiveAttributesFileFor(archiveDir: string): string {
  return join(dirname(archiveDir), 'archive-attributes.json');
}

/** Whether this deployment's operator `pre-deployment` hooks ran and its `post-deployment` hooks are due (ours, not AWS's). */
export function operatorHooksStateFile(deploymentDir: string): string {
  return join(deploymentDir, 'operator-hooks.json');
}

export function instructionsDir(rootDir: string): string {
  return join(rootDir, 'deployment-instructions');
}

export function groupDir(rootDir: string, groupId: string): string {
  return join(rootDir, groupId);
}

/** Note the `-` separator for these two vs `_` for the pointer files, as in AWS's agent. */
export function cleanupFile(rootDir: string, groupId: string): string {
  return join(instructionsDir(rootDir), `${groupId}-cleanup`);
}

/** The group's cross-process lock (./group-lock.ts): beside its other per-group files, never in the group folder retention empties. */
export function groupLockFile(rootDir: string, groupId: string): string {
  return join(instructionsDir(rootDir), `${groupId}.lock`);
}

export function installJsonFile(rootDir: string, groupId: string): string {
  return join(instructionsDir(rootDir), `${groupId}-install.json`);
}

export function lastSuccessfulInstallFile(rootDir: string, groupId: string): string {
  return join(instructionsDir(rootDir), `${groupId}_last_successful_install`);
}

export function mostRecentInstallFile(rootDir: string, groupId: string): string {
  return join(instructionsDir(rootDir), `${groupId}_most_recent_install`);
}

export function deploymentsLogFile(rootDir: string, programName = 'codedeploy-agent'): string {
  return join(rootDir, 'deployment-logs', `${programName}-deployments.log`);
}

export function trackingDir(rootDir: string, trackingName = 'ongoing-deployment'): string {
  return join(rootDir, trackingName);
}

/** Our own (not in AWS's layout): one record per running hook, for the clean-up after a crash (hooks/running-hooks.ts). */
export function runningHooksDir(rootDir: string): string {
  return join(rootDir, 'running-hooks');
}

/** `ROOT/../.version` holds `agent_version: <v>` (sent in the x-amz-codedeploy-agent-version header). */
export function versionFile(rootDir: string): string {
  return join(rootDir, '..', '.version');
}
