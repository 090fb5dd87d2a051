import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { checkPidFile, isAgentProcess, removeStalePidFile } from '../agent/pid-file.js';
import { readStatusSnapshot } from '../agent/status-file.js';
import { formatDuration } from '../util/duration.js';
import { loadConfigForCli } from './status.js';

/**
 * `codedeploy-agent stop [-c FILE] [--timeout S]` for hosts without systemd: sends SIGTERM (the agent's
 * graceful signal: it takes no new commands and lets in-flight lifecycle events finish, up to
 * kill_agent_max_wait_time_seconds) and waits for the process to exit. Unlike the anchor (§7.3) it does not
 * refuse while a deployment runs; the agent's own shutdown takes care of that.
 */
const POLL_MS = 200;

/** Is this process a systemd service's main process (so `systemctl stop` is the usual way)? */
function systemdUnitOf(pid: number): string | undefined {
  try {
    const cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    const unit = /\/([^/\n]+\.service)\s*$/m.exec(cgroup)?.[1];
    return unit?.includes('codedeploy') ? unit : undefined;
  } catch {
    return undefined;
  }
}

export interface StopOptions {
  pidDir: string;
  timeoutSeconds: number;
  out?: (line: string) => void;
}

/** Returns the exit code: 0 stopped or nothing ran, 1 still running at the deadline or failed, 4 not allowed. */
export async function stopAgent(options: StopOptions): Promise<number> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const state = checkPidFile(options.pidDir);
  if (state.state === 'absent') {
    out(`Nothing running that could be stopped (no pid file at ${state.path})`);
    return 0;
  }
  if (state.state === 'stale') {
    const cleaned = removeStalePidFile(options.pidDir);
    out(`Nothing running that could be stopped: ${state.reason}${cleaned ? ' - cleaned up' : ''}`);
    return 0;
  }
  if (state.state === 'unknown') {
    out(`Cannot tell whether the agent is running: ${state.reason}`);
    return 1;
  }
  const pid = state.pid;
  const unit = systemdUnitOf(pid);
  if (unit) out(`note: the agent runs under systemd (${unit}); \`systemctl stop ${unit.replace(/\.service$/, '')}\` is the usual way. Stopping it directly works too: it exits cleanly and systemd does not restart it.`);

  try {
    const inFlight = readStatusSnapshot(options.pidDir)?.inFlight ?? [];
    if (inFlight.length > 0) {
      out(`The agent finishes ${inFlight.length} in-flight lifecycle event(s) before it exits:`);
      for (const command of inFlight) out(`  ${command.deploymentId} ${command.event}${command.script ? ` (${command.script})` : ''}`);
    }
  } catch { /* the status file is optional here */ }

  try {
    process.kill(pid, 'SIGTERM');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') {
      out(`The agent (PID ${pid}) exited before it could be stopped`);
      return 0;
    }
    if (code === 'EPERM') {
      out(`Not allowed to stop the agent (PID ${pid}): run this as root (or as the agent's user)`);
      return 4;
    }
    throw error;
  }
  out(`Sent SIGTERM to the AWS CodeDeploy agent (PID ${pid}); waiting up to ${formatDuration(options.timeoutSeconds)} for it to exit`);

  const started = Date.now();
  const deadline = started + options.timeoutSeconds * 1000;
  let nextProgress = started + 30_000;
  while (isAgentProcess(pid) !== false) {
    if (Date.now() >= deadline) {
      out(`The agent (PID ${pid}) is still running after ${formatDuration(options.timeoutSeconds)}: it waits for in-flight lifecycle events (up to kill_agent_max_wait_time_seconds). `
        + 'See `codedeploy-agent status`; kill it with SIGKILL only if failing those events is acceptable.');
      return 1;
    }
    if (Date.now() >= nextProgress) {
      out(`  still waiting (${formatDuration((Date.now() - started) / 1000)})`);
      nextProgress += 30_000;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  out(`Stopped the AWS CodeDeploy agent (PID ${pid}) in ${formatDuration((Date.now() - started) / 1000)}`);
  return 0;
}

export function register(program: Command): void {
  program
    .command('stop')
    .description('stop the running agent gracefully (SIGTERM; in-flight lifecycle events finish first) and wait for it to exit')
    .option('-c, --config <file>', 'agent configuration file (default /etc/codedeploy-agent/conf/codedeployagent.yml)')
    .option('--timeout <seconds>', 'how long to wait for the agent to exit (default: kill_agent_max_wait_time_seconds + 60)')
    .action(async (options: { config?: string; timeout?: string }) => {
      const { config, note } = loadConfigForCli(options.config);
      if (note) process.stderr.write(`note: ${note}\n`);
      let timeoutSeconds = config.kill_agent_max_wait_time_seconds + 60;
      if (options.timeout !== undefined) {
        timeoutSeconds = Number(options.timeout);
        if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 0) {
          process.stderr.write(`--timeout takes a number of seconds, not ${JSON.stringify(options.timeout)}\n`);
          process.exitCode = 2;
          return;
        }
      }
      process.exitCode = await stopAgent({ pidDir: config.pid_dir, timeoutSeconds });
    });
}
