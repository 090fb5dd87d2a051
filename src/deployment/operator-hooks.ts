import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError, OperatorHookError } from '../report/errors.js';
import { redact } from '../log/redact.js';
import { ErrorCode } from '../report/error-codes.js';
import { buildHookEnvironment } from '../hooks/hook-environment.js';
import { OPERATOR_HOOK_POINTS, pointHasHooks, scanOperatorHooks, type OperatorHookPoint, type OperatorHookScan } from '../hooks/operator-hook-files.js';
import { runOperatorHooks, type OperatorHookFailure } from '../hooks/run-operator-hooks.js';
import { ScriptsLog } from '../hooks/scripts-log.js';
import { RunningHooks } from '../hooks/running-hooks.js';
import { tailOf } from '../hooks/log-tail.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import type { EngineContext, EventResult } from './engine.js';
import { hookVariables } from './hook-variables.js';
import { deploymentPaths, deploymentsLogFile, groupDir, operatorHooksStateFile, runningHooksDir } from './layout.js';
import { lastEventOnHost } from './lifecycle.js';
import type { DeploymentSpec } from './spec-types.js';

/**
 * Operator hooks around lifecycle events and deployments, for the daemon and `deploy` alike (both run
 * events through the engine's runEvent, which calls this):
 *
 *   pre-deployment → pre-event → the event → post-event → post-deployment
 *
 * `pre-deployment` runs before the first event of a deployment on this host, `post-deployment` after its
 * last: a failed event, the last of a local run, or for the daemon the event lastEventOnHost names. A
 * post- point runs whenever its pre- point was tried, even if that failed (like `finally`), so they
 * always come in pairs; a deployment that goes on after a failure (ignoring ApplicationStop failures)
 * opens again with `pre-deployment`. A deployment that never reached its end (stopped in the console,
 * agent killed) gets its `post-deployment`, with LIFECYCLE_EVENT_RESULT=Abandoned, before the next
 * deployment of its group starts. Whether a deployment is open is kept in its folder
 * (operator-hooks.json), so a restart of the agent in between changes nothing.
 */

/** What operator hooks learn about the event, besides the bundle hooks' variables. */
export interface EventOutcomeVariables {
  result: 'Succeeded' | 'Failed' | 'Abandoned';
  errorCode: number;
  message: string;
}

interface DeploymentState {
  open: boolean;
  /** The first event of the deployment on this host: it decides which event is the last. */
  firstEvent: string;
  /** The newest event seen, and the variables of the deployment, for closing it if it is abandoned. */
  lastEvent: string;
  variables: Record<string, string | undefined>;
}

function readState(file: string): DeploymentState | undefined {
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as DeploymentState;
    return typeof state.firstEvent === 'string' ? state : undefined;
  } catch {
    return undefined;
  }
}

function writeState(file: string, state: DeploymentState): void {
  writeFileAtomicSync(file, `${JSON.stringify(state)}\n`, 0o600);
}

/** Whether operator hooks would run for lifecycle events: then no event is acknowledged as a no-op. */
export function operatorHooksPresent(context: EngineContext): boolean {
  const scan = scanOperatorHooks(context.config.operator_hooks_dir);
  return OPERATOR_HOOK_POINTS.some((point) => pointHasHooks(scan, point));
}

