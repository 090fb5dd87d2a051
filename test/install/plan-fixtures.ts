import type { AppSpec, FileMapping, Permission } from '../../src/appspec/types.js';
import type { CleanupEntry } from '../../src/install/cleanup-file.js';
import type { EntryType, InstallScan, PathState, SourceEntry, SourceScan } from '../../src/install/types.js';

export const ARCHIVE = '/archive';

/** A source tree written as `{ 'relative/path': type }`; `''` is the source itself, directories before their children. */
export function source(mapping: FileMapping, tree: Record<string, EntryType | { link: string }>, problem?: SourceScan['problem']): SourceScan {
  const sourcePath = `${ARCHIVE}${mapping.source === '/' ? '' : `/${mapping.source.replace(/^\/+/, '')}`}`;
  const entries: SourceEntry[] = Object.entries(tree).map(([relativePath, kind]) => ({
    relativePath,
    absolutePath: relativePath === '' ? sourcePath : `${sourcePath}/${relativePath}`,
    type: typeof kind === 'string' ? kind : 'symlink',
    linkTarget: typeof kind === 'string' ? undefined : kind.link,
    stats: { mode: typeof kind === 'string' && kind === 'directory' ? 0o40755 : 0o100644, uid: 0, gid: 0, atimeMs: 0, mtimeMs: 0 },
  }));
  return { mapping, sourcePath, entries: problem ? [] : entries, problem };
}

/** Existing destination paths: `'directory'`, `'file'`, or a link `{ link: resolvedType | undefined }`. */
export function scan(
  sources: SourceScan[],
  existing: Record<string, EntryType | { link: EntryType | undefined }> = {},
  cleanup: { entries?: CleanupEntry[]; children?: Record<string, string[]> } = {},
): InstallScan {
  const destination = new Map<string, PathState>(
    Object.entries(existing).map(([path, kind]) => [
      path,
      typeof kind === 'string' ? { type: kind, resolved: kind } : { type: 'symlink', resolved: kind.link },
    ]),
  );
  if (!destination.has('/')) destination.set('/', { type: 'directory', resolved: 'directory' });
  return {
    cwd: '/cwd',
    sources,
    destination,
    cleanupEntries: cleanup.entries ?? [],
    cleanupChildren: new Map(Object.entries(cleanup.children ?? {})),
  };
}

export function appspec(files: FileMapping[], permissions: Partial<Permission>[] = [], fileExistsBehavior?: AppSpec['fileExistsBehavior']) {
  return {
    files,
    permissions: permissions.map(
      (p) =>
        ({
          object: '/',
          pattern: '**',
          except: [],
          type: ['file', 'directory'],
          ...Object.fromEntries(Object.entries(p).filter(([, value]) => value !== undefined)),
        }) as Permission,
    ),
    fileExistsBehavior,
  };
}
