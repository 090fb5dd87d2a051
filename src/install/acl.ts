/**
 * The full ACL handed to `setfacl --set` (as AWS's agent builds it): the appspec lists only named and mask
 * entries, `--set` replaces the whole ACL, so the base entries are filled in from the file's mode at
 * the moment it is applied. Built fresh for every file: AWS's agent kept the added entries between
 * files and sent duplicates from the second file on.
 */
export function completeAcl(acl: readonly string[], mode: number): string[] {
  const entries = acl.map(parseCanonicalAce);
  const userBits = bits((mode >> 6) & 7);
  const groupBits = bits((mode >> 3) & 7);
  const otherBits = bits(mode & 7);
  const has = (predicate: (entry: Ace) => boolean) => entries.some(predicate);

  const added = [`user::${userBits}`, `group::${groupBits}`, `other::${otherBits}`];
  if (has((e) => !e.isDefault && isNamed(e)) && !has((e) => !e.isDefault && e.type === 'mask')) {
    added.push(`mask::${groupBits}`);
  }
  if (has((e) => e.isDefault)) {
    if (!has((e) => e.isDefault && e.type === 'user' && e.name === '')) added.push(`default:user::${userBits}`);
    const defaultGroup = entries.find((e) => e.isDefault && e.type === 'group' && e.name === '');
    if (!defaultGroup) added.push(`default:group::${groupBits}`);
    if (!has((e) => e.isDefault && e.type === 'other')) added.push(`default:other::${otherBits}`);
    if (has((e) => e.isDefault && isNamed(e)) && !has((e) => e.isDefault && e.type === 'mask')) {
      // The default mask takes the default group entry's permissions, given or just added.
      added.push(`default:mask::${defaultGroup ? defaultGroup.permissions : groupBits}`);
    }
  }
  return [...acl, ...added];
}

/** Directories only: `setfacl` refuses default entries on files. */
export function hasDefaultEntries(acl: readonly string[]): boolean {
  return acl.some((entry) => entry.startsWith('default:'));
}

interface Ace {
  isDefault: boolean;
  type: string;
  name: string;
  permissions: string;
}

/** Entries arrive canonical from the appspec parser: `[default:]<type>:<name>:<rwx>`. */
function parseCanonicalAce(entry: string): Ace {
  const isDefault = entry.startsWith('default:');
  const [type = '', name = '', permissions = ''] = (isDefault ? entry.slice('default:'.length) : entry).split(':');
  return { isDefault, type, name, permissions };
}

function isNamed(entry: Ace): boolean {
  return (entry.type === 'user' || entry.type === 'group') && entry.name !== '';
}

function bits(digit: number): string {
  return `${digit & 4 ? 'r' : '-'}${digit & 2 ? 'w' : '-'}${digit & 1 ? 'x' : '-'}`;
}
