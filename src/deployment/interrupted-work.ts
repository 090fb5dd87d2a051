import type { AgentConfig } from '../config/agent-config.js';
import { RunningHooks } from '../hooks/running-hooks.js';
import { withInstallLock } from '../install/install-lock.js';
import { recoverInstalls, type RecoveryReport } from '../install/recovery.js';
import type { Logger } from '../log/logger.js';
import { runningHooksDir } from './layout.js';
import { writeLastSuccessfulInstall } from './markers.js';

/**
 * What a start of the agent (the daemon before its first poll, `deploy` before its first event) puts
 * right after an agent on the same deployment root was killed: hooks it left running are stopped, and
 * Installs it left half done are rolled back (or, if they had committed, finished), so every
 * destination holds either the previous revision or the new one. Work of an agent that is still
 * running (a daemon while a `deploy` starts) is left alone. Returns one line per thing done, for
 * `deploy` to show (everything is in the log too); never throws: what cannot be put right is logged,
 * and the start goes on.
 */
export async function recoverInterruptedWork(config: AgentConfig, logger: Logger): Promise<string[]> {
  const done: string[] = [];
  try {
    const hooks = new RunningHooks(runningHooksDir(config.root_dir), logger);
    const stopped = await hooks.stopLeftovers(config.hook_kill_grace_seconds * 1000);
    if (stopped > 0) done.push(`Stopped ${stopped} hook(s) left running by an agent that was killed`);
  } catch (error) {
    logger.error(`Could not stop the hooks a killed agent left running: ${(error as Error).message}`);
  }
  try {
    for (const report of await recoverInterruptedInstalls(config, logger)) done.push(describeRecovery(report));
  } catch (error) {
    logger.error(`Could not finish the Installs a killed agent left half done: ${(error as Error).message}`);
  }
  for (const line of done) logger.warn(line);
  return done;
}

/**
 * Rolls back (or finishes) the interrupted Installs under the deployment root, or of one group: run at
 * every start, and by Install itself before it starts on a group, under the one-Install-at-a-time lock.
 * An Install that had committed is finished as it would have been: its deployment becomes the group's
 * last successful install.
 */
export async function recoverInterruptedInstalls(config: AgentConfig, logger: Logger, group?: string): Promise<RecoveryReport[]> {
  const reports = await withInstallLock(() => recoverInstalls(config.root_dir, logger, { group }));
  for (const report of reports) {
    if (report.outcome === 'rolled-forward' && report.group) writeLastSuccessfulInstall(config.root_dir, report.group, report.deploymentDir);
  }
  return reports;
}

function describeRecovery(report: RecoveryReport): string {
  const what = `the interrupted Install of deployment ${report.deployment} (group ${report.group})`;
  switch (report.outcome) {
    case 'rolled-forward':
      return `Finished ${what}: it had completed; the new revision stays`;
    case 'rolled-back':
      return `Rolled back ${what}: removed ${report.removed} path(s) it had created, put back ${report.restored} from its backup`;
    case 'incomplete':
      return `Could not roll back ${what} completely (${report.problems.length} problem(s), see the log)`;
  }
}
