import type { EngineContext, EventResult } from './engine.js';
import { runEvent } from './engine.js';
import type { DeploymentSpec } from './spec-types.js';
import { STOP_EVENTS } from './lifecycle.js';
import { checkRevisionForLocalRun, inspectRevision, reportRevisionCheck } from './revision-check.js';
import { DeploymentRecorder } from './deployment-record.js';
import { lockDeploymentGroup } from './group-lock.js';
import { AgentError, FileExistsError, OperatorHookError, ScriptError, type AppSpecProblem } from '../report/errors.js';
import { ErrorCode, errorCodeName } from '../report/error-codes.js';

export interface EventOutcome {
  event: string;
  status: 'Succeeded' | 'Failed' | 'Skipped' | 'Ignored';
  durationMs: number;
  noop: boolean;
  /** `logTail`: the end of the failed script's output, as reported to the service. */
  error?: { code: number; codeName: string; message: string; scriptName?: string; logTail?: string; fileExists?: boolean; operatorHook?: boolean };
  /** Operator post- hooks that failed around this event (its result stands). */
  warnings?: string[];
}

export interface LocalDeploymentObserver {
  eventStarted?(event: string): void;
  eventFinished?(outcome: EventOutcome): void;
  /** A problem that does not stop the run (a `runas` user the host does not have yet), before it starts. */
  warning?(warning: AppSpecProblem): void;
}

function describeError(error: unknown): NonNullable<EventOutcome['error']> {
  if (error instanceof ScriptError) {
    // An operator hook's scriptName is its path on the host, not a location in the bundle.
    const operatorHook = error instanceof OperatorHookError ? { operatorHook: true } : {};
    return { code: error.code, codeName: errorCodeName(error.code), message: error.message, scriptName: error.scriptName, logTail: error.logTail, ...operatorHook };
  }
  if (error instanceof FileExistsError) return { code: error.code, codeName: errorCodeName(error.code), message: error.message, fileExists: true };
  if (error instanceof AgentError) return { code: error.code, codeName: errorCodeName(error.code), message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: ErrorCode.UnknownError, codeName: 'UnknownError', message };
}

/**
 * Runs a local deployment's events in order through the same engine the daemon uses; the first failure
 * stops the rest (later events are reported as skipped). The new revision is checked before its first
 * hook (revision-check.ts): a folder bundle before any event runs, an archive or a remote revision once
 * DownloadBundle has unpacked it; so an appspec that cannot work (a YAML error, `AfterInstal:`, a
 * missing script) fails the deployment before Install writes anything, and a missing `runas` user is
 * said at the start. Failures of the stop events are forgiven when `ignoreApplicationStopFailures` is
 * set, as CodeDeploy does for the option of that name.
 *
 * `display` names a file of the unpacked revision as the user knows it (`bundle.zip/appspec.yml`).
 */
export async function runLocalDeployment(
  spec: DeploymentSpec,
  events: string[],
  context: EngineContext,
  options: { ignoreApplicationStopFailures?: boolean; observer?: LocalDeploymentObserver; display?: (path: string) => string } = {},
): Promise<{ ok: boolean; outcomes: EventOutcome[]; failure?: EventOutcome }> {
  // The whole run holds the group (the daemon takes it per command): refused at once when it is busy.
  const lock = await lockDeploymentGroup(context.config.root_dir, spec.deploymentGroupId);
  try {
    return await runLockedLocalDeployment(spec, events, context, options);
  } finally {
    lock.release();
  }
}

async function runLockedLocalDeployment(
  spec: DeploymentSpec,
  events: string[],
  context: EngineContext,
  options: { ignoreApplicationStopFailures?: boolean; observer?: LocalDeploymentObserver; display?: (path: string) => string },
): Promise<{ ok: boolean; outcomes: EventOutcome[]; failure?: EventOutcome }> {
  const fromRevision = events.slice(events.indexOf('DownloadBundle') + 1);
  const warn = (warning: AppSpecProblem) => options.observer?.warning?.(warning);
  const checkedBeforehand = spec.revision.type === 'Local Directory';
  if (spec.revision.type === 'Local Directory') {
    const result = await inspectRevision({ bundleRoot: spec.revision.location, appspecFilename: spec.appSpecFilename, events, eventsFromRevision: fromRevision });
    reportRevisionCheck(result, context, warn);
  }
  // For `codedeploy-agent logs`: this deployment, its events, and that it is running (deployment-record.ts).
  const recorder = new DeploymentRecorder(context.config.root_dir, spec, 'local', (message) => context.logger.warn(message));
  const outcomes: EventOutcome[] = [];
  let failure: EventOutcome | undefined;
  for (const event of events) {
    if (failure) {
      outcomes.push({ event, status: 'Skipped', durationMs: 0, noop: true });
      continue;
    }
    options.observer?.eventStarted?.(event);
    recorder.eventStarted(event);
    const started = Date.now();
    let outcome: EventOutcome;
    let failedWith: unknown;
    try {
      const result: EventResult = await runEvent(spec, event, { ...context, plannedEvents: events });
      if (event === 'DownloadBundle' && !checkedBeforehand) {
        await checkRevisionForLocalRun(spec, events, fromRevision, context, { display: options.display, warn });
      }
      outcome = { event, status: 'Succeeded', durationMs: Date.now() - started, noop: result.noop, ...(result.operatorHookWarnings?.length ? { warnings: result.operatorHookWarnings } : {}) };
    } catch (error) {
      failedWith = error;
      const described = describeError(error);
      const forgiven = options.ignoreApplicationStopFailures && (STOP_EVENTS as readonly string[]).includes(event);
      outcome = { event, status: forgiven ? 'Ignored' : 'Failed', durationMs: Date.now() - started, noop: false, error: described };
      if (!forgiven) failure = outcome;
    }
    outcomes.push(outcome);
    recorder.eventFinished(event, outcome.status === 'Skipped' ? 'Succeeded' : outcome.status, { error: failedWith, noop: outcome.noop });
    options.observer?.eventFinished?.(outcome);
  }
  return { ok: failure === undefined, outcomes, failure };
}
