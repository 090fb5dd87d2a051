import type { Command } from 'commander';

/** Placeholder until the issue that builds `register` lands. */
export function register(program: Command): void {
  program
    .command('register')
    .description('register (not implemented yet)')
    .option('-c, --config <file>', 'agent configuration file')
    .allowUnknownOption()
    .action(() => {
      process.stderr.write('codedeploy-agent register is not implemented yet\n');
      process.exitCode = 2;
    });
}
