import type { OriginalAttributes } from '../archive/original-attributes.js';
import type { InstallOperation, InstallPlan } from './types.js';

/**
 * What a deployment installs that gives its owner's rights to whoever runs it (setuid, setgid) or that
 * anyone on the host can change (world-writable; a sticky folder excepted): allowed, as with AWS's agent,
 * but said in the log and on the terminal, since a bundle rarely means it. From the final modes: the
 * appspec's chmod, else the bundle's own (`originals`, by absolute source path), else the source's.
 * Returns the warning, or undefined.
 */
export function riskyModesWarning(plan: Pick<InstallPlan, 'operations'>, originals: ReadonlyMap<string, OriginalAttributes> | undefined): string | undefined {
  const modes = new Map<string, number>();
  for (const op of plan.operations) if (op.type === 'chmod') modes.set(op.file, op.mode);
  const privileged: string[] = [];
  const writable: string[] = [];
  const note = (path: string, mode: number, folder: boolean) => {
    const shown = `${path} (${(mode & 0o7777).toString(8).padStart(4, '0')})`;
    if (!folder && mode & 0o6000) privileged.push(shown);
    if (mode & 0o002 && !(folder && mode & 0o1000)) writable.push(shown);
  };
  // Without chmod or recorded modes only the few sources with stats can say anything: no lookups per file.
  const lookups = modes.size > 0 || (originals?.size ?? 0) > 0;
  for (const op of plan.operations as InstallOperation[]) {
    if (op.type === 'copy' && op.entry.type === 'file') {
      const mode = (lookups ? (modes.get(op.destination) ?? originals?.get(op.entry.absolutePath)?.mode) : undefined) ?? op.entry.stats?.mode;
      if (mode !== undefined) note(op.destination, mode, false);
    } else if (op.type === 'mkdir') {
      const mode = modes.get(op.directory);
      if (mode !== undefined) note(op.directory, mode, true);
    }
  }
  if (privileged.length === 0 && writable.length === 0) return undefined;
  const parts: string[] = [];
  if (privileged.length > 0) parts.push(`${privileged.length} setuid or setgid file(s): ${list(privileged)}`);
  if (writable.length > 0) parts.push(`${writable.length} world-writable file(s) or folder(s): ${list(writable)}`);
  return `Install: this deployment installs ${parts.join('; and ')}. A setuid or setgid file runs with its owner's or group's rights for whoever starts it, and anyone on the host can change a world-writable one: check that the bundle and the appspec's permissions mean it.`;
}

function list(paths: readonly string[]): string {
  const shown = paths.slice(0, 5).join(', ');
  return paths.length > 5 ? `${shown} and ${paths.length - 5} more` : shown;
}
