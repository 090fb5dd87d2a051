import type { EngineContext, EventResult } from './engine.js';
import { runEvent } from './engine.js';
import type { DeploymentSpec } from './spec-types.js';
import { STOP_EVENTS } from './lifecycle.js';
import { checkRevisionForLocalRun, inspectRevision, reportRevisionCheck } from './revision-check.js';
import { discardStagedBundle, placeStagedBundle, stageBundle } from './download-bundle.js';
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
  /** What the event did that is worth a look, and operator post- hooks that failed around it (its result stands). */
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

/** DownloadBundle's work done before the first event (stageBundle), and how it went. */
interface StagedRevision {
  startedAt: Date;
  durationMs: number;
  /** The fetch or unpack failed: nothing was staged. */
  fetchError?: unknown;
  /** The staged revision was refused by the check. */
  checkError?: unknown;
}

/**
 * Runs a local deployment's events in order through the same engine the daemon uses; the first failure
 * stops the rest (later events are reported as skipped). The new revision is checked before any hook
 * runs (revision-check.ts), even the previous revision's ApplicationStop and block-traffic hooks: a
 * folder bundle where it is; an archive or a remote revision once DownloadBundle's work (fetch, unpack)
 * is done, which for that reason comes before the first event (stageBundle), into a folder those stop
 * events do not look at. DownloadBundle is still reported, recorded and wrapped in the operator hooks at
 * its turn, where the staged revision is put in place; a failed fetch or check fails it there, with the
 * events before it skipped. So an appspec that cannot work (a YAML error, `AfterInstal:`, a missing
 * script) fails the deployment before anything runs, and a missing `runas` user is said at the start.
 * Failures of the stop events are forgiven when `ignoreApplicationStopFailures` is set, as CodeDeploy
 * does for the option of that name.
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
  const downloadAt = events.indexOf('DownloadBundle');
  const fromRevision = events.slice(downloadAt + 1);
  const warn = (warning: AppSpecProblem) => options.observer?.warning?.(warning);
  let staged: StagedRevision | undefined;
  if (spec.revision.type === 'Local Directory') {
    const result = await inspectRevision({ bundleRoot: spec.revision.location, appspecFilename: spec.appSpecFilename, events, eventsFromRevision: fromRevision });
    reportRevisionCheck(result, context, warn);
  } else {
    staged = await stageAndCheck(spec, events, fromRevision, context, { display: options.display, warn });
  }
  // For `codedeploy-agent logs`: this deployment, its events, and that it is running (deployment-record.ts).
  const recorder = new DeploymentRecorder(context.config.root_dir, spec, 'local', (message) => context.logger.warn(message), staged?.startedAt);
  const outcomes: EventOutcome[] = [];
  let failure: EventOutcome | undefined;
  for (const [index, event] of events.entries()) {
    // A revision that could not be fetched or was refused: nothing before DownloadBundle runs either.
    const refused = staged && (staged.fetchError !== undefined || staged.checkError !== undefined) && index < downloadAt;
    if (failure || refused) {
      outcomes.push({ event, status: 'Skipped', durationMs: 0, noop: true });
      continue;
    }
    const stagedWork = event === 'DownloadBundle' && staged ? staged : undefined;
    options.observer?.eventStarted?.(event);
    recorder.eventStarted(event, stagedWork?.startedAt);
    const started = Date.now();
    const took = () => Date.now() - started + (stagedWork?.durationMs ?? 0);
    let outcome: EventOutcome;
    let failedWith: unknown;
    try {
      const result: EventResult = await runEvent(spec, event, { ...context, plannedEvents: events }, stagedWork && (() => placeStaged(spec, context, stagedWork)));
      const warnings = [...(result.warnings ?? []), ...(result.operatorHookWarnings ?? [])];
      outcome = { event, status: 'Succeeded', durationMs: took(), noop: result.noop, ...(warnings.length > 0 ? { warnings } : {}) };
    } catch (error) {
      failedWith = error;
      const described = describeError(error);
      const forgiven = options.ignoreApplicationStopFailures && (STOP_EVENTS as readonly string[]).includes(event);
      outcome = { event, status: forgiven ? 'Ignored' : 'Failed', durationMs: took(), noop: false, error: described };
      if (!forgiven) failure = outcome;
    }
    outcomes.push(outcome);
    recorder.eventFinished(event, outcome.status === 'Skipped' ? 'Succeeded' : outcome.status, { error: failedWith, noop: outcome.noop });
    options.observer?.eventFinished?.(outcome);
  }
  // DownloadBundle never put the staged revision in place (an earlier event or an operator hook failed): it goes.
  if (staged) await discardStagedBundle(spec, context).catch((error) => context.logger.warn(`Could not remove the staged revision: ${(error as Error).message}`));
  return { ok: failure === undefined, outcomes, failure };
}

/** DownloadBundle's work and the revision check, before the first event; their errors are kept for DownloadBundle's turn. */
async function stageAndCheck(
  spec: DeploymentSpec,
  events: readonly string[],
  fromRevision: readonly string[],
  context: EngineContext,
  options: { display?: (path: string) => string; warn: (warning: AppSpecProblem) => void },
): Promise<StagedRevision> {
  const startedAt = new Date();
  const staged: StagedRevision = { startedAt, durationMs: 0 };
  try {
    await stageBundle(spec, context);
  } catch (error) {
    staged.fetchError = error;
  }
  if (staged.fetchError === undefined) {
    try {
      await checkRevisionForLocalRun(spec, events, fromRevision, context, options);
    } catch (error) {
      staged.checkError = error;
    }
  }
  staged.durationMs = Date.now() - startedAt.getTime();
  return staged;
}

/** DownloadBundle's own work after staging: the revision put in place, or the staging's error. */
async function placeStaged(spec: DeploymentSpec, context: EngineContext, staged: StagedRevision): Promise<EventResult> {
  if (staged.fetchError !== undefined) throw staged.fetchError;
  // A refused revision is still put where the user looks for it, but is not the most recent install.
  await placeStagedBundle(spec, context, { markMostRecent: staged.checkError === undefined });
  if (staged.checkError !== undefined) throw staged.checkError;
  return { noop: false, logTail: '' };
}
