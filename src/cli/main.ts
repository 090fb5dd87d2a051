import { basename } from 'node:path';
import { Command, CommanderError } from 'commander';
import { AGENT_VERSION } from '../version.js';
import { WORKER_SUBCOMMAND } from '../agent/command-worker-wire.js';

/** `codedeploy-local` is the same binary reached through a link (dispatch on argv[0], as AWS's 2.0 agent does). */
function invokedAsLocal(): boolean {
  const name = basename(process.argv[1] ?? '');
  return name === 'codedeploy-local' || name === 'codedeploy-local.mjs';
}

interface SubcommandModule {
  register(program: Command): void;
}

/**
 * Each subcommand's module, loaded only when that subcommand runs: the daemon (`run`) never loads the
 * CodeDeploy control-plane SDK of `register`, the engine of `deploy` or the appspec checker of `validate`,
 * which keeps an idle agent small (issue 4: RSS ≤ 60 MiB). In registration (and help) order.
 */
const SUBCOMMANDS: ReadonlyArray<readonly [names: readonly string[], load: () => Promise<SubcommandModule>]> = [
  [['run'], () => import('./run.js')],
  [['deploy'], () => import('./deploy.js')],
  [['validate'], () => import('./validate.js')],
  [['status'], () => import('./status.js')],
  [['logs'], () => import('./logs.js')],
  [['stop'], () => import('./stop.js')],
  [['start', 'restart'], () => import('./start.js')],
  [['register', 'deregister'], () => import('./register.js')],
  [['completion', 'man'], () => import('./docs.js')],
];

/** Subcommands that describe every other one, so they need all of them loaded. */
const DESCRIBE_ALL = ['completion', 'man'];

/**
 * The modules to load: the named subcommand's alone (the first word that is not an option: there are no
 * global options with values), none for a bare `--version`, or all of them (help, a misspelt name's
 * suggestions).
 */
function modulesFor(argv: readonly string[]): (() => Promise<SubcommandModule>)[] {
  const args = argv.slice(2);
  const name = args.find((arg) => !arg.startsWith('-'));
  if (name === undefined && (args.includes('-v') || args.includes('--version'))) return [];
  const match = SUBCOMMANDS.find(([names]) => name !== undefined && names.includes(name) && !DESCRIBE_ALL.includes(name));
  return match ? [match[1]] : SUBCOMMANDS.map(([, load]) => load);
}

export async function main(argv: string[]): Promise<number> {
  // The daemon's command worker: started by `run` over an IPC channel, so not a subcommand people see.
  if (argv[2] === WORKER_SUBCOMMAND && argv.length === 3) {
    const { serveCommands } = await import('../agent/command-worker-main.js');
    return serveCommands();
  }
  const program = new Command();
  program.exitOverride();
  if (invokedAsLocal()) {
    const { registerLocalProgram } = await import('./deploy.js');
    registerLocalProgram(program);
  } else {
    program
      .name('codedeploy-agent')
      .description('AWS CodeDeploy host agent (drop-in replacement)')
      .version(AGENT_VERSION, '-v, --version', 'print the agent version')
      .showHelpAfterError();
    for (const load of modulesFor(argv)) (await load()).register(program);
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

