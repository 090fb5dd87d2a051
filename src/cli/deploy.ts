import type { Command } from 'commander';

/** Placeholder until the hooks issue builds `deploy`. */
export function register(program: Command): void {
  program
    .command('deploy')
    .description('local deployment (codedeploy-local)')
    .allowUnknownOption()
    .action(() => {
      process.stderr.write('codedeploy-agent deploy is not implemented yet\n');
      process.exitCode = 2;
    });
}

export function registerLocalProgram(program: Command): void {
  register(program);
}
