import { fstatSync } from 'node:fs';
import winston from 'winston';
import TransportStream from 'winston-transport';
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
 *
 * winston does what it is for: a logger-wide format redacts, each transport's own format renders its
 * line, winston's Stream transport writes stderr. The file transport is ours because the daily rotation
 * must keep the live file's name (docs/decisions.md, "winston: formats and transports").
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

/** Where winston's formats leave the rendered line (triple-beam's MESSAGE). */
const MESSAGE = Symbol.for('message');

type Info = winston.Logform.TransformableInfo;

/** Appends each rendered line to the daily-rotated file. */
class DailyFileTransport extends TransportStream {
  constructor(private readonly file: DailyFile, options: TransportStream.TransportStreamOptions) {
    super(options);
  }
  override log(info: Info, next: () => void): void {
    this.file.write(info[MESSAGE] as string);
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

  const file = new DailyFile({
    dir: config.log_dir,
    fileName: options.fileName ?? `${program}.log`,
    keep: config.log_retention_days,
    now,
    onError: (error) => process.stderr.write(`${program}: cannot write the log file: ${error.message}\n`),
  });
  const redacted = winston.format((info) => {
    info.message = redact(typeof info.message === 'string' ? info.message : String(info.message));
    return info;
  });
  // `format` is read per line, so a SIGHUP's new log_format applies from the next line.
  const line = winston.format.printf((info) => format(now(), info.level, program, process.pid, info.message as string));
  const transports: TransportStream[] = [new DailyFileTransport(file, { level, format: line })];

  if (options.console) {
    // The journal stamps time and pid itself; keep the level word for plain `journalctl` output.
    const journalLine = winston.format.printf((info) => {
      const body = logFormat === 'json'
        ? format(now(), info.level, program, process.pid, info.message as string)
        : `${info.level.toUpperCase().padEnd(5)} ${info.message as string}`;
      return `<${JOURNAL_PRIORITY[info.level as Level] ?? 6}>${body}`;
    });
    transports.push(new winston.transports.Stream({ stream: process.stderr, eol: '\n', level, format: stderrIsJournal() ? journalLine : line }));
  }

  const winstonLogger = winston.createLogger({ level, levels: winston.config.npm.levels, format: redacted(), transports, exitOnError: false });
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
