import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { howToGet, readPrerequisites, toolsDir } from '../../scripts/test-prerequisites.mjs';

/**
 * The commands of test/prerequisites.txt, for tests that need one: `npm test` installs what it can
 * first (scripts/test-prerequisites.mjs); what is still missing makes the tests that need it skip with
 * one line saying how to get it, except in CI, which must run every test and fails instead.
 */
const PREREQUISITES = readPrerequisites();
const warned = new Set<string>();

/** Where `command` is: on PATH, or in the folder where test-prerequisites.mjs sets up moto_server. */
export function findTestTool(command: string): string | undefined {
  // An absolute path names a file that must exist (a library), not a command.
  if (command.startsWith('/')) return existsSync(command) ? command : undefined;
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), join(toolsDir(), 'bin')]) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Why the tests that need `command` cannot run here (undefined when they can), said once per test
 * file; in CI a missing command throws, so nothing is skipped silently there.
 */
export function missingTool(command: string): string | undefined {
  if (findTestTool(command)) return undefined;
  const tool = PREREQUISITES.find((entry) => entry.command === command);
  if (!tool) throw new Error(`${command} is not listed in test/prerequisites.txt; add it there`);
  const reason = `${tool.purpose}: ${command} is missing; to get it: ${howToGet(tool)}`;
  if (process.env.CI) throw new Error(`${reason}. CI never skips: .ci/run must install it`);
  if (!warned.has(command)) {
    warned.add(command);
    console.warn(`skipped: ${reason}`);
  }
  return reason;
}
