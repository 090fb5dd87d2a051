import { basename, dirname } from 'node:path';
import type { AgentConfig } from '../config/agent-config.js';
import { RunningHooks } from '../hooks/running-hooks.js';
import { withInstallLock } from '../install/install-lock.js';
import { findInstallJournals, recoverInstalls, type RecoveryReport } from '../install/recovery.js';
import type { Logger } from '../log/logger.js';
import { DeploymentGroupBusyError, lockDeploymentGroup, type GroupLock } from './group-lock.js';
import { runningHooksDir } from './layout.js';
import { writeLastSuccessfulInstall } from './markers.js';

/**
 * What a start of the agent (the daemon before its first poll, `deploy` before anything else) puts
 * right after an agent on the same deployment root was killed: hooks it left running are stopped, and
 * Installs it left half done are rolled back (or, if they had committed, finished), so every
 * destination holds either the previous revision or the new one. Each group is put right under its
 * lock (group-lock.ts); a group another live process holds is left to it, since every deployment puts
 * its own group right first (the engine before each event, Install before it starts). Returns one line
 * per thing done, for `deploy` to show (everything is in the log too); never throws: what cannot be put
 * right is logged, and the start goes on.
 */
export async function recoverInterruptedWork(config: AgentConfig, logger: Logger): Promise<string[]> {
  const done: string[] = [];
  const hooks = new RunningHooks(runningHooksDir(config.root_dir), logger);
  const locks: GroupLock[] = [];
  try {
    const groups = new Set<string>();
    for (const { record } of hooks.leftovers()) groups.add(record.group);
    for (const journal of findInstallJournals(config.root_dir)) groups.add(basename(dirname(dirname(journal))));
    const ours = new Set<string>();
    for (const group of [...groups].sort()) {
      try {
        locks.push(await lockDeploymentGroup(config.root_dir, group, { command: `${basename(process.argv[1] ?? 'codedeploy-agent')} (putting right what a killed agent left)` }));
        ours.add(group);
      } catch (error) {
        if (error instanceof DeploymentGroupBusyError) {
          logger.info(`Deployment group ${group} has work a killed agent left, but ${error.message}; left to that process, which puts it right before it deploys`);
          continue;
        }
        // Without the lock (no flock on this host): the journals' own claims still keep two starts apart.
        logger.warn(`Putting right what a killed agent left in group ${group} without its lock: ${(error as Error).message}`);
        ours.add(group);
      }
    }
    if (ours.size === 0) return done;
    try {
      const stopped = await hooks.stopLeftovers(config.hook_kill_grace_seconds * 1000, ours);
      if (stopped > 0) done.push(`Stopped ${stopped} hook(s) left running by an agent that was killed`);
    } catch (error) {
      logger.error(`Could not stop the hooks a killed agent left running: ${(error as Error).message}`);
    }
    for (const group of ours) {
      try {
        for (const report of await recoverInterruptedInstalls(config, logger, group)) done.push(describeRecovery(report));
      } catch (error) {
        logger.error(`Could not finish the Installs a killed agent left half done in group ${group}: ${(error as Error).message}`);
      }
    }
  } catch (error) {
    logger.error(`Could not look for what a killed agent left: ${(error as Error).message}`);
  } finally {
    for (const lock of locks) lock.release();
  }
  for (const line of done) logger.warn(line);
  return done;
}

/**
 * Rolls back (or finishes) the interrupted Installs of one group: at every start, and by Install itself
 * before it starts on the group, with the group's lock held and one Install at a time in this process.
 * An Install that had committed is finished as it would have been: its deployment becomes the group's
 * last successful install.
 */
export async function recoverInterruptedInstalls(config: AgentConfig, logger: Logger, group: string): Promise<RecoveryReport[]> {
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
