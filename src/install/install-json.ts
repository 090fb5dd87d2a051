import type { SelinuxContext } from '../appspec/types.js';
import type { InstallOperation } from './types.js';

/**
 * `<group>-install.json`: the instructions of the last Install in AWS's shape,
 * for people and tools reading it; the agent itself never replays it.
 */
export function formatInstallJson(operations: readonly InstallOperation[]): string {
  return JSON.stringify({ instructions: operations.map(toInstruction) });
}

function toInstruction(operation: InstallOperation): Record<string, unknown> {
  switch (operation.type) {
    case 'copy':
      return { type: 'copy', source: operation.source, destination: operation.destination };
    case 'mkdir':
      return { type: 'mkdir', directory: operation.directory };
    case 'chmod':
      return { type: 'chmod', mode: formatMode(operation.mode), file: operation.file };
    case 'setfacl':
      return { type: 'setfacl', acl: operation.acl, file: operation.file };
    case 'semanage': {
      const { user, type, range } = operation.context;
      // A context without range is valid; AWS's agent crashed serialising it.
      return { type: 'semanage', context: { user: user ?? null, role: null, type, range: range ?? null }, file: operation.file };
    }
    case 'chown':
      return { type: 'chown', owner: operation.owner ?? null, group: operation.group ?? null, file: operation.file };
  }
}

/** The appspec's digits: at least three, four with setuid/setgid/sticky (`644`, `4755`). */
export function formatMode(mode: number): string {
  return mode.toString(8).padStart(3, '0');
}

/**
 * The SELinux contexts a previous install.json set, by file: what to put back if Install fails after
 * removing the previous deployment's rules.
 */
export function contextsFromInstallJson(content: string | undefined): Map<string, SelinuxContext> {
  const contexts = new Map<string, SelinuxContext>();
  if (!content) return contexts;
  let parsed: unknown;
  try {
    parsed = JSON.parse(content);
  } catch {
    return contexts;
  }
  const instructions = (parsed as { instructions?: unknown })?.instructions;
  if (!Array.isArray(instructions)) return contexts;
  for (const item of instructions as Record<string, unknown>[]) {
    const context = item?.context as Record<string, unknown> | undefined;
    if (item?.type !== 'semanage' || typeof item.file !== 'string' || typeof context?.type !== 'string') continue;
    const restored: SelinuxContext = { type: context.type };
    if (typeof context.user === 'string') restored.user = context.user;
    if (typeof context.range === 'string') restored.range = context.range;
    contexts.set(item.file, restored);
  }
  return contexts;
}
