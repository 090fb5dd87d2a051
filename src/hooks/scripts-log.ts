import type { Logger } from '../log/logger.js';
import { redactKnownSecrets } from '../log/redact.js';
import { localTimestamp, localTimestampMs } from '../util/local-time.js';
import { RotatingAppendFile } from './rotating-file.js';

export const DEFAULT_SCRIPTS_LOG_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_SCRIPTS_LOG_MAX_FILES = 8;

export interface ScriptsLogOptions {
  /** `ROOT/deployment-logs/codedeploy-agent-deployments.log`; omitted when `:enable_deployments_log:` is false. */
  deploymentsLogPath?: string;
  /** Size at which a file is rotated (both files). Default 64 MiB. */
  maxBytes?: number;
  /** Files kept per log, the live one included (`scripts.log`, `.1` … `.7`). Default 8. */
  maxFiles?: number;
  /** Where write failures (disk full...) are reported, once per file. */
  logger?: Logger;
}

/** `YYYY-MM-DD HH:MM:SS`, local time, as AWS's agent writes scripts.log. */
const scriptsLogTimestamp = (date: Date) => localTimestamp(date, ' ');
/** `YYYY-MM-DD HH:MM:SS.mmm`, local time, as Ruby's Logger writes the deployments log. */
const deploymentsLogTimestamp = localTimestampMs;

/** One scripts.log line: `2024-05-01 12:00:00 [stdout]hello`. */
export function formatScriptsLogLine(date: Date, message: string): string {
  return `${scriptsLogTimestamp(date)} ${message}\n`;
}

/** One deployments-log line: `[2024-05-01 12:00:00.123] [d-ABC]LifecycleEvent - Install`. */
export function formatDeploymentsLogLine(date: Date, deploymentId: string, message: string): string {
  return `[${deploymentsLogTimestamp(date)}] [${deploymentId}]${message.trim()}\n`;
}

/**
 * A deployment's `logs/scripts.log` (and the host-wide deployments log): where every hook message goes
 * (agent-spec §6.4). Messages are written in batches, each awaited, so output is written as fast as
 * the disk takes it and never piles up in memory. Both files rotate by size.
 */
export class ScriptsLog {
  private readonly scripts: RotatingAppendFile;
  private readonly deployments: RotatingAppendFile | undefined;

  private constructor(scriptsLogPath: string, options: ScriptsLogOptions) {
    const maxBytes = options.maxBytes ?? DEFAULT_SCRIPTS_LOG_MAX_BYTES;
    const maxFiles = options.maxFiles ?? DEFAULT_SCRIPTS_LOG_MAX_FILES;
    const reportOnce = (path: string) => {
      let reported = false;
      return (error: unknown) => {
        if (reported) return;
        reported = true;
        options.logger?.error(`Could not write ${path}: ${error instanceof Error ? error.message : String(error)}`);
      };
    };
    this.scripts = new RotatingAppendFile(scriptsLogPath, maxBytes, maxFiles, reportOnce(scriptsLogPath));
    this.deployments = options.deploymentsLogPath
      ? new RotatingAppendFile(options.deploymentsLogPath, maxBytes, maxFiles, reportOnce(options.deploymentsLogPath))
      : undefined;
  }

  /** Opens (creating folders and files) for appending. */
  static open(scriptsLogPath: string, options: ScriptsLogOptions = {}): ScriptsLog {
    return new ScriptsLog(scriptsLogPath, options);
  }

  get path(): string {
    return this.scripts.path;
  }

  /**
   * Appends messages (without newline: `LifecycleEvent - X`, `Script - x.sh`, `[stdout]line`).
   * Resolves when both files have them; never rejects (failures are reported to the logger).
   */
  async append(messages: readonly string[], deploymentId: string): Promise<void> {
    if (messages.length === 0) return;
    const now = new Date();
    const stamp = scriptsLogTimestamp(now);
    let text = '';
    for (const message of messages) text += `${stamp} ${message}\n`;
    // A hook that prints one of the agent's secrets (read from a file, the environment of a child...)
    // must not put it in a file: the known values are replaced before anything is written.
    const writes = [this.scripts.append(redactKnownSecrets(text))];
    if (this.deployments) {
      const prefix = `[${deploymentsLogTimestamp(now)}] [${deploymentId}]`;
      let lines = '';
      for (const message of messages) lines += `${prefix}${message.trim()}\n`;
      writes.push(this.deployments.append(redactKnownSecrets(lines)));
    }
    await Promise.all(writes);
  }

  async close(): Promise<void> {
    await Promise.all([this.scripts.close(), this.deployments?.close()]);
  }
}
