import { existsSync, mkdirSync, statSync } from 'node:fs';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import type { AgentConfig } from '../config/agent-config.js';
import type { Logger } from '../log/logger.js';
import type { DownloadRecord } from '../agent/agent-metrics.js';
import { AgentError } from '../report/errors.js';
import { deploymentPaths, deploymentsLogFile, lastSuccessfulInstallFile, mostRecentInstallFile, runningHooksDir } from './layout.js';
import { isBuiltinEvent, isHookEvent, revisionModeFor } from './lifecycle.js';
import type { DeploymentSpec } from './spec-types.js';
import { readMarker } from './markers.js';
import { runDownloadBundle } from './download-bundle.js';
import { runInstallStep } from './install-step.js';
import { loadAppSpecFromDir } from '../appspec/parse.js';
import type { AppSpec } from '../appspec/types.js';
import { runEventScripts } from '../hooks/run-event-scripts.js';
import { ensureArchiveIsRoots } from './archive-originals.js';
import { ScriptsLog } from '../hooks/scripts-log.js';
import { RunningHooks } from '../hooks/running-hooks.js';
import { hookVariables } from './hook-variables.js';
import { operatorHooksPresent, runWithOperatorHooks } from './operator-hooks.js';

/** Everything the engine needs from its caller (the daemon or `deploy`); nothing global. */
export interface EngineContext {
  config: AgentConfig;
  logger: Logger;
  /** Aborted on agent shutdown: running hooks are killed (TERM, grace, KILL). */
  signal?: AbortSignal;
  /** Local runs (codedeploy-local) may run custom events; the daemon only the known mapping. */
  localRun?: boolean;
  /** Region and credentials for S3 downloads; the SDK's default chain when absent. */
  aws?: { region?: string; credentials?: AwsCredentialIdentityProvider; s3ClientOverrides?: Record<string, unknown> };
  onProgress?: (progress: { bytes: number; total?: number }) => void;
  onScriptStart?: (event: string, location: string) => void;
  /** DownloadBundle fetched the revision (or failed to): for the daemon's metrics. */
  onDownloaded?: (record: DownloadRecord) => void;
  /** An operator hook ran or was refused: for the daemon's metrics. */
  onOperatorHook?: (point: string, outcome: 'succeeded' | 'failed' | 'timed_out' | 'refused') => void;
  /** Base environment hooks inherit (credentials are removed by the hook runner). */
  baseEnv?: NodeJS.ProcessEnv;
  /** The events a local run executes, in order: its last one ends the deployment (operator post-deployment hooks). */
  plannedEvents?: readonly string[];
}

export interface EventResult {
  /** True when there was nothing to run (no previous revision, or no scripts for the event). */
  noop: boolean;
  /** Tail of the hook output (≤ 2048 characters) for the diagnostics payload. */
  logTail: string;
  /** Operator post- hooks that failed (logged; the event's result stands). */
  operatorHookWarnings?: string[];
  /** What the event did that is allowed but worth a look (logged; a local run shows them too). */
  warnings?: string[];
}

export class UnsupportedCommandError extends AgentError {}

function assertSupported(event: string, context: EngineContext): void {
  if (isBuiltinEvent(event) || isHookEvent(event)) return;
  if (context.localRun && /^([A-Z][a-z0-9]+)+/.test(event)) return;
  if (context.localRun) throw new UnsupportedCommandError(`Received command is not in PascalCase form: ${event}`);
  throw new UnsupportedCommandError(`Unsupported command type: ${event}.`);
}

function ensureDeploymentDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch {
    // fall through to the check below, which names the directory
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new AgentError(`Error creating deployment root directory ${dir}`);
  }
}

/**
 * The archive folder a hook event takes its appspec and scripts from (docs/compatibility.md, "Which revision an event runs from"), or undefined when the
 * event is a no-op because no earlier revision exists.
 */
export function revisionArchiveFor(spec: DeploymentSpec, event: string, rootDir: string, logger?: Logger): string | undefined {
  const current = deploymentPaths(rootDir, spec.deploymentGroupId, spec.deploymentId);
  const mode = revisionModeFor(event, spec);
  if (mode === 'New') return current.archiveDir;
  if (existsSync(current.archiveDir)) return current.archiveDir;
  const pointer = mode === 'LastSuccessfulOrIgnore'
    ? lastSuccessfulInstallFile(rootDir, spec.deploymentGroupId)
    : mostRecentInstallFile(rootDir, spec.deploymentGroupId);
  const previousDir = readMarker(pointer);
  if (!previousDir) return undefined;
  const archive = `${previousDir}/deployment-archive`;
  if (!existsSync(archive)) {
    // AWS's agent fails with "No such file or directory ... appspec.yml" (aws-codedeploy-agent #102); a revision deleted by hand
    // should not block every later deployment, so this event is skipped with a warning instead.
    logger?.warn(`${event}: the previous revision at ${previousDir} no longer exists; skipping its ${event} scripts`);
    return undefined;
  }
  return archive;
}

