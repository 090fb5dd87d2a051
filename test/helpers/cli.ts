import { execa, type Options } from 'execa';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const AGENT_BIN = join(REPO_ROOT, 'bin', 'codedeploy-agent.mjs');

/**
 * What a test runs the agent as: the source build through bin/ (with this machine's Node.js), or the
 * single executable built by the global setup (Node.js 24 inside). End-to-end tests run against both.
 */
export interface AgentTarget {
  name: 'source' | 'executable';
  /** The program and the arguments before the agent's own. */
  command: readonly [string, ...string[]];
}

export const SOURCE_TARGET: AgentTarget = { name: 'source', command: [process.execPath, AGENT_BIN] };

/** The single executable for this machine (test/global-setup.ts builds it once per run). */
export function executablePath(): string {
  const file = process.env.CDA_TEST_EXECUTABLE;
  if (!file) throw new Error('CDA_TEST_EXECUTABLE is not set: run the tests through vitest (test/global-setup.ts builds the executable)');
  return file;
}

export const EXECUTABLE_TARGET: AgentTarget = {
  name: 'executable',
  get command(): readonly [string] { return [executablePath()]; },
};

export const AGENT_TARGETS: readonly AgentTarget[] = [SOURCE_TARGET, EXECUTABLE_TARGET];

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved. */
  all: string;
}

/** Runs the built CLI as a real child process (never throws on a non-zero exit). */
export async function runCli(args: string[], options: Options = {}, target: AgentTarget = SOURCE_TARGET): Promise<CliResult> {
  const [command, ...before] = target.command;
  const result = await execa(command, [...before, ...args], { reject: false, all: true, ...options });
  return {
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    all: String(result.all ?? ''),
  };
}
