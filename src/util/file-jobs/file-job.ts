import type { InodeAttributes } from './inode-attributes.js';

/** One file-system change a FileJobPool makes; jobs of one pool never depend on each other. */
export type FileJob =
  /** Create `to` (which must not exist) holding `data`. */
  | { kind: 'write'; to: string; data: Uint8Array; attributes: InodeAttributes }
  /**
   * Create `to` (which must not exist) as a copy of the regular file `from`, which is never followed
   * if it is a symlink. Without `attributes`: the source's mode and times and, with `preserveOwner`,
   * its owner when it is not the agent's (`cp -a`), or always with `keepOwner` (a setgid folder would
   * give the copy its own group). A failed copy removes what it created.
   */
  | {
      kind: 'copy';
      from: string;
      to: string;
      attributes?: InodeAttributes;
      keepOwner?: boolean;
      /**
       * What replaces the source's mode or owner (Install: the bundle's own owner and mode, and the
       * appspec's permissions), set with the rest through the new file's descriptor.
       */
      override?: AttributeOverride;
      /** Record the new file's device and inode in `created` (Install checks later work is on this very file). */
      identify?: boolean;
      /** Set by the runner when `identify` was asked. */
      created?: InodeIdentity;
      /**
       * Make the copy the agent's, without setuid, setgid, or write for group and others (withoutSharedWrite):
       * the unpacked revision, which hooks run from. `original` then says what `cp -a` would have made.
       */
      sanitize?: boolean;
      /** Set by the runner, with `sanitize`, when the copy differs from what it would otherwise have been. */
      original?: OwnerAndMode;
    }
  /** Create the symlink `to` → `target`; or, with `from`, a copy of the symlink `from` (target, owner, times). */
  | { kind: 'symlink'; to: string; target?: string; from?: string; attributes?: InodeAttributes };

export type CopyJob = Extract<FileJob, { kind: 'copy' }>;

export type AttributeOverride = Partial<Pick<InodeAttributes, 'mode' | 'uid' | 'gid'>>;

export interface OwnerAndMode {
  mode: number;
  uid: number;
  gid: number;
}

/** Which inode a job created: what the same path must still be before anything else is done to it. */
export interface InodeIdentity {
  dev: number;
  ino: number;
}

/** What the jobs of one pool share, in whichever thread they run. */
export interface RunContext {
  umask: number;
  uid: number;
  gid: number;
  /** Copies without attributes keep the source's owner when it is not the agent's. */
  preserveOwner: boolean;
  /** Running on the agent's own thread: large copies are handed back (see copyLargeHere). */
  inline?: boolean;
}
