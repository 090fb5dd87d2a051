import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { loadAgentConfig, type AgentConfig } from '../config/agent-config.js';
import { buildLocalSpec, LocalDeployError } from '../deployment/local-spec.js';
import { checkLocalEventOrder, localEventsToRun } from '../deployment/lifecycle.js';
import { deploymentPaths } from '../deployment/layout.js';
import { recoverInterruptedWork } from '../deployment/interrupted-work.js';
import { runLocalDeployment, type EventOutcome } from '../deployment/run-local-deployment.js';
import type { DeploymentSpec } from '../deployment/spec-types.js';
import type { Logger } from '../log/logger.js';
import { registerSecret } from '../log/redact.js';
import { registerEnvironmentSecrets } from '../log/environment-secrets.js';
import { formatProblem } from '../report/errors.js';
import { ProgressTracker, revisionLabel } from '../revision/progress.js';
import { resolveLocalAccess, type LocalAccess } from '../service/identity.js';
import { formatMs } from '../util/duration.js';
import { AGENT_VERSION } from '../version.js';
import { openCliLogger } from './cli-logger.js';
import { checkRootWritable } from './root-writable.js';

interface DeployFlags {
  bundleLocation?: string;
  type?: string;
  fileExistsBehavior?: string;
  deploymentGroup: string;
  deploymentGroupName?: string;
  applicationName?: string;
  events?: string;
  agentConfigurationFile?: string;
  appspecFilename?: string;
  verbose?: boolean;
  ignoreApplicationStopFailures?: boolean;
  githubToken?: string;
  dryRun?: boolean;
  json?: boolean;
}

function addDeployOptions(command: Command): Command {
  return command
    .option('-l, --bundle-location <location>', 'local folder or archive, s3://bucket/key[?versionId=..&etag=..], or a GitHub https URL (default: the current folder)')
    .option('-t, --type <type>', 'tgz, tar, zip or directory (default: a folder is a directory; an archive\'s type is read from its contents, else its name)')
    .option('-b, --file-exists-behavior <behavior>', 'DISALLOW, OVERWRITE or RETAIN (the appspec value wins)')
    .option('-g, --deployment-group <id>', 'deployment group id: the folder under the deployment root', 'default-local-deployment-group')
    .option('-d, --deployment-group-name <name>', 'DEPLOYMENT_GROUP_NAME for hooks (default LocalFleet)')
    .option('-a, --application-name <name>', 'APPLICATION_NAME for hooks (default: the bundle location)')
    .option('-e, --events <events>', 'comma-separated lifecycle events to run, in order')
    .option('-c, --agent-configuration-file <file>', 'agent configuration file (default /etc/codedeploy-agent/conf/codedeployagent.yml)')
    .option('-A, --appspec-filename <name>', 'appspec file name (default appspec.yml, else appspec.yaml)')
    .option('--verbose', 'stream hook output to the terminal')
    .option('--ignore-application-stop-failures', 'do not fail the deployment when ApplicationStop or the block-traffic hooks fail')
    // From the environment too, so the token need not show in `ps` or the shell history.
    .addOption(new Option('--github-token <token>', 'token for a private GitHub repository (never logged)').env('CODEDEPLOY_GITHUB_TOKEN'))
    .option('--dry-run', 'check the revision and print what the deployment would do, writing nothing (exit 1 if it would fail)')
    .option('--json', 'with --dry-run: print the plan as one JSON object')
    .version(AGENT_VERSION, '-v, --version', 'print the version');
}

/**
 * Streams new lines of scripts.log to the terminal while a deployment runs (`--verbose`). `pump` is also
 * called before each event line is printed, so hook output and event lines appear in order.
 */
