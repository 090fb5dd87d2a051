import type { Command } from 'commander';

/** Placeholder until the issue that builds `stop` lands. */
export function register(program: Command): void {
  program
    .command('stop')
    .description('stop (not implemented yet)')
    .option('-c, --config <file>', 'agent configuration file')
    .allowUnknownOption()
    .action(() => {
      process.stderr.write('codedeploy-agent stop is not implemented yet\n');
      process.exitCode = 2;
    });
}
