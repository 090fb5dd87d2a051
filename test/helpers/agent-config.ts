import { writeFileSync } from 'node:fs';

export type ConfigValue = string | number | boolean;

/** Writes an agent configuration file in the shipped file's `:key: value` form; returns its path. */
export function writeAgentConfig(file: string, values: Record<string, ConfigValue>): string {
  writeFileSync(file, `${Object.entries(values).map(([key, value]) => `:${key}: ${value}`).join('\n')}\n`);
  return file;
}
