/** A validated appspec, independent of the YAML it came from. */

export type FileExistsBehavior = 'DISALLOW' | 'OVERWRITE' | 'RETAIN';
export const FILE_EXISTS_BEHAVIORS: readonly FileExistsBehavior[] = ['DISALLOW', 'OVERWRITE', 'RETAIN'];

export interface FileMapping {
  /** Relative to the archive root; `/` means the whole archive. */
  source: string;
  /** Absolute directory path on the host. */
  destination: string;
}

export interface SelinuxContext {
  user?: string;
  type: string;
  /** Canonical range text, e.g. `s0` or `s3-s7:c5,c8.c10`. */
  range?: string;
}

export type PermissionObjectType = 'file' | 'directory';

export interface Permission {
  object: string;
  /** `**` = every descendant; otherwise a `*` glob on direct children. */
  pattern: string;
  except: string[];
  type: PermissionObjectType[];
  owner?: string;
  group?: string;
  /** Mode as an octal number (0o644); `mode: 0644` unquoted means 0644, not 420 as in AWS's agent. */
  mode?: number;
  /** Canonical ACL entries, e.g. `user:bob:rwx`, `default:mask::r-x` (base entries added at apply time). */
  acls?: string[];
  context?: SelinuxContext;
}

export interface HookScript {
  location: string;
  /** Seconds; default 3600. */
  timeout: number;
  runas?: string;
  sudo: boolean;
}

export interface AppSpec {
  version: string;
  os: 'linux' | 'windows';
  files: FileMapping[];
  permissions: Permission[];
  /** Event name → scripts, in file order. Events with no scripts are absent. */
  hooks: Record<string, HookScript[]>;
  fileExistsBehavior?: FileExistsBehavior;
  /** The file it was read from (for messages). */
  path: string;
}

export const DEFAULT_SCRIPT_TIMEOUT_SECONDS = 3600;
export const MAX_EVENT_TIMEOUT_SECONDS = 3600;
