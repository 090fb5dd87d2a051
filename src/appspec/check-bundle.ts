import { basename, dirname, join, relative } from 'node:path';
import { diskFiles, HEAD_BYTES, type RevisionFileStats, type RevisionFiles } from '../archive/revision-files.js';
import { isCrlfShebang } from '../hooks/script-path.js';
import type { AppSpecProblem, SourcePosition } from '../report/errors.js';
import { closestName } from './suggest.js';
import type { AppSpec, FileMapping, HookScript } from './types.js';

export interface BundleCheck {
  problems: AppSpecProblem[];
  warnings: AppSpecProblem[];
}

/**
 * Checks an appspec against the bundle it came with: every hook script and every files source must
 * exist (a missing script is the most common failed deployment, users-and-peers theme 16). Each
 * location is reported once, at the first place the appspec names it.
 */
export function checkBundle(
  spec: Pick<AppSpec, 'hooks' | 'files'>,
  positions: Map<HookScript | FileMapping, SourcePosition>,
  bundleRoot: string,
  files: RevisionFiles = diskFiles,
): BundleCheck {
  const result: BundleCheck = { problems: [], warnings: [] };
  const seen = new Set<string>();
  for (const [event, scripts] of Object.entries(spec.hooks)) {
    for (const script of scripts) {
      if (seen.has(script.location)) continue;
      seen.add(script.location);
      checkScript(result, files, bundleRoot, event, script.location, positions.get(script));
    }
  }
  spec.files.forEach((mapping, index) => checkSource(result, files, bundleRoot, index, mapping.source, positions.get(mapping)));
  return result;
}

function checkScript(result: BundleCheck, files: RevisionFiles, root: string, event: string, location: string, at: SourcePosition | undefined): void {
  const path = join(root, location);
  if (isOutside(root, path)) {
    result.warnings.push({ ...at, message: `the ${event} script ${location} lies outside the bundle`, hint: 'keep scripts inside the bundle so every revision carries its own' });
  }
  const stats = statOf(files, path);
  if (stats === undefined) {
    result.problems.push({ ...at, message: `the ${event} script ${location} does not exist in the bundle`, hint: missingHint(files, root, path) });
    return;
  }
  if (!stats.isFile()) {
    result.problems.push({ ...at, message: `the ${event} script ${location} is a folder, not a script`, hint: 'point location at a script file inside that folder' });
    return;
  }
  if ((stats.mode & 0o111) === 0) {
    result.warnings.push({ ...at, message: `the ${event} script ${location} is not executable; the agent will make it executable`, hint: `run chmod +x ${location} before packing the bundle` });
  }
  if (hasCrlfShebang(files, path)) {
    result.warnings.push({
      ...at,
      message: `the ${event} script ${location} has Windows (CRLF) line endings, so its #! line names an interpreter that does not exist`,
      hint: 'convert its line endings to LF, e.g. with dos2unix',
    });
  }
}

function checkSource(result: BundleCheck, files: RevisionFiles, root: string, index: number, source: string, at: SourcePosition | undefined): void {
  const path = join(root, source);
  if (isOutside(root, path)) {
    result.problems.push({ ...at, message: `files[${index}].source ${source} lies outside the bundle`, hint: 'sources are paths inside the bundle; / means the whole bundle' });
    return;
  }
  if (statOf(files, path) === undefined) {
    result.problems.push({ ...at, message: `files[${index}].source ${source} does not exist in the bundle`, hint: missingHint(files, root, path) });
  }
}

function missingHint(files: RevisionFiles, root: string, path: string): string {
  const folder = dirname(path);
  let names: string[] = [];
  try {
    names = files.readdir(folder).map((entry) => entry.name);
  } catch {
    // The folder itself is missing; there is nothing to suggest.
  }
  const suggestion = closestName(basename(path), names);
  const shown = relative(root, join(folder, suggestion ?? ''));
  return suggestion ? `did you mean ${shown}? Names are case-sensitive` : 'add it to the bundle, or fix the path: it is relative to the folder that holds the appspec';
}

function isOutside(root: string, path: string): boolean {
  const fromRoot = relative(root, path);
  return fromRoot === '..' || fromRoot.startsWith('../');
}

function statOf(files: RevisionFiles, path: string): RevisionFileStats | undefined {
  try {
    return files.stat(path);
  } catch {
    return undefined;
  }
}

function hasCrlfShebang(files: RevisionFiles, path: string): boolean {
  return isCrlfShebang(files.readHead(path, HEAD_BYTES));
}
