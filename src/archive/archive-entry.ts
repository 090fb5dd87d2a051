/**
 * What the tar and zip readers hand to the entry writer: one shape for both formats, so the safety
 * rules and the file-system writes exist once.
 */

export type EntryKind =
  | 'file'
  | 'directory'
  | 'symlink'
  | 'hardlink'
  | 'character-device'
  | 'block-device'
  | 'fifo'
  | 'socket'
  /** A tar type the agent does not unpack (volume labels, Solaris ACLs...); skipped with a warning. */
  | 'unsupported';

/** Ownership as the archive records it; names win over numbers when both resolve (GNU tar's rule). */
export interface EntryOwner {
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
}

export interface ArchiveEntry {
  /** The name exactly as stored in the archive; not yet checked. */
  readonly path: string;
  readonly kind: EntryKind;
  /** Permission bits including setuid, setgid and sticky (0o7777); never the file-type bits. */
  readonly mode: number;
  /** Content length in bytes (files only; 0 otherwise). */
  readonly size: number;
  readonly mtime?: Date;
  /** Symlink target as stored, or the archive name a hard link points at. */
  readonly linkTarget?: string;
  /** As recorded in the archive (tar); the writer restores it only when asked to. */
  readonly owner?: EntryOwner;
  /** For unsupported entries, the format's own name of the type, for the warning. */
  readonly typeLabel?: string;
}

/** The bytes of one file entry. Each method may be called once. */
export interface EntryContent {
  readonly size: number;
  /** The whole content in one buffer; the writer uses it only for small entries. */
  readAll(): Promise<Buffer>;
  /** The content in order, for entries too large to hold in memory. */
  chunks(): AsyncIterable<Buffer>;
}
