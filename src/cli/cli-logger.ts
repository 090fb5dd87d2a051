import { appendFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentConfig } from '../config/agent-config.js';
import type { Logger } from '../log/logger.js';
import { openLogForAppend } from '../log/log-file-mode.js';
import { formatTextLine } from '../log/line-format.js';
import { redact } from '../log/redact.js';

/**
 * The log of a one-shot command (`deploy` writes `<log_dir>/codedeploy-local.log` as the anchor does).
 * When the log folder is not writable (a developer without root), warnings go to stderr instead of failing.
 */
export async function openCliLogger(config: AgentConfig, fileName: string): Promise<{ logger: Logger; close: () => Promise<void> }> {
  let file: string | undefined = join(config.log_dir, fileName);
  try {
    // 0640 in a 0750 folder, like the daemon's log: it quotes hook failures and their output.
    closeSync(openLogForAppend(file));
  } catch {
    file = undefined;
  }
  const write = (level: string, message: string) => {
    const line = `${formatTextLine(new Date(), level, 'codedeploy-local', process.pid, redact(message))}\n`;
    if (file) {
      try {
        appendFileSync(file, line);
        return;
      } catch {
        file = undefined;
      }
    }
    if (level === 'warn' || level === 'error') process.stderr.write(line);
  };
  const verbose = config.verbose;
  return {
    logger: {
      debug: (m) => { if (verbose) write('debug', m); },
      info: (m) => write('info', m),
      warn: (m) => write('warn', m),
      error: (m) => write('error', m),
    },
    close: async () => {},
  };
}
