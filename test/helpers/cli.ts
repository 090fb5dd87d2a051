import { execa, type Options } from 'execa';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const AGENT_BIN = join(REPO_ROOT, 'bin', 'codedeploy-agent.mjs');

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved. */
  all: string;
}

/** Runs the built CLI as a real child process (never throws on a non-zero exit). */
export async function runCli(args: string[], options: Options = {}): Promise<CliResult> {
  const result = await execa(process.execPath, [AGENT_BIN, ...args], { reject: false, all: true, ...options });
  return {
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    all: String(result.all ?? ''),
  };
}