function scriptsFor(appspec: AppSpec, event: string) {
  return appspec.hooks[event] ?? [];
}

/** Whether a command would do nothing (AWS's `IsCommandNoop` rule); sent with the acknowledgement. */
export function isCommandNoop(spec: DeploymentSpec, event: string, context: EngineContext): boolean {
  if (isBuiltinEvent(event)) return false;
  if (!isHookEvent(event) && !context.localRun) return true;
  // The host's operator hooks run around every event, so none is a no-op (the service then hands each over).
  if (operatorHooksPresent(context)) return false;
  const archive = revisionArchiveFor(spec, event, context.config.root_dir);
  if (!archive) return true;
  const appspec = loadAppSpecFromDir(archive, spec.appSpecFilename);
  return scriptsFor(appspec, event).length === 0;
}

async function runHookEvent(spec: DeploymentSpec, event: string, context: EngineContext): Promise<EventResult> {
  const { config, logger } = context;
  const archive = revisionArchiveFor(spec, event, config.root_dir, logger);
  if (!archive) return { noop: true, logTail: '' };
  // Root runs its scripts: the folder must be root's first (an earlier agent may have left it otherwise).
  await ensureArchiveIsRoots(archive, logger);
  const appspec = loadAppSpecFromDir(archive, spec.appSpecFilename);
  const scripts = scriptsFor(appspec, event);
  if (scripts.length === 0) return { noop: true, logTail: '' };
  const current = deploymentPaths(config.root_dir, spec.deploymentGroupId, spec.deploymentId);
  const scriptsLog = ScriptsLog.open(current.scriptsLog, {
    deploymentsLogPath: config.enable_deployments_log ? deploymentsLogFile(config.root_dir, config.program_name) : undefined,
    maxBytes: config.scripts_log_max_bytes,
    maxFiles: config.scripts_log_max_files,
  });
  const runningHooks = new RunningHooks(runningHooksDir(config.root_dir), logger);
  try {
    const result = await runEventScripts({
      event,
      scripts,
      archiveDir: archive,
      deploymentId: spec.deploymentId,
      env: hookVariables(spec, event),
      scriptsLog,
      killGraceMs: config.hook_kill_grace_seconds * 1000,
      outputGraceMs: config.hook_output_grace_seconds * 1000,
      signal: context.signal,
      onScriptStart: (location) => context.onScriptStart?.(event, location),
      recordHook: (pid, script) => runningHooks.record(pid, { group: spec.deploymentGroupId, deployment: spec.deploymentId, event, script }),
      logger,
      baseEnv: context.baseEnv,
    });
    return { noop: false, logTail: result.logTail };
  } finally {
    await scriptsLog.close();
  }
}

/**
 * The one entry point the daemon (per command) and `deploy` (per event) call: runs one lifecycle event
 * of a deployment. Throws a typed error carrying the CodeDeploy error code on failure. `work` stands in
 * for the event's own work when the caller did most of it ahead (a local run stages DownloadBundle
 * before the stop events); the operator hooks still run around it at the event's turn.
 */
export async function runEvent(spec: DeploymentSpec, event: string, context: EngineContext, work?: () => Promise<EventResult>): Promise<EventResult> {
  assertSupported(event, context);
  const paths = deploymentPaths(context.config.root_dir, spec.deploymentGroupId, spec.deploymentId);
  ensureDeploymentDir(paths.deploymentDir);
  // What a killed agent left running in this group (a `deploy` killed while this daemon runs, say) is
  // stopped before any hook of the group runs again; the start of each agent does it for every group.
  await new RunningHooks(runningHooksDir(context.config.root_dir), context.logger).stopLeftovers(context.config.hook_kill_grace_seconds * 1000, new Set([spec.deploymentGroupId]));
  return runWithOperatorHooks(spec, event, context, work ?? (() => runEventItself(spec, event, context)));
}

async function runEventItself(spec: DeploymentSpec, event: string, context: EngineContext): Promise<EventResult> {
  switch (event) {
    case 'DownloadBundle':
      await runDownloadBundle(spec, context);
      return { noop: false, logTail: '' };
    case 'Install': {
      const { warnings } = await runInstallStep(spec, context);
      return { noop: false, logTail: '', ...(warnings.length > 0 ? { warnings } : {}) };
    }
    default:
      return runHookEvent(spec, event, context);
  }
}

