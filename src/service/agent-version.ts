import { readFileSync } from 'node:fs';
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
 * The value of the `x-amz-codedeploy-agent-version` header (agent-spec §1.1): read once from
 * `<root_dir>/../.version`, else `/opt/codedeploy-agent/.version`, else `UNKNOWN_VERSION` with a warning.
 */
export function readAgentVersion(rootDir: string, logger: Logger = silentLogger, fallbackFile = FALLBACK_VERSION_FILE): string {
  for (const file of [versionFile(rootDir), fallbackFile]) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const version = parseVersionFile(text);
    if (version) return version;
  }
  logger.warn(`Unable to read the agent version from ${versionFile(rootDir)} or ${fallbackFile}; sending ${UNKNOWN_VERSION}`);
  return UNKNOWN_VERSION;
}
