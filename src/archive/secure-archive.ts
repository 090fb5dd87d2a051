import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { ArchiveError } from '../report/errors.js';
import { descriptorPath, O_PATH } from '../util/descriptor-path.js';
import { copyIntoNewFileSync } from '../util/file-jobs/destination.js';
import { refuseSymlinkOutside } from './entry-safety.js';
import { agentIds, archiveMode, recordOriginal, type OriginalAttributesMap } from './original-attributes.js';

/**
 * Makes an unpacked revision that an earlier agent (an older version, or AWS's agent) left with the
 * owners and modes of its bundle root's, before root runs any of its scripts: the retained revision whose
 * ApplicationStop runs next, typically. What it finds is what ./original-attributes.ts would have
 * recorded at unpacking, and it is returned so: Install gives it back to the installed copies.
 *
 * The tree is walked by descriptor, each folder made the agent's and not writable by others before its
 * entries are looked at, so that once a folder is seen nobody else can change what is in it. A file that
 * someone else could have opened for writing (not the agent's, or group- or world-writable) is replaced by
 * a new inode with the same content: a descriptor opened before, or a writable mapping, would still write
 * into the old one. Links must still stay inside the archive (./entry-safety.ts), and a FIFO, socket or
 * device, which no unpacked bundle holds, means the folder was changed since: both refuse it.
 *
 * What a script already says is not checked: a user who could write it before this ran may have changed
 * it (ApplicationStop runs the old revision as it is, as with AWS's agent); from now on nobody else can.
 */
export interface SecuredArchive {
  originals: OriginalAttributesMap;
  /** Archive-relative paths whose owner or mode had to change ('' is the folder itself). */
  changed: string[];
}

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const FOLDER = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
const FILE = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;

export function secureUnpackedRevision(archiveDir: string): SecuredArchive {
  const agent = agentIds();
  const secured: SecuredArchive = { originals: new Map(), changed: [] };
  const links = new Map<string, string>();

  const secureFolder = (fd: number, relative: string): void => {
    const stats = fs.fstatSync(fd);
    const mode = archiveMode(stats.mode);
    if (stats.uid !== agent.uid || stats.gid !== agent.gid || mode !== (stats.mode & 0o7777)) {
      fs.fchownSync(fd, agent.uid, agent.gid);
      fs.fchmodSync(fd, mode);
      secured.changed.push(relative);
    }
    for (const entry of fs.readdirSync(descriptorPath(fd), { withFileTypes: true })) {
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
      const name = descriptorPath(fd, entry.name);
      if (entry.isDirectory()) {
        const child = fs.openSync(name, FOLDER);
        try {
          secureFolder(child, path);
        } finally {
          fs.closeSync(child);
        }
      } else if (entry.isSymbolicLink()) {
        secureLink(fd, entry.name, path);
      } else if (entry.isFile()) {
        secureFile(fd, entry.name, path);
      } else {
        throw changedSince(archiveDir, `'${path}' is a FIFO, socket or device, which no unpacked bundle holds`);
      }
    }
  };

  const secureLink = (folder: number, name: string, path: string): void => {
    const link = fs.openSync(descriptorPath(folder, name), O_PATH | O_NOFOLLOW);
    try {
      const stats = fs.fstatSync(link);
      links.set(path, fs.readlinkSync(descriptorPath(folder, name)));
      if (stats.uid === agent.uid && stats.gid === agent.gid) return;
      recordOriginal(secured.originals, path, archiveMode(0o777), stats.uid, stats.gid, agent);
      // The descriptor path leads to the link itself, never to its target.
      fs.chownSync(descriptorPath(link), agent.uid, agent.gid);
      secured.changed.push(path);
    } finally {
      fs.closeSync(link);
    }
  };

  const secureFile = (folder: number, name: string, path: string): void => {
    const file = fs.openSync(descriptorPath(folder, name), FILE);
    try {
      const stats = fs.fstatSync(file);
      if (!stats.isFile()) throw changedSince(archiveDir, `'${path}' was replaced while it was being checked`);
      const mode = archiveMode(stats.mode);
      if (stats.uid === agent.uid && stats.gid === agent.gid && mode === (stats.mode & 0o7777)) return;
      recordOriginal(secured.originals, path, stats.mode, stats.uid, stats.gid, agent);
      secured.changed.push(path);
      if (stats.uid === agent.uid && (stats.mode & 0o022) === 0) {
        // Nobody else could write it: owner and mode in place (chown first: it clears setuid and setgid).
        fs.fchownSync(file, agent.uid, agent.gid);
        fs.fchmodSync(file, mode);
        return;
      }
      const temporary = `.${name}.${randomBytes(6).toString('hex')}.secure`;
      const copy = copyIntoNewFileSync(file, descriptorPath(folder, temporary), { mode, atime: stats.atimeMs / 1000, mtime: stats.mtimeMs / 1000 });
      fs.closeSync(copy);
      fs.renameSync(descriptorPath(folder, temporary), descriptorPath(folder, name));
    } finally {
      fs.closeSync(file);
    }
  };

  const root = fs.openSync(archiveDir, FOLDER);
  try {
    secureFolder(root, '');
  } finally {
    fs.closeSync(root);
  }
  for (const [path, target] of links) {
    try {
      refuseSymlinkOutside(path, path, target, links);
    } catch (error) {
      throw changedSince(archiveDir, (error as Error).message.replace(/^Refused to unpack bundle entry /, 'the entry '));
    }
  }
  return secured;
}

function changedSince(archiveDir: string, reason: string): ArchiveError {
  return new ArchiveError(
    `${archiveDir} was changed after its bundle was unpacked: ${reason}. Its scripts are not run as root. Remove that revision's folder (or deploy with ignoreApplicationStopFailures), and then try again.`,
  );
}
