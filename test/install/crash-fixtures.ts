/**
 * Two revisions of about 20,000 files each for the crash-consistency tests, and an exact description
 * of a tree (bytes, modes, owners, links, file times) to compare what a destination holds with.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type Version = 'v1' | 'v2';

/** Files per folder of `app/dNN/eNN/` (400 folders). */
function perFolder(files: number): number {
  return Math.max(1, Math.round(files / 400));
}

/** What a revision holds besides the bulk: counted so the tests can aim at its phases. */
export interface RevisionCounts {
  files: number;
  directories: number;
  /**
   * Objects of the permissions section (v2: the files below d00, the folders below d01, v2-only's files).
   * Files get theirs as they are created; the folders' are Install's changes after the copies.
   */
  permissionObjects: number;
  /** Folders whose permissions Install sets after the copies: changes a kill can come between. */
  folderPermissions: number;
}

/**
 * A bundle folder: `app/` (installed to `destination`), `scripts/stop.sh` (ApplicationStop: when
 * CRASH_PROBE names a file it writes there and fails, which ends a probing deployment before it
 * changes anything) and `appspec.yml`. v1 and v2 share most paths with different contents; each has
 * folders of its own; v2 replaces `local.conf`, which is not v1's (OVERWRITE), and sets permissions on a
 * thousand files and twenty folders. Modes, owners (as root) and links vary.
 */
export function writeRevision(bundleDir: string, version: Version, destination: string, files: number): RevisionCounts {
  const app = join(bundleDir, 'app');
  let fileCount = 0;
  let directoryCount = 0;
  const mkdir = (path: string) => {
    mkdirSync(path, { recursive: true });
    directoryCount++;
  };
  const asRoot = process.getuid?.() === 0;
  const per = perFolder(files);
  const time = version === 'v1' ? 1_600_000_000 : 1_700_000_000;
  for (let a = 0; a < 20; a++) {
    mkdir(join(app, `d${pad(a)}`));
    for (let b = 0; b < 20; b++) {
      const folder = join(app, `d${pad(a)}`, `e${pad(b)}`);
      mkdir(folder);
      for (let c = 0; c < per; c++) {
        const n = (a * 20 + b) * per + c;
        const path = join(folder, `f${String(c).padStart(3, '0')}.txt`);
        writeFileSync(path, `${version} ${a}/${b}/${c}\n${'x'.repeat((n * 37) % 700)}`);
        if (n % 7 === 0) chmodSync(path, 0o600);
        else if (n % 11 === 0) chmodSync(path, 0o755);
        if (asRoot && n % 13 === 0) chownSync(path, 1234, 2345);
        utimesSync(path, time, time + n);
        fileCount++;
      }
    }
  }
  const own = join(app, `${version}-only`);
  mkdir(own);
  for (let c = 0; c < 20; c++) {
    writeFileSync(join(own, `x${c}.txt`), `only in ${version} ${c}\n`);
    fileCount++;
  }
  mkdir(join(app, `empty-${version}`));
  mkdir(join(app, 'links'));
  symlinkSync('../d00/e00/f000.txt', join(app, 'links', 'relative'));
  symlinkSync(`nowhere-${version}`, join(app, 'links', 'dangling'));
  symlinkSync('../../outside', join(app, 'links', 'upward'));
  fileCount += 3;
  if (asRoot) lchownSync(join(app, 'links', 'relative'), 1234, 2345);
  writeFileSync(join(app, 'setuid-tool'), `#!/bin/sh\necho ${version}\n`);
  chmodSync(join(app, 'setuid-tool'), 0o4750);
  fileCount++;
  chmodSync(join(app, 'd01'), 0o2775);
  if (asRoot) chownSync(join(app, 'd02'), 1234, 1234);
  if (version === 'v2') {
    writeFileSync(join(app, 'local.conf'), 'settings of v2\n');
    fileCount++;
  }

  mkdirSync(join(bundleDir, 'scripts'), { recursive: true });
  writeFileSync(join(bundleDir, 'scripts', 'stop.sh'), `#!/bin/sh\nif [ -n "$CRASH_PROBE" ]; then echo "ApplicationStop ${version}" > "$CRASH_PROBE"; exit 1; fi\n`);
  chmodSync(join(bundleDir, 'scripts', 'stop.sh'), 0o755);
  const permissions = version === 'v2'
    ? `permissions:\n  - object: ${destination}/d00\n    pattern: "**"\n    mode: 640\n    type:\n      - file\n  - object: ${destination}/d01\n    pattern: "**"\n    mode: 750\n    type:\n      - directory\n  - object: ${destination}/v2-only\n    owner: root\n    group: root\n`
    : '';
  writeFileSync(
    join(bundleDir, 'appspec.yml'),
    `version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: ${destination}\n${version === 'v2' ? 'file_exists_behavior: OVERWRITE\n' : ''}${permissions}` +
      'hooks:\n  ApplicationStop:\n    - location: scripts/stop.sh\n      timeout: 60\n',
  );
  return { files: fileCount, directories: directoryCount, permissionObjects: version === 'v2' ? 20 * per + 20 + 20 : 0, folderPermissions: version === 'v2' ? 20 : 0 };
}

/** A file in the destination that no revision installed, which v2 replaces (OVERWRITE): a rollback puts it back. */
export function writeOutsiderFile(destination: string): void {
  const path = join(destination, 'local.conf');
  writeFileSync(path, 'settings the operator wrote by hand\n');
  chmodSync(path, 0o640);
  utimesSync(path, 1_500_000_000, 1_500_000_000);
}

export function makeTgz(bundleDir: string, file: string): string {
  execFileSync('tar', ['-czf', file, '-C', bundleDir, '.']);
  return file;
}

/**
 * Every entry below `root`, sorted: path, type, mode, owner, and for files their size, modification
 * time and content hash, for links their target and time. Directory times are left out: moving entries
 * in and out of a folder changes its time, and that is not part of a revision.
 */
export function manifest(root: string): string[] {
  const lines: string[] = [];
  const visit = (path: string, relative: string) => {
    const stats = lstatSync(path);
    const base = `${relative || '.'} ${(stats.mode & 0o7777).toString(8)} ${stats.uid}:${stats.gid}`;
    if (stats.isSymbolicLink()) {
      lines.push(`${base} link ${Math.round(stats.mtimeMs)} -> ${readlinkSync(path)}`);
    } else if (stats.isDirectory()) {
      lines.push(`${base} dir`);
      for (const name of readdirSync(path)) visit(join(path, name), relative ? `${relative}/${name}` : name);
    } else {
      const hash = createHash('sha1').update(readFileSync(path)).digest('hex');
      lines.push(`${base} file ${stats.size} ${Math.round(stats.mtimeMs)} ${hash}`);
    }
  };
  visit(root, '');
  return lines.sort();
}

/** The first differences between two manifests, for a failure message. */
export function manifestDifference(actual: readonly string[], expected: readonly string[], limit = 10): string {
  const want = new Set(expected);
  const have = new Set(actual);
  const extra = actual.filter((line) => !want.has(line)).slice(0, limit);
  const missing = expected.filter((line) => !have.has(line)).slice(0, limit);
  return `${actual.length} entries (expected ${expected.length}); unexpected:\n  ${extra.join('\n  ')}\nmissing:\n  ${missing.join('\n  ')}`;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
