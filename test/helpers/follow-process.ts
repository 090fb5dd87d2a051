import { execa, type Options, type ResultPromise } from 'execa';
import { AGENT_BIN } from './cli.js';

/**
 * A long-running CLI child (`logs -f`, a `deploy` whose hook waits) whose output a test reads as it
 * comes. Stopped by its own pid only.
 */
export class CliProcess {
  stdout = '';
  stderr = '';
  readonly child: ResultPromise;
  readonly exited: Promise<{ exitCode?: number; signal?: string }>;
  #done = false;

  constructor(args: string[], options: Options = {}) {
    this.child = execa(process.execPath, [AGENT_BIN, ...args], { reject: false, ...options });
    this.child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString('utf8');
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString('utf8');
    });
    this.exited = this.child.then((result) => {
      this.#done = true;
      return { exitCode: result.exitCode, signal: result.signal ?? undefined };
    });
  }

  get running(): boolean {
    return !this.#done;
  }

  /** Waits until stdout (or stderr) matches; a generous deadline, for a loaded machine. */
  async waitFor(pattern: RegExp | string, { stream = 'stdout', timeoutMs = 60_000 }: { stream?: 'stdout' | 'stderr'; timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const text = () => (stream === 'stdout' ? this.stdout : this.stderr);
    const matches = () => (typeof pattern === 'string' ? text().includes(pattern) : pattern.test(text()));
    while (!matches()) {
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${String(pattern)} on ${stream}; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      if (this.#done && !matches()) throw new Error(`Exited before ${String(pattern)} appeared on ${stream}; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Sends a signal to this child (by pid). */
  signal(name: NodeJS.Signals): void {
    if (this.#done || this.child.pid === undefined) return;
    try {
      process.kill(this.child.pid, name);
    } catch {
      // already gone
    }
  }

  /** SIGKILL if still running, for afterEach. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }
}
