import { isScalar, type Node } from 'yaml';
import type { AppSpecReader, MapEntry } from './reader.js';
import { FILE_EXISTS_BEHAVIORS, type FileExistsBehavior } from './types.js';

export type Platform = 'linux' | 'windows';

/** The scalar settings at the top of an appspec: version, os and file_exists_behavior. */

/**
 * `0.0`. AWS's agent compares the YAML value with the float 0.0, so `0` and `0.0` pass and the quoted
 * text "0.0" fails; here "0.0" passes as well.
 */
export function parseVersion(reader: AppSpecReader, entry: MapEntry | undefined, root: Node): string | undefined {
  const message = (written: string) =>
    `The deployment failed because an invalid version value (${written}) was entered in the application specification file. Make sure your AppSpec file specifies "0.0" as the version, and then try again.`;
  if (entry?.value === undefined) {
    reader.error(entry?.at ?? root, message(''), 'add "version: 0.0" at the top of the file');
    return undefined;
  }
  const written = writtenValue(reader, entry.value);
  const value = isScalar(entry.value) ? entry.value.value : undefined;
  if (value === 0 || (typeof value === 'string' && /^0(\.0+)?$/.test(value.trim()))) return '0.0';
  reader.error(entry.at, message(written), 'write version: 0.0, the only version there is');
  return undefined;
}

export function parseOs(reader: AppSpecReader, entry: MapEntry | undefined, root: Node, platform: Platform): { os?: Platform; written?: string } {
  const message = (written: string) =>
    `The deployment failed because the application specification file specifies an unsupported operating system (${written}). Specify either "linux" or "windows" in the os section of the AppSpec file, and then try again.`;
  if (entry?.value === undefined) {
    reader.error(entry?.at ?? root, message(''), `add "os: ${platform}" at the top of the file`);
    return {};
  }
  const written = writtenValue(reader, entry.value);
  if (written === platform) return { os: platform, written };
  const other: Platform = platform === 'linux' ? 'windows' : 'linux';
  const hint =
    written.toLowerCase() === platform
      ? `os is case-sensitive: write os: ${platform}`
      : written === other
        ? `this agent runs on ${platform === 'linux' ? 'Linux' : 'Windows'}; an appspec for these instances says os: ${platform}`
        : `write os: ${platform}`;
  reader.error(entry.at, message(written), hint);
  return { written };
}

export function parseFileExistsBehavior(reader: AppSpecReader, entry: MapEntry | undefined): FileExistsBehavior | undefined | null {
  if (entry?.value === undefined) return undefined;
  const written = writtenValue(reader, entry.value);
  const behavior = FILE_EXISTS_BEHAVIORS.find((known) => known === written);
  if (behavior) return behavior;
  const capitals = FILE_EXISTS_BEHAVIORS.find((known) => known === written.trim().toUpperCase());
  reader.error(entry.at,
    `The deployment failed because an invalid file_exists_behavior value (${written}) was entered in the application specification file. Make sure your AppSpec file specifies one of ${FILE_EXISTS_BEHAVIORS.join(',')} as the file_exists_behavior, and then try again.`,
    capitals ? `the value is case-sensitive: write ${capitals}` : `write one of ${FILE_EXISTS_BEHAVIORS.join(', ')}`);
  return null;
}

/** A value as AWS's agent would print it in a message: the scalar as written, else Ruby's inspect. */
function writtenValue(reader: AppSpecReader, value: Node): string {
  return isScalar(value) ? reader.text(value) : reader.inspect(value);
}
