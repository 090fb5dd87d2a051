import type { Command } from 'commander';

/** Placeholder until the issue that builds `run` lands. */
export function register(program: Command): void {
  program
    .command('run')
    .description('run (not implemented yet)')
    .option('-c, --config <file>', 'agent configuration file')
    .allowUnknownOption()
    .action(() => {
      process.stderr.write('codedeploy-agent run is not implemented yet\n');
      process.exitCode = 2;
    });
}
