import { readFileSync } from 'node:fs';
import type { EntryOwner } from './archive-entry.js';

/**
 * Maps the owner recorded in an archive to ids on this host the way GNU tar does as root: a user or
 * group name that exists here wins, otherwise the numeric id from the archive is used as is. Node
 * has no getpwnam, so the names come from /etc/passwd and /etc/group (directory services such as
 * LDAP are not consulted; their users fall back to the archive's numeric ids).
 */
export class OwnerLookup {
  #users: Map<string, number> | undefined;
  #groups: Map<string, number> | undefined;
  readonly #passwdFile: string;
  readonly #groupFile: string;

  constructor(passwdFile = '/etc/passwd', groupFile = '/etc/group') {
    this.#passwdFile = passwdFile;
    this.#groupFile = groupFile;
  }

  /** The ids to give an entry, or undefined for a part the archive does not record. */
  resolve(owner: EntryOwner): { uid?: number; gid?: number } {
    this.#users ??= readIdFile(this.#passwdFile);
    this.#groups ??= readIdFile(this.#groupFile);
    const uid = (owner.uname ? this.#users.get(owner.uname) : undefined) ?? owner.uid;
    const gid = (owner.gname ? this.#groups.get(owner.gname) : undefined) ?? owner.gid;
    return { uid: validId(uid), gid: validId(gid) };
  }
}

/** The largest id chown(2) can give: (uid_t)-1 means "leave unchanged". */
const MAX_ID = 2 ** 32 - 2;

/**
 * An id chown can set, else undefined (the entry keeps the agent's own): a damaged or hostile header
 * can carry any base-256 number, and chown throws a RangeError beyond 32 bits.
 */
function validId(id: number | undefined): number | undefined {
  return id !== undefined && Number.isInteger(id) && id >= 0 && id <= MAX_ID ? id : undefined;
}

/** name → id from a passwd(5) or group(5) file; both keep the id in the third field. */
export function parseIdFile(text: string): Map<string, number> {
  const ids = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    const id = Number(fields[2]);
    if (fields[0] && fields[2] !== '' && Number.isInteger(id) && !ids.has(fields[0])) ids.set(fields[0], id);
  }
  return ids;
}

function readIdFile(path: string): Map<string, number> {
  try {
    return parseIdFile(readFileSync(path, 'utf8'));
  } catch {
    return new Map();
  }
}
