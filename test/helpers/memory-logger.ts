import type { Logger } from '../../src/log/logger.js';

/** Collects lines in memory, so a test can read what a module logged. */
export class MemoryLogger implements Logger {
  readonly lines: { level: string; message: string }[] = [];
  debug(message: string): void { this.lines.push({ level: 'debug', message }); }
  info(message: string): void { this.lines.push({ level: 'info', message }); }
  warn(message: string): void { this.lines.push({ level: 'warn', message }); }
  error(message: string): void { this.lines.push({ level: 'error', message }); }
  text(): string { return this.lines.map((l) => `${l.level} ${l.message}`).join('\n'); }
}
