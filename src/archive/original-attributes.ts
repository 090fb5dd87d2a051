import { withoutSharedWrite } from '../util/file-jobs/inode-attributes.js';

/**
 * Hook scripts run as root from the unpacked revision (deployment-archive), so that copy is root's:
 * every file and folder belongs to the agent, and none keeps setuid, setgid, or group or other write,
 * whatever owners and modes the bundle carried. A user whose uid a tarball carried could otherwise edit
 * the scripts root runs next, this deployment or (ApplicationStop) the next one.
 *
 * The files installed at the destinations keep what the bundle said, as with AWS's agent. What the
 * archive copy changed is recorded here, by archive-relative path, and Install gives it back to the
 * copies it makes. Only files and links are recorded: Install creates folders as mkdir(1) does and never
 * copies a folder's own mode or owner.
 */

export interface OriginalAttributes {
  /** The bundle's permission bits, setuid/setgid/sticky included. */
  mode: number;
  /** The owner it would have had (restored from a tar as root, as `tar -p` does); absent: the agent's. */
  uid?: number;
  gid?: number;
}

/** Archive-relative path ('/'-separated) → what the bundle said. */
export type OriginalAttributesMap = Map<string, OriginalAttributes>;

/** The mode a bundle's file or folder gets in deployment-archive. */
export const archiveMode = withoutSharedWrite;

/** Who the archive copy belongs to: the agent, which made it. */
export interface AgentIds {
  uid: number;
  gid: number;
}

export function agentIds(): AgentIds {
  return { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 };
}

/**
 * Records what the bundle said of `path` when the archive copy differs from it. `uid`/`gid` undefined:
 * the bundle keeps no owner (a zip), and the copy is the agent's as it would have been.
 */
export function recordOriginal(
  originals: OriginalAttributesMap,
  path: string,
  mode: number,
  uid: number | undefined,
  gid: number | undefined,
  agent: AgentIds,
): void {
  const ownUid = uid === undefined || uid === agent.uid;
  const ownGid = gid === undefined || gid === agent.gid;
  if (ownUid && ownGid && archiveMode(mode) === (mode & 0o7777)) {
    originals.delete(path);
    return;
  }
  const original: OriginalAttributes = { mode: mode & 0o7777 };
  if (!ownUid) original.uid = uid;
  if (!ownGid) original.gid = gid;
  originals.set(path, original);
}

/** The same records once the content of the top folder `top` has moved up one level (./strip-top-directory.ts). */
export function afterStrippingTop(originals: ReadonlyMap<string, OriginalAttributes>, top: string): OriginalAttributesMap {
  const prefix = `${top}/`;
  const moved: OriginalAttributesMap = new Map();
  for (const [path, original] of originals) if (path.startsWith(prefix)) moved.set(path.slice(prefix.length), original);
  return moved;
}

const FORMAT_VERSION = 1;

/**
 * The records as the file beside deployment-archive holds them: one JSON document, entries as
 * `[path, mode, uid|null, gid|null]` (20,000 entries parse in about 10 ms).
 */
export function formatOriginalAttributes(originals: ReadonlyMap<string, OriginalAttributes>): string {
  const entries = [...originals].map(([path, { mode, uid, gid }]) => [path, mode, uid ?? null, gid ?? null]);
  return `${JSON.stringify({ version: FORMAT_VERSION, entries })}\n`;
}

export function parseOriginalAttributes(text: string): OriginalAttributesMap {
  const document = JSON.parse(text) as { version?: unknown; entries?: unknown };
  if (document.version !== FORMAT_VERSION || !Array.isArray(document.entries)) throw new Error(`unknown format (version ${String(document.version)})`);
  const originals: OriginalAttributesMap = new Map();
  for (const entry of document.entries as unknown[]) {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !isId(entry[1])) throw new Error(`malformed entry ${JSON.stringify(entry)}`);
    const [path, mode, uid, gid] = entry as [string, number, unknown, unknown];
    const original: OriginalAttributes = { mode: mode & 0o7777 };
    if (isId(uid)) original.uid = uid;
    if (isId(gid)) original.gid = gid;
    originals.set(path, original);
  }
  return originals;
}

function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 2 ** 32 - 2;
}
