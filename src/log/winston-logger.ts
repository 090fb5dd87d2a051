import { fstatSync } from 'node:fs';
import winston from 'winston';
import type TransportStream from 'winston-transport';
import type { AgentConfig } from '../config/agent-config.js';
import { DailyFile } from './daily-file.js';
import { formatJsonLine, formatTextLine } from './line-format.js';
import type { Logger } from './logger.js';
import { redact } from './redact.js';

/**
 * The agent's log: `<log_dir>/<program_name>.log`, rotated daily and kept `log_retention_days` rotated
 * files (the anchor keeps 7), in the anchor's layout
 *   `2024-10-09T22:54:00 INFO  [codedeploy-agent(6273)]: message`
 * or, with `log_format: json`, one JSON object a line for log shippers. Every line passes through
 * `redact()`. With `console`, lines also go to stderr, which systemd hands to the journal (with the
 * journal's priority prefix, so `journalctl -p warning` works).
 */
export type AgentLoggerConfig = Pick<AgentConfig, 'log_dir' | 'program_name' | 'verbose' | 'log_format' | 'log_retention_days'>;

export interface AgentLoggerOptions {
  /** File name inside log_dir; default `<program_name>.log`. */
  fileName?: string;
  /** Also write every line to stderr (the journal under systemd). */
  console?: boolean;
  /** Clock for timestamps and rotation (tests). */
  now?: () => Date;
}

export interface AgentLogger {
  logger: Logger;
  /** The current log file. */
  file: string;
  /**
   * Reopen the log file by name (SIGHUP, after an external logrotate). With `settings` (the re-read
   * configuration), `verbose` and `log_format` take effect from the next line.
   */
  reopen(settings?: Pick<AgentLoggerConfig, 'verbose' | 'log_format'>): void;
  /** Flush and close; log lines after this are dropped. */
  close(): Promise<void>;
}

type Level = 'debug' | 'info' | 'warn' | 'error';

/** syslog priorities journald reads from a `<N>` line prefix (sd-daemon.h). */
const JOURNAL_PRIORITY: Record<Level, number> = { error: 3, warn: 4, info: 6, debug: 7 };

/** Is stderr connected to the journal? systemd says so in JOURNAL_STREAM (`<dev>:<inode>`). */
function stderrIsJournal(): boolean {
  const stream = process.env.JOURNAL_STREAM;
  if (!stream) return false;
  try {
    const stat = fstatSync(2);
    return stream === `${stat.dev}:${stat.ino}`;
  } catch {
    return false;
  }
}

// winston re-exports its base transport as `Transport` (its typings only name it `transport`, as a namespace);
// the type comes from winston-transport, which winston itself depends on.
const TransportBase = (winston as unknown as { Transport: typeof TransportStream }).Transport;

type Render = (info: { level: string; message: unknown }) => string;

class LineTransport extends TransportBase {
  constructor(private readonly sink: (line: string) => void, private readonly render: Render, level: string) {
    super({ level });
  }
  override log(info: { level: string; message: unknown }, next: () => void): void {
    this.sink(this.render(info));
    next();
  }
}

export function createAgentLogger(config: AgentLoggerConfig, options: AgentLoggerOptions = {}): AgentLogger {
  const now = options.now ?? (() => new Date());
  const program = config.program_name;
  const levelFor = (verbose: boolean) => (verbose ? 'debug' : 'info');
  const formatFor = (logFormat: AgentLoggerConfig['log_format']) => (logFormat === 'json' ? formatJsonLine : formatTextLine);
  const level = levelFor(config.verbose);
  let logFormat = config.log_format;
  let format = formatFor(logFormat);
  const text = (message: unknown) => redact(typeof message === 'string' ? message : String(message));

  const file = new DailyFile({
    dir: config.log_dir,
    fileName: options.fileName ?? `${program}.log`,
    keep: config.log_retention_days,
    now,
    onError: (error) => process.stderr.write(`${program}: cannot write the log file: ${error.message}\n`),
  });
  const renderFile: Render = (info) => format(now(), info.level, program, process.pid, text(info.message));
  const transports: TransportStream[] = [new LineTransport((line) => file.write(line), renderFile, level)];

  if (options.console) {
    const journal = stderrIsJournal();
    const renderConsole: Render = journal
      ? (info) => {
        // The journal stamps time and pid itself; keep the level word for plain `journalctl` output.
        const body = logFormat === 'json'
          ? format(now(), info.level, program, process.pid, text(info.message))
          : `${info.level.toUpperCase().padEnd(5)} ${text(info.message)}`;
        return `<${JOURNAL_PRIORITY[info.level as Level] ?? 6}>${body}`;
      }
      : renderFile;
    transports.push(new LineTransport((line) => process.stderr.write(`${line}\n`), renderConsole, level));
  }

  const winstonLogger = winston.createLogger({ level, levels: winston.config.npm.levels, transports, exitOnError: false });
  let closed = false;
  const emit = (lvl: Level) => (message: string) => {
    if (!closed) winstonLogger.log(lvl, message);
  };
  const logger: Logger = { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };

  return {
    logger,
    file: file.path,
    reopen: (settings) => {
      if (settings) {
        const newLevel = levelFor(settings.verbose);
        winstonLogger.level = newLevel;
        for (const transport of transports) transport.level = newLevel;
        logFormat = settings.log_format;
        format = formatFor(logFormat);
      }
      file.reopen();
    },
    close: () => {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise<void>((resolve) => {
        const first = transports[0];
        const done = () => {
          clearTimeout(timer);
          file.close();
          resolve();
        };
        // Lines still queued in winston's pipes reach the transports before they finish.
        const timer = setTimeout(done, 2000);
        first.once('finish', done);
        winstonLogger.end();
      });
    },
  };
}
