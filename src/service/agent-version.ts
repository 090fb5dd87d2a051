import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isSea } from 'node:sea';
import { versionFile } from '../deployment/layout.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';

/** Where the anchor's packages put `.version` when ROOT/.. has none. */
export const FALLBACK_VERSION_FILE = '/opt/codedeploy-agent/.version';
export const UNKNOWN_VERSION = 'UNKNOWN_VERSION';

/** `agent_version: OFFICIAL_1.7.0-92_rpm` → `OFFICIAL_1.7.0-92_rpm` (the text after the last `": "`, stripped). */
export function parseVersionFile(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  const at = line.lastIndexOf(': ');
  return (at >= 0 ? line.slice(at + 2) : line).trim();
}

/**
 * `.version` of the installation the running program belongs to: `<prefix>/.version` for
 * `<prefix>/bin/codedeploy-agent` (the single executable, or bin/codedeploy-agent.mjs of a source build),
 * links resolved. Undefined when the program's path cannot be told.
 */
export function programVersionFile(): string | undefined {
  const program = isSea() ? process.execPath : process.argv[1];
  if (!program) return undefined;
  try {
    return join(dirname(dirname(realpathSync(program))), '.version');
  } catch {
    return undefined;
  }
}

/**
 * The value of the `x-amz-codedeploy-agent-version` header (docs/packaging.md): read once from
 * `<root_dir>/../.version` (where AWS's agent reads it), else the running program's own installation's
 * (an agent installed with --prefix and a root_dir elsewhere), else `/opt/codedeploy-agent/.version`, else
 * `UNKNOWN_VERSION` with a warning.
 */
export function readAgentVersion(rootDir: string, logger: Logger = silentLogger, fallbackFile = FALLBACK_VERSION_FILE, programFile = programVersionFile()): string {
  const candidates = [versionFile(rootDir), ...(programFile ? [programFile] : []), fallbackFile];
  for (const file of candidates) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const version = parseVersionFile(text);
    if (version) return version;
  }
  logger.warn(`Unable to read the agent version from ${candidates.join(', ')}; sending ${UNKNOWN_VERSION}`);
  return UNKNOWN_VERSION;
}
