import type { Command } from 'commander';

/** Placeholder until the issue that builds `status` lands. */
export function register(program: Command): void {
  program
    .command('status')
    .description('status (not implemented yet)')
    .option('-c, --config <file>', 'agent configuration file')
    .allowUnknownOption()
    .action(() => {
      process.stderr.write('codedeploy-agent status is not implemented yet\n');
      process.exitCode = 2;
    });
}
