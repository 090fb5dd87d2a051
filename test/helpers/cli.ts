import { execa, type Options } from 'execa';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const AGENT_BIN = join(REPO_ROOT, 'bin', 'codedeploy-agent.mjs');

/** Runs the built CLI as a real child process (never throws on a non-zero exit). */
export function runCli(args: string[], options: Options = {}) {
  return execa(process.execPath, [AGENT_BIN, ...args], { reject: false, all: true, ...options });
}
