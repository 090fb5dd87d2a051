import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/**
 * One entry of the host's `passwd` or `group` database, as its raw `name:x:id:...` line, or undefined
 * when there is no such name. Goes through NSS with `getent` (so LDAP or SSSD accounts resolve as they
 * do for `chown` and `su`), falling back to the local file where `getent` is missing.
 */
export async function lookupAccountEntry(database: 'passwd' | 'group', name: string, timeoutMs = 15_000): Promise<string | undefined> {
  if (name === '' || name.length > 256 || name.startsWith('-') || /[:\s\0/]/.test(name)) return undefined;
  const viaGetent = await new Promise<string | undefined | 'unavailable'>((resolve) => {
    execFile('getent', [database, name], { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout) => {
      if (!error) {
        resolve(stdout.split('\n')[0] || undefined);
        return;
      }
      // getent exits 2 when the key is not found; a missing or killed getent says nothing.
      const code = (error as NodeJS.ErrnoException).code;
      resolve(typeof code === 'number' && code === 2 ? undefined : 'unavailable');
    });
  });
  if (viaGetent !== 'unavailable') return viaGetent;
  const table = await readFile(`/etc/${database}`, 'utf8').catch(() => '');
  const byName = table.split('\n').find((entry) => entry.split(':')[0] === name);
  if (byName !== undefined || database !== 'passwd') return byName;
  // getent also answers a numeric uid.
  return table.split('\n').find((entry) => entry.split(':')[2] === name);
}

/**
 * A uid's or gid's name from the local file, for messages that say whose a file is ("www-data (uid 33)");
 * synchronous and without NSS, which is enough to name an account and never worth a process.
 */
export function accountNameSync(database: 'passwd' | 'group', id: number): string | undefined {
  let table: string;
  try {
    table = readFileSync(`/etc/${database}`, 'utf8');
  } catch {
    return undefined;
  }
  const key = String(id);
  for (const entry of table.split('\n')) {
    const fields = entry.split(':');
    if (fields[2] === key && fields[0]) return fields[0];
  }
  return undefined;
}

/** "www-data (uid 33)", or "uid 33" for an id the host does not name. */
export function describeUser(uid: number): string {
  const name = accountNameSync('passwd', uid);
  return name === undefined ? `uid ${uid}` : `${name} (uid ${uid})`;
}
