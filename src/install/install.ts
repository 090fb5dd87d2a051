import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { OriginalAttributes } from '../archive/original-attributes.js';
import { rootsArchive } from '../deployment/archive-originals.js';
import type { AppSpec } from '../appspec/types.js';
import { cleanupFile, deploymentPaths, installJsonFile, instructionsDir } from '../deployment/layout.js';
import type { Logger } from '../log/logger.js';
import { applyPlan, type ApplyResult } from './apply.js';
import { parseCleanupFile } from './cleanup-file.js';
import { resolveIdentities } from './identity.js';
import { contextsFromInstallJson } from './install-json.js';
import { withInstallLock } from './install-lock.js';
import { riskyModesWarning } from './mode-warnings.js';
import { planInstall } from './plan.js';
import { scanInstall } from './scan.js';
import { findTool } from '../util/find-tool.js';
import { requireTools, type ToolPaths } from './tools.js';
import type { RevisionFiles } from '../archive/revision-files.js';
import type { InstallPlan, InstallScan } from './types.js';
import { InstallError } from '../report/errors.js';

export interface InstallOptions {
  rootDir: string;
  groupId: string;
  deploymentId: string;
  archiveDir: string;
  appspec: AppSpec;
  /** From the deployment spec; the appspec's own value wins. */
  fileExistsBehavior?: string;
  logger: Logger;
  /** Relative appspec paths resolve against it (default: the agent's working directory, as in AWS's agent). */
  cwd?: string;
  /** Files copied at once. */
  concurrency?: number;
}

export interface InstallResult extends ApplyResult {
  fileExistsBehavior: string;
  plan: InstallPlan;
  /** Said in the log too; a local run shows them on the terminal. */
  warnings: string[];
}

/**
 * The Install step's file work: remove what the group's previous deployment installed,
 * copy the revision's files and set their permissions. Everything that can refuse the deployment
 * (conflicts, unknown users or groups, missing tools) is checked before the first write; a failure
 * after that is rolled back. Either way a failed Install leaves the host as it found it.
 */
export function runInstall(options: InstallOptions): Promise<InstallResult> {
  return withInstallLock(() => install(options));
}

/** What planning Install needs: no logger, nothing written. */
export type PlanGroupInstallOptions = Pick<InstallOptions, 'rootDir' | 'groupId' | 'archiveDir' | 'appspec' | 'fileExistsBehavior' | 'cwd'> & {
  /** Where the revision's files are read: the disk, or an archive read in place (the dry run). */
  revisionFiles?: RevisionFiles;
};

export interface PlannedInstall {
  plan: InstallPlan;
  cleanupPath: string;
  installJsonPath: string;
  /** What the group's previous Install left (undefined: there was none). */
  previousCleanup?: string;
  previousInstallJson?: string;
}

/**
 * Reads what the group's previous Install left and plans this one (every check of the plan done):
 * the first half of Install, and all of what `deploy --dry-run` shows of it. Reads only.
 */
export function planGroupInstall(options: PlanGroupInstallOptions): PlannedInstall {
  const { rootDir, groupId, appspec } = options;
  const cleanupPath = cleanupFile(rootDir, groupId);
  const installJsonPath = installJsonFile(rootDir, groupId);
  const previousCleanup = readOptional(cleanupPath);
  const previousInstallJson = readOptional(installJsonPath);
  let scan: InstallScan;
  try {
    scan = scanInstall({
      archiveDir: options.archiveDir,
      files: appspec.files,
      permissions: appspec.permissions,
      cleanupEntries: parseCleanupFile(previousCleanup ?? ''),
      cwd: options.cwd,
      revisionFiles: options.revisionFiles,
    });
  } catch (error) {
    throw new InstallError(`The deployment failed while reading the revision and its destinations: ${(error as Error).message}`, undefined, { cause: error });
  }
  const plan = planInstall({ appspec, scan, fileExistsBehavior: options.fileExistsBehavior });
  return { plan, cleanupPath, installJsonPath, previousCleanup, previousInstallJson };
}

/** The tools the plan runs, each found on this host (or an InstallError naming what to install). */
export function toolsFor(plan: InstallPlan): ToolPaths {
  const tools = requireTools(plan.tools);
  if (plan.removals.some((op) => op.type === 'semanage-delete')) tools.semanage ??= findTool('semanage');
  return tools;
}

async function install(options: InstallOptions): Promise<InstallResult> {
  const { rootDir, groupId, logger } = options;
  // The revision's folder is root's before anything of it is read to be installed; its bundle's own
  // modes and owners are what the installed copies get.
  const originals = absolutePaths(options.archiveDir, await rootsArchive(options.archiveDir, logger));
  const { plan, cleanupPath, installJsonPath, previousCleanup, previousInstallJson } = planGroupInstall(options);
  const identities = await resolveIdentities(plan.users, plan.groups);
  const tools = toolsFor(plan);
  mkdirSync(instructionsDir(rootDir), { recursive: true });
  logger.info(
    `Install: ${plan.removals.length} path(s) of the previous deployment to remove, ${plan.operations.length} instruction(s), file_exists_behavior ${plan.fileExistsBehavior}`,
  );

  const result = await applyPlan({
    plan,
    identities,
    tools,
    cleanupFile: cleanupPath,
    installJsonFile: installJsonPath,
    previousCleanup,
    previousInstallJson,
    deploymentDir: deploymentPaths(rootDir, groupId, options.deploymentId).deploymentDir,
    groupId,
    deploymentId: options.deploymentId,
    previousContexts: contextsFromInstallJson(previousInstallJson),
    originals,
    logger,
    concurrency: options.concurrency,
  });
  logger.info(
    `Install: removed ${result.removed} path(s) of the previous deployment, created ${result.directoriesCreated} directories, copied ${result.filesCopied} file(s) and ${result.linksCreated} link(s), set permissions on ${result.permissionObjects} object(s)`,
  );
  const warnings = [riskyModesWarning(plan, originals)].filter((warning): warning is string => warning !== undefined);
  for (const warning of warnings) logger.warn(warning);
  return { ...result, fileExistsBehavior: plan.fileExistsBehavior, plan, warnings };
}

/** Archive-relative keys as the scan names sources: the archive folder's absolute path, `/`, the path. */
function absolutePaths(archiveDir: string, originals: ReadonlyMap<string, OriginalAttributes>): Map<string, OriginalAttributes> {
  const prefix = `${resolve(archiveDir)}/`;
  const absolute = new Map<string, OriginalAttributes>();
  for (const [path, original] of originals) absolute.set(prefix + path, original);
  return absolute;
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
