/**
 * The logging interface every module takes. Modules never import winston directly, so tests can pass
 * a recording logger and the CLI decides where lines go (see ./winston-logger.ts).
 */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Collects lines in memory; for tests. */
export class MemoryLogger implements Logger {
  readonly lines: { level: string; message: string }[] = [];
  debug(message: string): void { this.lines.push({ level: 'debug', message }); }
  info(message: string): void { this.lines.push({ level: 'info', message }); }
  warn(message: string): void { this.lines.push({ level: 'warn', message }); }
  error(message: string): void { this.lines.push({ level: 'error', message }); }
  text(): string { return this.lines.map((l) => `${l.level} ${l.message}`).join('\n'); }
}
