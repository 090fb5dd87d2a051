import { basename } from 'node:path';
import { Command, CommanderError } from 'commander';
import { AGENT_VERSION } from '../version.js';
import { register as registerDeploy, registerLocalProgram } from './deploy.js';
import { register as registerValidate } from './validate.js';
import { register as registerRun } from './run.js';
import { register as registerStatus } from './status.js';
import { register as registerStop } from './stop.js';
import { register as registerRegister } from './register.js';

/** `codedeploy-local` is the same binary reached through a link (dispatch on argv[0], as the anchor's 2.0 does). */
function invokedAsLocal(): boolean {
  const name = basename(process.argv[1] ?? '');
  return name === 'codedeploy-local' || name === 'codedeploy-local.mjs';
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program.exitOverride();
  if (invokedAsLocal()) {
    registerLocalProgram(program);
  } else {
    program
      .name('codedeploy-agent')
      .description('AWS CodeDeploy host agent (drop-in replacement)')
      .version(AGENT_VERSION, '-v, --version', 'print the agent version')
      .showHelpAfterError();
    registerRun(program);
    registerDeploy(program);
    registerValidate(program);
    registerStatus(program);
    registerStop(program);
    registerRegister(program);
  }
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version are successes (better than the anchor, §10.29).
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
      return error.exitCode || 1;
    }
    process.stderr.write(`ERROR: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

const code = await main(process.argv);
process.exitCode = code;
