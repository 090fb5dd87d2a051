import type { Command } from 'commander';
import { loadAgentConfig } from '../config/agent-config.js';
import { createAgentLogger } from '../log/winston-logger.js';
import { Daemon } from '../agent/daemon.js';
import { registerEnvironmentSecrets } from '../log/environment-secrets.js';
import { AGENT_VERSION } from '../version.js';

/**
 * `codedeploy-agent run`: the daemon in the foreground, as systemd starts it. SIGTERM/SIGINT stop it
 * gracefully (a second one hurries it), SIGHUP reopens the log files and re-reads the configuration.
 */
async function run(configFile: string | undefined): Promise<number> {
  const loaded = loadAgentConfig(configFile);
  const config = loaded.config;
  const agentLogger = createAgentLogger(config, { console: true });
  const { logger } = agentLogger;
  logger.info(`codedeploy-agent ${AGENT_VERSION} starting (Node.js ${process.versions.node}, pid ${process.pid}, config ${config.config_file ?? 'built-in defaults'})`);
  for (const warning of loaded.warnings) logger.warn(warning);
  registerEnvironmentSecrets(process.env, config.proxy_uri);

  const daemon = new Daemon({ config, logger });
  const onStop = (signal: NodeJS.Signals) => daemon.requestStop(signal);
  const onHangup = () => {
    try {
      const reloaded = loadAgentConfig(configFile);
      agentLogger.reopen(reloaded.config); // verbose and log_format take effect at once
      // Keys that shape running objects (root_dir, pid_dir, endpoints) take effect at the next start.
      for (const key of ['verbose', 'wait_between_runs', 'max_revisions', 'hook_kill_grace_seconds', 'hook_output_grace_seconds',
        'kill_agent_max_wait_time_seconds', 'enforce_deployment_spec_signature', 's3_download_part_size_mb', 's3_download_concurrency',
        'health_poll_failure_seconds', 'operator_hooks_dir', 'operator_hook_timeout_seconds'] as const) {
        (config as unknown as Record<string, unknown>)[key] = reloaded.config[key];
      }
      for (const warning of reloaded.warnings) logger.warn(warning);
      logger.info('SIGHUP: log files reopened and configuration re-read');
    } catch (error) {
      agentLogger.reopen();
      logger.error(`SIGHUP: the configuration could not be re-read, keeping the current one: ${(error as Error).message}`);
    }
  };
  // A promise nobody waited for must not take the agent (and the deployments it runs) down: log it, go on.
  const onStrayRejection = (reason: unknown) => {
    logger.error(`Unexpected error (the agent keeps running): ${reason instanceof Error ? reason.stack ?? reason.message : String(reason)}`);
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHangup);
  process.on('unhandledRejection', onStrayRejection);
  try {
    await daemon.run();
    return 0;
  } catch (error) {
    logger.error(`The agent stopped on an error: ${(error as Error).message}${permissionHint(error)}`);
    return 1;
  } finally {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onHangup);
    process.off('unhandledRejection', onStrayRejection);
    await agentLogger.close();
  }
}

/** The daemon writes folders that belong to root by default: say so when that is what failed. */
function permissionHint(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if ((code !== 'EACCES' && code !== 'EPERM') || process.getuid?.() === 0) return '';
  return '. The agent runs as root (systemctl start codedeploy-agent, or sudo codedeploy-agent run); to try it as another user, ' +
    'point -c at a configuration whose :pid_dir:, :root_dir: and :log_dir: that user can write';
}

export function register(program: Command): void {
  program
    .command('run')
    .description('run the agent in the foreground (what systemd starts)')
    .option('-c, --config <file>', 'agent configuration file (default /etc/codedeploy-agent/conf/codedeployagent.yml)')
    .action(async (flags: { config?: string }) => {
      process.exitCode = await run(flags.config);
    });
}