function followFile(path: string, write: (text: string) => void): { pump: () => void; stop: () => void } {
  let offset = 0;
  const buffer = Buffer.alloc(64 * 1024);
  const pump = () => {
    if (!existsSync(path)) return;
    const size = statSync(path).size;
    if (size < offset) offset = 0; // rotated
    if (size === offset) return;
    const fd = openSync(path, 'r');
    try {
      let read: number;
      while ((read = readSync(fd, buffer, 0, buffer.length, offset)) > 0) {
        offset += read;
        write(buffer.subarray(0, read).toString('utf8'));
      }
    } finally {
      closeSync(fd);
    }
  };
  const timer = setInterval(pump, 100);
  return {
    pump,
    stop: () => {
      clearInterval(timer);
      pump();
    },
  };
}

/**
 * The deployment a local run describes: its spec and events, from the flags. Called with the agent
 * configuration already loaded; `note` hears how the bundle type was worked out when -t was not given.
 */
function localRunFrom(flags: DeployFlags, note: (line: string) => void): { spec: DeploymentSpec; events: string[] } {
  // Before anything can log it (the spec, a URL, an error); and hooks inherit this process's
  // environment, so the variable it may have come from goes.
  registerSecret(flags.githubToken);
  delete process.env.CODEDEPLOY_GITHUB_TOKEN;
  const rawEvents = flags.events;
  const givenEvents = rawEvents === undefined ? undefined : rawEvents.split(',');
  if (givenEvents && rawEvents) {
    const problem = checkLocalEventOrder(givenEvents, rawEvents);
    if (problem) throw new LocalDeployError(problem);
  }
  const spec = buildLocalSpec({
    bundleLocation: flags.bundleLocation ?? process.cwd(),
    type: flags.type,
    fileExistsBehavior: flags.fileExistsBehavior,
    deploymentGroup: flags.deploymentGroup,
    deploymentGroupName: flags.deploymentGroupName,
    applicationName: flags.applicationName,
    events: givenEvents,
    appspecFilename: flags.appspecFilename,
    githubToken: flags.githubToken,
    onNote: note,
  });
  return { spec, events: localEventsToRun(givenEvents) };
}

/**
 * `deploy --dry-run`: the plan of ../deployment/dry-run.ts, printed; nothing is written (no log file,
 * no deployment root). Exit 0 when the deployment would get past Install's checks, 1 otherwise.
 */
async function dryRun(flags: DeployFlags): Promise<number> {
  const { config, warnings } = loadAgentConfig(flags.agentConfigurationFile);
  // With --json, stdout holds the JSON alone.
  const note = (line: string) => (flags.json ? process.stderr : process.stdout).write(`${line}\n`);
  for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
  const { spec, events } = localRunFrom(flags, note);
  const { planDryRun } = await import('../deployment/dry-run.js');
  const plan = await planDryRun(spec, events, {
    config,
    bundleShown: flags.bundleLocation ?? process.cwd(),
    ignoreApplicationStopFailures: flags.ignoreApplicationStopFailures,
    checkRoot: () => checkRootWritable(config.root_dir, flags.agentConfigurationFile),
  });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
  } else {
    const { renderDryRun } = await import('./dry-run-text.js');
    // https://no-color.org: any non-empty NO_COLOR turns colour off.
    process.stdout.write(renderDryRun(plan, process.stdout.isTTY === true && !process.env.NO_COLOR));
  }
  return plan.ok ? 0 : 1;
}

