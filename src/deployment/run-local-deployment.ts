import type { EngineContext, EventResult } from './engine.js';
import { runEvent } from './engine.js';
import type { DeploymentSpec } from './spec-types.js';
import { STOP_EVENTS } from './lifecycle.js';
import { checkRevisionForLocalRun } from './revision-check.js';
import { AgentError, ScriptError } from '../report/errors.js';
import { ErrorCode, errorCodeName } from '../report/error-codes.js';

export interface EventOutcome {
  event: string;
  status: 'Succeeded' | 'Failed' | 'Skipped' | 'Ignored';
  durationMs: number;
  noop: boolean;
  error?: { code: number; codeName: string; message: string; scriptName?: string };
}

export interface LocalDeploymentObserver {
  eventStarted?(event: string): void;
  eventFinished?(outcome: EventOutcome): void;
}

function describeError(error: unknown): NonNullable<EventOutcome['error']> {
  if (error instanceof ScriptError) {
    return { code: error.code, codeName: errorCodeName(error.code), message: error.message, scriptName: error.scriptName };
  }
  if (error instanceof AgentError) return { code: error.code, codeName: errorCodeName(error.code), message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: ErrorCode.UnknownError, codeName: 'UnknownError', message };
}

/**
 * Runs a local deployment's events in order through the same engine the daemon uses; the first failure
 * stops the rest (later events are reported as skipped). Once DownloadBundle has unpacked the revision,
 * the scripts and runas users of the events to come are checked, so those mistakes fail the deployment
 * before Install writes anything (revision-check.ts). Failures of the stop events are forgiven when
 * `ignoreApplicationStopFailures` is set, as CodeDeploy does for the option of that name.
 */
export async function runLocalDeployment(
  spec: DeploymentSpec,
  events: string[],
  context: EngineContext,
  options: { ignoreApplicationStopFailures?: boolean; observer?: LocalDeploymentObserver } = {},
): Promise<{ ok: boolean; outcomes: EventOutcome[]; failure?: EventOutcome }> {
  const outcomes: EventOutcome[] = [];
  let failure: EventOutcome | undefined;
  for (const event of events) {
    if (failure) {
      outcomes.push({ event, status: 'Skipped', durationMs: 0, noop: true });
      continue;
    }
    options.observer?.eventStarted?.(event);
    const started = Date.now();
    let outcome: EventOutcome;
    try {
      const result: EventResult = await runEvent(spec, event, context);
      if (event === 'DownloadBundle') await checkRevisionForLocalRun(spec, events.slice(events.indexOf(event) + 1), context);
      outcome = { event, status: 'Succeeded', durationMs: Date.now() - started, noop: result.noop };
    } catch (error) {
      const described = describeError(error);
      const forgiven = options.ignoreApplicationStopFailures && (STOP_EVENTS as readonly string[]).includes(event);
      outcome = { event, status: forgiven ? 'Ignored' : 'Failed', durationMs: Date.now() - started, noop: false, error: described };
      if (!forgiven) failure = outcome;
    }
    outcomes.push(outcome);
    options.observer?.eventFinished?.(outcome);
  }
  return { ok: failure === undefined, outcomes, failure };
}
