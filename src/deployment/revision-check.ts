import { basename } from 'node:path';
import { diskFiles, type RevisionFiles } from '../archive/revision-files.js';
import { checkBundle } from '../appspec/check-bundle.js';
import { customEventsOf, customEventsWithoutScripts } from '../appspec/custom-events.js';
import { findAppSpec, readAppSpecText } from '../appspec/find.js';
import { parseAppSpec } from '../appspec/parse.js';
import type { FileMapping, HookScript } from '../appspec/types.js';
import { lookupUser } from '../hooks/script-command.js';
import { ErrorCode, type ErrorCodeValue } from '../report/error-codes.js';
import { AgentError, AppSpecError, formatProblem, type AppSpecProblem, type SourcePosition } from '../report/errors.js';
import type { EngineContext } from './engine.js';
import { deploymentPaths } from './layout.js';
import { isBuiltinEvent } from './lifecycle.js';
import type { DeploymentSpec } from './spec-types.js';

/** Problems a message lists at most (an appspec generated wrong can have one per line). */
const MAX_PROBLEMS_IN_MESSAGE = 200;

/** The new revision cannot run the events asked for; found before anything of it was installed or run. */
export class RevisionCheckError extends AgentError {
  readonly problems: AppSpecProblem[];
  constructor(problems: AppSpecProblem[], code: ErrorCodeValue) {
    const shown = problems.slice(0, MAX_PROBLEMS_IN_MESSAGE).map(formatProblem);
    if (problems.length > shown.length) shown.push(`... ${problems.length - shown.length} more problems not shown (codedeploy-agent validate --json lists them all)`);
    super(`The revision cannot run the events of this deployment, so nothing of it was installed or run:\n${shown.join('\n')}`, code);
    this.problems = problems;
  }
}

export interface RevisionCheckInput {
  /** The folder that holds the appspec (the user's bundle folder, or the unpacked deployment-archive). */
  bundleRoot: string;
  appspecFilename?: string;
  /** Every event of the run, in order (custom events are the ones that are not lifecycle events). */
  events: readonly string[];
  /** The events whose scripts come from this revision: those after DownloadBundle. */
  eventsFromRevision: readonly string[];
  /** How to name a file of the bundle in messages (the deployment-archive copy means little to the user). */
  display?: (path: string) => string;
  /** Where the revision's files are read: the disk, or an archive read in place (the dry run). */
  files?: RevisionFiles;
}

/**
 * What would make a local run fail half-way, found before it starts: an appspec that does not parse,
 * an event under hooks that no run would reach (`AfterInstal:`), a custom event of `--events` without
 * scripts, and a script that the events to come name but the bundle lacks. Each problem has its place in
 * the appspec. A `runas` user this host does not have is only a warning: an earlier hook of the same
 * deployment may create it (a bundle that worked with AWS's agent must keep working); the event that
 * needs the user looks it up again before its first script and fails clearly if it is still missing.
 * (The daemon cannot check this way: the service decides which events an instance gets.)
 */
export async function inspectRevision(input: RevisionCheckInput): Promise<{ problems: AppSpecProblem[]; warnings: AppSpecProblem[]; code: ErrorCodeValue }> {
  const display = input.display ?? ((path: string) => path);
  const files = input.files ?? diskFiles;
  let appspecPath: string;
  let text: string;
  try {
    appspecPath = findAppSpec(input.bundleRoot, input.appspecFilename, files);
    text = readAppSpecText(appspecPath, display(appspecPath), files);
  } catch (error) {
    if (!(error instanceof AppSpecError)) throw error;
    return { problems: error.problems.map((problem) => shownIn(problem, input.bundleRoot, display(input.bundleRoot))), warnings: [], code: ErrorCode.UnknownError };
  }
  const file = display(appspecPath);
  const parsed = parseAppSpec(text, file, { customEvents: customEventsOf(input.events) });
  const warnings = [...parsed.warnings];
  // Scripts are checked also when other parts of the appspec have problems: every problem at once.
  const parsedHooks = parsed.spec?.hooks ?? parsed.sections?.hooks;
  if (!parsedHooks) return { problems: parsed.problems, warnings, code: ErrorCode.UnknownError };

  const problems: AppSpecProblem[] = [...parsed.problems, ...customEventsWithoutScripts(parsedHooks, input.events, basename(appspecPath)).map((problem) => ({ ...problem, file }))];
  const hooks: Record<string, HookScript[]> = {};
  for (const event of input.eventsFromRevision) {
    if (!isBuiltinEvent(event) && parsedHooks[event]) hooks[event] = parsedHooks[event];
  }
  const bundle = checkBundle({ hooks, files: [] }, parsed.positions, input.bundleRoot, files);
  for (const item of bundle.warnings) warnings.push(item);
  const missingScripts = bundle.problems.length > 0 && parsed.problems.length === 0;
  for (const item of bundle.problems) problems.push(item);
  for (const item of await missingRunasUsers(hooks, parsed.positions)) warnings.push(item);
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0));
  return { problems, warnings, code: missingScripts ? ErrorCode.ScriptMissing : ErrorCode.UnknownError };
}

