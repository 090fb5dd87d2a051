import { closeSync, openSync, readSync, readdirSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
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
export function checkBundle(spec: Pick<AppSpec, 'hooks' | 'files'>, positions: Map<HookScript | FileMapping, SourcePosition>, bundleRoot: string): BundleCheck {
  const result: BundleCheck = { problems: [], warnings: [] };
  const seen = new Set<string>();
  for (const [event, scripts] of Object.entries(spec.hooks)) {
    for (const script of scripts) {
      if (seen.has(script.location)) continue;
      seen.add(script.location);
      checkScript(result, bundleRoot, event, script.location, positions.get(script));
    }
  }
  spec.files.forEach((mapping, index) => checkSource(result, bundleRoot, index, mapping.source, positions.get(mapping)));
  return result;
}

function checkScript(result: BundleCheck, root: string, event: string, location: string, at: SourcePosition | undefined): void {
  const path = join(root, location);
  if (isOutside(root, path)) {
    result.warnings.push({ ...at, message: `the ${event} script ${location} lies outside the bundle`, hint: 'keep scripts inside the bundle so every revision carries its own' });
  }
  const stats = statOf(path);
  if (stats === undefined) {
    result.problems.push({ ...at, message: `the ${event} script ${location} does not exist in the bundle`, hint: missingHint(root, path) });
    return;
  }
  if (!stats.isFile()) {
    result.problems.push({ ...at, message: `the ${event} script ${location} is a folder, not a script`, hint: 'point location at a script file inside that folder' });
    return;
  }
  if ((stats.mode & 0o111) === 0) {
    result.warnings.push({ ...at, message: `the ${event} script ${location} is not executable; the agent will make it executable`, hint: `run chmod +x ${location} before packing the bundle` });
  }
  if (hasCrlfShebang(path)) {
    result.warnings.push({
      ...at,
      message: `the ${event} script ${location} has Windows (CRLF) line endings, so its #! line names an interpreter that does not exist`,
      hint: 'convert its line endings to LF, e.g. with dos2unix',
    });
  }
}

function checkSource(result: BundleCheck, root: string, index: number, source: string, at: SourcePosition | undefined): void {
  const path = join(root, source);
  if (isOutside(root, path)) {
    result.problems.push({ ...at, message: `files[${index}].source ${source} lies outside the bundle`, hint: 'sources are paths inside the bundle; / means the whole bundle' });
    return;
  }
  if (statOf(path) === undefined) {
    result.problems.push({ ...at, message: `files[${index}].source ${source} does not exist in the bundle`, hint: missingHint(root, path) });
  }
}

function missingHint(root: string, path: string): string {
  const folder = dirname(path);
  let names: string[] = [];
  try {
    names = readdirSync(folder);
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

function statOf(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function hasCrlfShebang(path: string): boolean {
  const buffer = Buffer.alloc(512);
  let length = 0;
  try {
    const fd = openSync(path, 'r');
    try {
      length = readSync(fd, buffer, 0, buffer.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
  const head = buffer.subarray(0, length).toString('latin1');
  const lineEnd = head.indexOf('\n');
  return head.startsWith('#!') && lineEnd > 0 && head[lineEnd - 1] === '\r';
}
