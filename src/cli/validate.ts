import type { Command } from 'commander';

/** Placeholder until the issue that builds `validate` lands. */
export function register(program: Command): void {
  program
    .command('validate')
    .description('validate (not implemented yet)')
    .option('-c, --config <file>', 'agent configuration file')
    .allowUnknownOption()
    .action(() => {
      process.stderr.write('codedeploy-agent validate is not implemented yet\n');
      process.exitCode = 2;
    });
}