/** Warnings for each `runas` user (once each) this host does not have, at the script that names it. */
export async function missingRunasUsers(hooks: Record<string, HookScript[]>, positions: Map<HookScript | FileMapping, SourcePosition>): Promise<AppSpecProblem[]> {
  const warnings: AppSpecProblem[] = [];
  const checked = new Set<string>();
  for (const [event, scripts] of Object.entries(hooks)) {
    for (const script of scripts) {
      if (!script.runas || checked.has(script.runas)) continue;
      checked.add(script.runas);
      if (await lookupUser(script.runas)) continue;
      warnings.push({
        ...positions.get(script),
        message: `the ${event} script ${script.location} runs as user ${script.runas}, who does not exist on this host`,
        hint: `create ${script.runas} before the deployment or in an earlier hook, or ${event} will fail`,
      });
    }
  }
  return warnings;
}

function shownIn(problem: AppSpecProblem, folder: string, shown: string): AppSpecProblem {
  return {
    ...problem,
    message: problem.message.replaceAll(folder, shown),
    ...(problem.hint === undefined ? {} : { hint: problem.hint.replaceAll(folder, shown) }),
  };
}

/**
 * Checks the revision a local run staged (DownloadBundle's work done before the stop events, see
 * stageBundle) against the events still to come after DownloadBundle. Warnings go to the log and to
 * `warn` (the terminal); problems throw, before any hook of this deployment or the previous one runs.
 * Files are named as they will be once placed in `deployment-archive`, which `display` knows.
 */
export async function checkRevisionForLocalRun(
  spec: DeploymentSpec,
  events: readonly string[],
  laterEvents: readonly string[],
  context: EngineContext,
  options: { display?: (path: string) => string; warn?: (warning: AppSpecProblem) => void } = {},
): Promise<void> {
  const { archiveDir, stagedArchiveDir } = deploymentPaths(context.config.root_dir, spec.deploymentGroupId, spec.deploymentId);
  const placed = (path: string) => (path === stagedArchiveDir || path.startsWith(`${stagedArchiveDir}/`) ? `${archiveDir}${path.slice(stagedArchiveDir.length)}` : path);
  const display = (path: string) => (options.display ?? ((shown: string) => shown))(placed(path));
  const result = await inspectRevision({ bundleRoot: stagedArchiveDir, appspecFilename: spec.appSpecFilename, events, eventsFromRevision: laterEvents, display });
  reportRevisionCheck(result, context, options.warn);
}

/** Logs the warnings (and hands them to `warn`), then throws when there are problems. */
export function reportRevisionCheck(
  result: { problems: AppSpecProblem[]; warnings: AppSpecProblem[]; code: ErrorCodeValue },
  context: Pick<EngineContext, 'logger'>,
  warn?: (warning: AppSpecProblem) => void,
): void {
  for (const warning of result.warnings) {
    context.logger.warn(formatProblem(warning));
    warn?.(warning);
  }
  if (result.problems.length > 0) throw new RevisionCheckError(result.problems, result.code);
}
