import { isSea } from 'node:sea';

/**
 * The command line that starts this same program again with `args`: the single executable itself, or
 * Node.js with this process's options (a memory limit, say) and the entry script. `start` restarts the
 * daemon through it, and the daemon starts its command worker (agent/command-worker.ts) through it.
 */
export function selfCommand(args: readonly string[]): { command: string; args: string[] } {
  if (isSea()) return { command: process.execPath, args: [...args] };
  return { command: process.execPath, args: [...process.execArgv, process.argv[1], ...args] };
}
