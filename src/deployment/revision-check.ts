import { readFileSync } from 'node:fs';
import { checkBundle } from '../appspec/check-bundle.js';
import { findAppSpec } from '../appspec/find.js';
import { parseAppSpec } from '../appspec/parse.js';
import type { HookScript } from '../appspec/types.js';
import { lookupUser } from '../hooks/script-command.js';
import { ErrorCode, type ErrorCodeValue } from '../report/error-codes.js';
import { AgentError, formatProblem, type AppSpecProblem } from '../report/errors.js';
import type { EngineContext } from './engine.js';
import { deploymentPaths } from './layout.js';
import { isBuiltinEvent } from './lifecycle.js';
import type { DeploymentSpec } from './spec-types.js';

/** The new revision cannot run the events asked for; found before anything of it was installed or run. */
export class RevisionCheckError extends AgentError {
  readonly problems: AppSpecProblem[];
  constructor(problems: AppSpecProblem[], code: ErrorCodeValue) {
    super(
      `The revision cannot run the events of this deployment, so nothing of it was installed or run:\n${problems.map(formatProblem).join('\n')}`,
      code,
    );
    this.problems = problems;
  }
}

/**
 * A local deployment knows every event it will run, so once DownloadBundle has unpacked the revision
 * it checks what would otherwise fail half-way, after Install has already written files: a script
 * that the events to come name but the bundle lacks, and a `runas` user this host does not have.
 * Each problem is reported with its place in the appspec. (The daemon cannot do this: the service
 * decides which events an instance gets, and an event that never comes may name a missing script.)
 * A `runas` user the host does not have yet is only a warning: an earlier hook of the same deployment
 * may create it (a bundle that worked with the anchor must keep working); the event that needs the user
 * looks it up again before its first script and fails clearly if it is still missing.
 *
 * An appspec that does not parse is left to the events themselves, which report it with positions.
 */
export async function checkRevisionForLocalRun(spec: DeploymentSpec, laterEvents: readonly string[], context: EngineContext): Promise<void> {
  const { archiveDir } = deploymentPaths(context.config.root_dir, spec.deploymentGroupId, spec.deploymentId);
  let appspecPath: string;
  let text: string;
  try {
    appspecPath = findAppSpec(archiveDir, spec.appSpecFilename);
    text = readFileSync(appspecPath, 'utf8');
  } catch {
    return;
  }
  const parsed = parseAppSpec(text, appspecPath);
  if (!parsed.spec) return;

  // Every event after DownloadBundle takes its scripts from this revision (§3.7: its archive exists now).
  const hooks: Record<string, HookScript[]> = {};
  for (const event of laterEvents) {
    if (!isBuiltinEvent(event) && parsed.spec.hooks[event]) hooks[event] = parsed.spec.hooks[event];
  }
  const bundle = checkBundle({ hooks, files: [] }, parsed.positions, archiveDir);
  for (const warning of bundle.warnings) context.logger.warn(formatProblem(warning));
  const problems = [...bundle.problems];
  const missingScripts = problems.length > 0;

  const checked = new Set<string>();
  for (const [event, scripts] of Object.entries(hooks)) {
    for (const script of scripts) {
      if (!script.runas || checked.has(script.runas)) continue;
      checked.add(script.runas);
      if (await lookupUser(script.runas)) continue;
      const where = parsed.positions.get(script);
      context.logger.warn(formatProblem({
        ...where,
        message: `the ${event} script ${script.location} runs as user ${script.runas}, who does not exist on this host yet`,
        hint: `an earlier hook must create ${script.runas}, or ${event} will fail`,
      }));
    }
  }
  if (problems.length === 0) return;
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0));
  throw new RevisionCheckError(problems, missingScripts ? ErrorCode.ScriptMissing : ErrorCode.ScriptFailed);
}
