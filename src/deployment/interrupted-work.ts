import type { AgentConfig } from '../config/agent-config.js';
import { RunningHooks } from '../hooks/running-hooks.js';
import type { Logger } from '../log/logger.js';
import { runningHooksDir } from './layout.js';

/**
 * What a start of the agent (the daemon before its first poll, `deploy` before its first event) puts
 * right after an agent on the same deployment root was killed: hooks it left running are stopped.
 * Work of an agent that is still running (a daemon while a `deploy` starts) is left alone. Returns one
 * line per thing done, for `deploy` to show (everything is in the log too); never throws: what cannot
 * be put right is logged, and the start goes on.
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
  for (const line of done) logger.warn(line);
  return done;
}
