/**
 * The logging interface every module takes. Modules never import winston directly, so tests can pass
 * a recording logger (test/helpers/memory-logger.ts) and the CLI decides where lines go (see ./winston-logger.ts).
 */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