function outcomeOf(error: unknown): EventOutcomeVariables {
  if (error === undefined) return { result: 'Succeeded', errorCode: ErrorCode.Succeeded, message: '' };
  const code = error instanceof AgentError ? error.code : ErrorCode.UnknownError;
  // Hooks may post it to a chat: never with a secret an error happened to quote.
  const message = redact((error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ')).slice(0, 1024);
  return { result: 'Failed', errorCode: code, message };
}

/** One event's operator hooks: one scripts.log, one environment recipe, the config's timeouts. */
class PointRunner {
  private readonly logs = new Map<string, ScriptsLog>();
  private readonly runningHooks: RunningHooks;

  constructor(
    private readonly scan: OperatorHookScan,
    private readonly context: EngineContext,
  ) {
    this.runningHooks = new RunningHooks(runningHooksDir(context.config.root_dir), context.logger);
  }

  /** The deployment's scripts.log (the one its bundle hooks write to), opened once. */
  private logFor(deployment: { deploymentGroupId: string; deploymentId: string }): ScriptsLog {
    const { config } = this.context;
    let log = this.logs.get(deployment.deploymentId);
    if (!log) {
      log = ScriptsLog.open(deploymentPaths(config.root_dir, deployment.deploymentGroupId, deployment.deploymentId).scriptsLog, {
        deploymentsLogPath: config.enable_deployments_log ? deploymentsLogFile(config.root_dir, config.program_name) : undefined,
        maxBytes: config.scripts_log_max_bytes,
        maxFiles: config.scripts_log_max_files,
        logger: this.context.logger,
      });
      this.logs.set(deployment.deploymentId, log);
    }
    return log;
  }

  async run(
    point: OperatorHookPoint,
    deployment: { deploymentGroupId: string; deploymentId: string },
    variables: Record<string, string | undefined>,
    outcome?: EventOutcomeVariables,
  ): Promise<OperatorHookFailure[]> {
    const hooks = this.scan[point];
    if (hooks.run.length + hooks.refused.length + hooks.skipped.length === 0) return [];
    const { config } = this.context;
    const log = this.logFor(deployment);
    const env = buildHookEnvironment(this.context.baseEnv ?? process.env, {
      ...variables,
      OPERATOR_HOOK: point,
      LIFECYCLE_EVENT_RESULT: outcome?.result,
      LIFECYCLE_EVENT_ERROR_CODE: outcome === undefined ? undefined : String(outcome.errorCode),
      LIFECYCLE_EVENT_MESSAGE: outcome?.message || undefined,
    });
    return runOperatorHooks({
      point,
      hooks,
      dir: config.operator_hooks_dir,
      env,
      scriptsLog: log,
      deploymentId: deployment.deploymentId,
      timeoutMs: config.operator_hook_timeout_seconds * 1000,
      killGraceMs: config.hook_kill_grace_seconds * 1000,
      outputGraceMs: config.hook_output_grace_seconds * 1000,
      signal: this.context.signal,
      logger: this.context.logger,
      onHook: (hookOutcome) => this.context.onOperatorHook?.(point, hookOutcome),
      recordHook: (pid, script) => this.runningHooks.record(pid, { group: deployment.deploymentGroupId, deployment: deployment.deploymentId, event: point, script }),
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.logs.values()].map((log) => log.close()));
  }
}

/** A pre- point's failure as the event's error: the hook named, the event not run. */
function preHookError(failure: OperatorHookFailure, point: OperatorHookPoint, event: string): OperatorHookError {
  return new OperatorHookError(failure.code, failure.path, `${failure.message}; ${point} hooks must succeed, so ${event} was not run`, failure.logTail);
}

function describeFailures(point: OperatorHookPoint, failures: OperatorHookFailure[]): string[] {
  return failures.map((failure) => `Warning: ${point} hook: ${failure.message} (the lifecycle event's result stands)`);
}

/**
 * Deployments of the group left open by an earlier run (never reached their last event): their
 * `post-deployment` hooks run now, with the result Abandoned.
 */
async function closeAbandoned(spec: DeploymentSpec, runner: PointRunner, context: EngineContext): Promise<string[]> {
  const group = groupDir(context.config.root_dir, spec.deploymentGroupId);
  let names: string[];
  try {
    names = readdirSync(group);
  } catch {
    return [];
  }
  const warnings: string[] = [];
  for (const name of names) {
    if (name === spec.deploymentId) continue;
    const file = operatorHooksStateFile(join(group, name));
    if (!existsSync(file)) continue;
    const state = readState(file);
    if (!state?.open) continue;
    context.logger.warn(`Deployment ${name} never reached its last lifecycle event on this host (last seen: ${state.lastEvent}); running its post-deployment hooks now`);
    const failures = await runner.run('post-deployment', { deploymentGroupId: spec.deploymentGroupId, deploymentId: name }, { ...state.variables, LIFECYCLE_EVENT: state.lastEvent }, {
      result: 'Abandoned',
      errorCode: ErrorCode.UnknownError,
      message: `the deployment never reached its last lifecycle event on this host (the last one was ${state.lastEvent})`,
    });
    // Cut short by a shutdown: it stays open, to be closed again at the next start.
    if (!context.signal?.aborted) writeState(file, { ...state, open: false });
    warnings.push(...describeFailures('post-deployment', failures));
  }
  return warnings;
}

/**
 * Runs `run` (one lifecycle event) inside the operator hooks. Without a hooks folder this is `run()`
 * and touches nothing else.
 */
export async function runWithOperatorHooks(
  spec: DeploymentSpec,
  event: string,
  context: EngineContext,
  run: () => Promise<EventResult>,
): Promise<EventResult> {
  const scan = scanOperatorHooks(context.config.operator_hooks_dir);
  if (!scan || !Object.values(scan).some((point) => point.run.length + point.refused.length + point.skipped.length > 0)) return run();
  const runner = new PointRunner(scan, context);
  const deployment = { deploymentGroupId: spec.deploymentGroupId, deploymentId: spec.deploymentId };
  const variables = hookVariables(spec, event);
  const stateFile = operatorHooksStateFile(deploymentPaths(context.config.root_dir, spec.deploymentGroupId, spec.deploymentId).deploymentDir);
  const tracksDeployment = pointHasHooks(scan, 'pre-deployment') || pointHasHooks(scan, 'post-deployment');
  const warnings: string[] = [];
  try {
    let state = tracksDeployment ? readState(stateFile) : undefined;
    let result: EventResult | undefined;
    let failure: unknown;
    let preEventTried = false;
    try {
      if (tracksDeployment) {
        if (!state?.open) {
          warnings.push(...await closeAbandoned(spec, runner, context));
          state = { open: true, firstEvent: state?.firstEvent ?? event, lastEvent: event, variables };
          writeState(stateFile, state);
          const [preDeployment] = await runner.run('pre-deployment', deployment, variables);
          if (preDeployment) throw preHookError(preDeployment, 'pre-deployment', event);
        } else {
          state = { ...state, lastEvent: event };
          writeState(stateFile, state);
        }
      }
      preEventTried = true;
      const [preEvent] = await runner.run('pre-event', deployment, variables);
      if (preEvent) throw preHookError(preEvent, 'pre-event', event);
      result = await run();
    } catch (error) {
      failure = error;
    }
    const outcome = outcomeOf(failure);
    if (preEventTried) warnings.push(...describeFailures('post-event', await runner.run('post-event', deployment, variables, outcome)));
    if (state?.open) {
      const lastEvent = context.plannedEvents?.at(-1) ?? lastEventOnHost(spec, state.firstEvent);
      if (failure !== undefined || event === lastEvent) {
        warnings.push(...describeFailures('post-deployment', await runner.run('post-deployment', deployment, variables, outcome)));
        // A shutdown stopped the hooks: the deployment stays open and is closed as Abandoned later.
        if (!context.signal?.aborted) writeState(stateFile, { ...state, open: false });
      }
    }
    if (failure !== undefined) throw failure;
    if (warnings.length === 0) return result!;
    // The console shows the diagnostics tail: a failed post- hook is seen there too.
    return { ...result!, logTail: tailOf([result!.logTail, ...warnings.map((w) => `${w}\n`)]), operatorHookWarnings: warnings };
  } finally {
    await runner.close();
  }
}
