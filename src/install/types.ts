import type { FileMapping, SelinuxContext } from '../appspec/types.js';
import type { CleanupEntry } from './cleanup-file.js';

/** What `lstat` (or `stat`, through a link) says a path is. */
export type EntryType = 'file' | 'directory' | 'symlink' | 'other';

/** One file, directory or link of the revision, as the scan saw it (never through a link). */
export interface SourceEntry {
  /** Relative to the mapping's source, `/`-separated; `''` for the source itself. */
  relativePath: string;
  absolutePath: string;
  type: EntryType;
  /**
   * What lstat says, for the mapping's source itself and for links. A file below a source folder has
   * none: its copy takes mode, times and owner from the file as it copies it, which saves the agent's
   * thread a system call per file (many-files benchmark).
   */
  stats?: EntryStats;
  /** Raw target of a symbolic link, recreated as is. */
  linkTarget?: string;
}

export interface EntryStats {
  /** Full `st_mode`, so setuid/setgid/sticky bits are kept. */
  mode: number;
  uid: number;
  gid: number;
  atimeMs: number;
  mtimeMs: number;
}

/** One `files` entry of the appspec and what its source holds. */
export interface SourceScan {
  mapping: FileMapping;
  /** Absolute path of the source inside the archive. */
  sourcePath: string;
  /** Why the source cannot be installed; `entries` is empty then. */
  problem?: 'missing' | 'outside';
  /** Pre-order (a directory before its children), children in file-system order as the anchor lists them. */
  entries: SourceEntry[];
}

export interface PathState {
  /** What `lstat` sees. */
  type: EntryType;
  /** What `stat` sees through links; undefined for a dangling link. */
  resolved?: EntryType;
}

/** Everything the plan needs to know about the disk, gathered before anything is written. */
export interface InstallScan {
  /** Relative appspec paths resolve against it, as Ruby's `File.expand_path` does. */
  cwd: string;
  sources: SourceScan[];
  /** Existing paths the plan may ask about (before the previous deployment is removed); any other path does not exist. */
  destination: ReadonlyMap<string, PathState>;
  /** The previous deployment's `<group>-cleanup` entries, in file order. */
  cleanupEntries: CleanupEntry[];
  /** For each directory listed in the cleanup file: its children's absolute paths. */
  cleanupChildren: ReadonlyMap<string, readonly string[]>;
}

/** Removing the previous deployment's files (agent-spec §5.5), in execution order. */
export type RemovalOperation =
  | { type: 'remove'; path: string; entryType: EntryType }
  | { type: 'semanage-delete'; path: string };

export type InstallOperation =
  | { type: 'mkdir'; directory: string }
  | {
      type: 'copy';
      source: string;
      destination: string;
      entry: SourceEntry;
      /** A file is already there (OVERWRITE): it is moved aside first and restored if Install fails. */
      replaces: boolean;
    }
  | { type: 'chmod'; file: string; mode: number }
  | { type: 'setfacl'; file: string; acl: string[] }
  | { type: 'semanage'; file: string; context: SelinuxContext }
  /** `link`: the object is a symbolic link from the bundle; its own owner changes, never its target's. */
  | { type: 'chown'; file: string; owner?: string; group?: string; link: boolean };

export type ToolName = 'setfacl' | 'semanage' | 'restorecon';

/** Something the host must provide; `object` names the first path that needs it, for the message. */
export interface Requirement<Name extends string = string> {
  name: Name;
  object: string;
}

export interface InstallPlan {
  fileExistsBehavior: string;
  removals: RemovalOperation[];
  /** In the anchor's order: mkdir and copy as the files section walks, then per object chmod, setfacl, semanage, chown. */
  operations: InstallOperation[];
  /** Files of the revision not installed because one is already there and file_exists_behavior is RETAIN. */
  kept: string[];
  users: Requirement[];
  groups: Requirement[];
  tools: Requirement<ToolName>[];
}