async function deploy(flags: DeployFlags): Promise<number> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const err = (line: string) => process.stderr.write(`${line}\n`);
  if (flags.json && !flags.dryRun) {
    err('ERROR: --json goes with --dry-run (a deployment prints its progress as text)');
    return 1;
  }
  if (flags.dryRun) {
    try {
      return await dryRun(flags);
    } catch (error) {
      err(`ERROR: ${error instanceof Error ? error.message : String(error)}`);
      return 1;
    }
  }
  let logger: Logger | undefined;
  let closeLogger: (() => Promise<void>) | undefined;
  try {
    const { config, warnings } = loadAgentConfig(flags.agentConfigurationFile);
    const opened = await openCliLogger(config, 'codedeploy-local.log');
    logger = opened.logger;
    closeLogger = opened.close;
    for (const warning of warnings) logger.warn(warning);
    // Unknown and repeated keys are said where the user looks, not only in the log (the built-in defaults are no news).
    if (config.config_file !== undefined) for (const warning of warnings) err(`warning: ${warning}`);
    // Before anything else with this configuration: what an agent killed on this deployment root left
    // behind (hooks still running, an Install half done) is put right first.
    for (const line of await recoverInterruptedWork(config, logger)) out(line);

    registerEnvironmentSecrets(process.env, config.proxy_uri);
    const { spec, events } = localRunFrom(flags, out);
    // Known before the deployment starts, so a missing region fails here and not halfway through.
    const aws = spec.revision.type === 'S3' ? await s3Access(spec, config, process.env, logger) : { region: process.env.AWS_REGION };
    const paths = deploymentPaths(config.root_dir, spec.deploymentGroupId, spec.deploymentId);
    checkRootWritable(config.root_dir, flags.agentConfigurationFile);
    // The unpacked copy under the deployment root means little to the user: messages name their bundle.
    const bundleShown = flags.bundleLocation ?? process.cwd();
    const display = (path: string) => (path === paths.archiveDir || path.startsWith(`${paths.archiveDir}/`) ? `${bundleShown}${path.slice(paths.archiveDir.length)}` : path);
    const shown = (text: string) => text.replaceAll(`${paths.archiveDir}/`, `${bundleShown}/`).replaceAll(`${paths.stagedArchiveDir}/`, `${bundleShown}/`);
    // Said as the first event starts: a revision refused beforehand never made that folder.
    let started = false;
    const follower = flags.verbose ? followFile(paths.scriptsLog, (text) => process.stdout.write(text)) : undefined;
    const progressBar = terminalProgress(spec);

    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let result;
    try {
      result = await runLocalDeployment(spec, events, {
        config,
        logger,
        localRun: true,
        signal: abort.signal,
        aws,
        onProgress: progressBar?.onProgress,
      }, {
        ignoreApplicationStopFailures: flags.ignoreApplicationStopFailures,
        display,
        observer: {
          warning: (warning) => {
            progressBar?.finish();
            err(`warning: ${formatProblem(warning)}`);
          },
          eventStarted: (event) => {
            // An archive is downloaded before the first event (to check it before any hook runs).
            progressBar?.finish();
            if (!started) out(`Starting to execute deployment from within folder ${paths.deploymentDir}`);
            started = true;
            follower?.pump();
            out(`${event}: started`);
          },
          eventFinished: (outcome: EventOutcome) => {
            follower?.pump();
            out(shown(describeOutcome(outcome)));
            for (const warning of outcome.warnings ?? []) err(warning);
          },
        },
      });
    } finally {
      progressBar?.finish();
      follower?.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    // The events before DownloadBundle are skipped too when the new revision could not be fetched or was refused.
    for (const outcome of result.outcomes.filter((o) => o.status === 'Skipped')) out(`${outcome.event}: skipped (${result.failure?.event ?? 'an earlier event'} failed)`);
    if (result.failure?.error) {
      const { error } = result.failure;
      if (error.scriptName && !error.operatorHook) {
        err(`Your local deployment failed while trying to execute your script at ${paths.archiveDir}/${error.scriptName}`);
      }
      err(`ERROR: ${result.failure.event} failed with ${error.codeName} (error code ${error.code}): ${shown(error.message)}`);
      if (error.logTail && !flags.verbose) err(`The last output of ${error.scriptName ?? 'the script'}:\n${indent(error.logTail)}`);
      if (error.fileExists) {
        err('To replace the files that are there, run again with -b OVERWRITE; to keep them, -b RETAIN; or set file_exists_behavior: OVERWRITE (or RETAIN) in the AppSpec file, which wins over -b.');
      }
    }
    if (existsSync(paths.scriptsLog)) out(`See the deployment log at ${paths.scriptsLog} for more details`);
    if (!result.ok) return 1;
    out('AppSpec file valid. Local deployment successful');
    return 0;
  } catch (error) {
    err(`ERROR: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await closeLogger?.();
  }
}

/** Each line of a hook's output tail, indented under the line that introduces it. */
function indent(text: string): string {
  return text.replace(/\n$/, '').split('\n').map((line) => `  ${line}`).join('\n');
}

function describeOutcome(outcome: EventOutcome): string {
  const took = formatMs(outcome.durationMs);
  switch (outcome.status) {
    case 'Succeeded':
      return `${outcome.event}: succeeded in ${took}${outcome.noop ? ' (nothing to run)' : ''}`;
    case 'Ignored':
      return `${outcome.event}: failed in ${took}, ignored (--ignore-application-stop-failures): ${outcome.error?.codeName}: ${outcome.error?.message}`;
    case 'Failed': {
      // A message of several lines (every problem of an appspec) is printed once, in full, by the ERROR line.
      const [first, ...more] = (outcome.error?.message ?? '').split('\n');
      return `${outcome.event}: failed in ${took}: ${outcome.error?.codeName}: ${first}${more.length > 0 ? ' (see below)' : ''}`;
    }
    default:
      return `${outcome.event}: skipped`;
  }
}

/**
 * The bar of a download on a terminal (bytes, total, rate, ETA), drawn from the first progress figure
 * until DownloadBundle ends; nothing when stdout is not a terminal (the log gets periodic lines instead).
 */
function terminalProgress(spec: DeploymentSpec): { onProgress: (p: { bytes: number; total?: number }) => void; finish: () => void } | undefined {
  if (!process.stdout.isTTY) return undefined;
  let tracker: ProgressTracker | undefined;
  let finished = false;
  return {
    onProgress: ({ bytes, total }) => {
      if (finished) return;
      tracker ??= new ProgressTracker({ label: revisionLabel(spec.revision), tty: process.stdout, summary: false });
      tracker.update(bytes, total);
    },
    finish: () => {
      finished = true;
      tracker?.finish();
    },
  };
}

/** A region is needed before the deployment starts, so its absence fails here and not halfway through. */
async function s3Access(spec: DeploymentSpec, config: AgentConfig, env: NodeJS.ProcessEnv, logger: Logger): Promise<LocalAccess & { region: string }> {
  const access = await resolveLocalAccess(config, { env, logger });
  if (!access.region) {
    const where = spec.revision.type === 'S3' ? `s3://${spec.revision.bucket}/${spec.revision.key}` : 'the bundle';
    throw new LocalDeployError(
      `Cannot download ${where}: no AWS region is known. Set AWS_REGION to the region of the bucket (for example AWS_REGION=us-east-1), ` +
        'or run on EC2 with instance metadata reachable, or on a host registered with an on-premises configuration file.',
    );
  }
  return { ...access, region: access.region };
}

export function register(program: Command): void {
  const command = program
    .command('deploy')
    .description('run a local deployment through the whole lifecycle (codedeploy-local)');
  addDeployOptions(command);
  command.option('--config <file>', 'same as --agent-configuration-file');
  command.action(async (flags: DeployFlags & { config?: string }) => {
    process.exitCode = await deploy({ ...flags, agentConfigurationFile: flags.agentConfigurationFile ?? flags.config });
  });
}

/** `codedeploy-local` takes the same flags at the top level. */
export function registerLocalProgram(program: Command): void {
  program.name('codedeploy-local').description('run a local deployment through the whole lifecycle');
  addDeployOptions(program);
  program.action(async (flags: DeployFlags) => {
    process.exitCode = await deploy(flags);
  });
}
