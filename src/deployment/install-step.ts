import { mkdirSync } from 'node:fs';
import type { EngineContext } from './engine.js';
import type { DeploymentSpec } from './spec-types.js';
import { deploymentPaths, instructionsDir, lastSuccessfulInstallFile } from './layout.js';
import { writeMarker } from './markers.js';
import { loadAppSpecFromDir } from '../appspec/parse.js';
import { checkLifecycleEvents } from '../appspec/custom-events.js';
import { runInstall } from '../install/install.js';
import { recoverInterruptedInstalls } from './interrupted-work.js';

/**
 * Install: read the new revision's appspec, install its files and permissions, then
 * record this deployment as the group's last successful install (what the next ApplicationStop runs).
 */
export async function runInstallStep(spec: DeploymentSpec, context: EngineContext): Promise<{ warnings: string[] }> {
  const { config, logger } = context;
  const paths = deploymentPaths(config.root_dir, spec.deploymentGroupId, spec.deploymentId);
  mkdirSync(instructionsDir(config.root_dir), { recursive: true });
  const appspec = loadAppSpecFromDir(paths.archiveDir, spec.appSpecFilename);
  if (spec.allPossibleLifecycleEvents) checkLifecycleEvents(appspec, spec.allPossibleLifecycleEvents);
  // An earlier Install of the group cut short by a crash is undone first, whatever the start did.
  await recoverInterruptedInstalls(config, logger, spec.deploymentGroupId);
  const { warnings } = await runInstall({
    rootDir: config.root_dir,
    groupId: spec.deploymentGroupId,
    deploymentId: spec.deploymentId,
    archiveDir: paths.archiveDir,
    appspec,
    fileExistsBehavior: spec.fileExistsBehavior,
    logger,
  });
  writeMarker(lastSuccessfulInstallFile(config.root_dir, spec.deploymentGroupId), paths.deploymentDir);
  return { warnings };
}
