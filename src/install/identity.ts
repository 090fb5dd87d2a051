import { InstallError } from '../report/errors.js';
import type { Requirement } from './types.js';
import { lookupAccountEntry } from '../util/host-accounts.js';

export interface Identities {
  uids: ReadonlyMap<string, number>;
  gids: ReadonlyMap<string, number>;
}

/**
 * Resolve every owner and group the plan sets, before anything is written: AWS's agent looked them up
 * only when it reached the chown, after copying the files (then failing with a Ruby ArgumentError).
 * `getent` goes through NSS, so LDAP or SSSD accounts resolve as they do for `chown`.
 */
export async function resolveIdentities(users: readonly Requirement[], groups: readonly Requirement[]): Promise<Identities> {
  return { uids: await resolveAll('passwd', users), gids: await resolveAll('group', groups) };
}

async function resolveAll(database: 'passwd' | 'group', requirements: readonly Requirement[]): Promise<Map<string, number>> {
  const [role, kind] = database === 'passwd' ? ['owner', 'user'] : ['group', 'group'];
  const ids = new Map<string, number>();
  for (const { name, object } of requirements) {
    const id = await lookup(database, name);
    if (id === undefined) {
      throw new InstallError(
        `The deployment failed because the permissions section of the AppSpec file sets the ${role} of ${object} to ${name}, but there is no ${kind} named ${name} on this host. Create the ${kind} (for example in a BeforeInstall hook) or correct the ${role}, and then try again.`,
      );
    }
    ids.set(name, id);
  }
  return ids;
}

/** The numeric id (third field) of a passwd or group entry, or undefined when there is none. */
async function lookup(database: 'passwd' | 'group', name: string): Promise<number | undefined> {
  const entry = await lookupAccountEntry(database, name, 30_000);
  return entry === undefined ? undefined : idFromEntry(entry);
}

function idFromEntry(entry: string): number | undefined {
  const id = Number(entry.split(':')[2]);
  return Number.isInteger(id) && id >= 0 ? id : undefined;
}
