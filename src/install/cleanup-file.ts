/**
 * The `<group>-cleanup` file (docs/compatibility.md, "Install and cleanup"): one entry a line, a plain absolute path or
 * `semanage` NUL `<path>`. Read and written in AWS's format so a host can switch agents
 * between two deployments and still have the previous deployment's files removed.
 */
export type CleanupEntry = { kind: 'path'; path: string } | { kind: 'semanage'; path: string };

const SEMANAGE_PREFIX = 'semanage\0';

/** Entries in file order; the caller removes them in reverse. */
export function parseCleanupFile(content: string): CleanupEntry[] {
  if (content === '') return [];
  const lines = content.split(/(?<=\n)/);
  // A last line without its newline was being written when the agent stopped: its path may be cut short.
  if (!lines[lines.length - 1].endsWith('\n')) lines.pop();
  const entries: CleanupEntry[] = [];
  for (const line of lines) {
    if (line.startsWith(SEMANAGE_PREFIX)) {
      const path = rubyStrip(line.slice(SEMANAGE_PREFIX.length));
      if (path !== '') entries.push({ kind: 'semanage', path });
    } else {
      const path = rubyStrip(line);
      if (path !== '') entries.push({ kind: 'path', path });
    }
  }
  return entries;
}

export function formatCleanupLine(entry: CleanupEntry): string {
  return entry.kind === 'semanage' ? `${SEMANAGE_PREFIX}${entry.path}\n` : `${entry.path}\n`;
}

export function formatCleanupFile(entries: readonly CleanupEntry[]): string {
  return entries.map(formatCleanupLine).join('');
}

/** Ruby's `String#strip`: ASCII whitespace on both sides, NUL too at the end. */
function rubyStrip(text: string): string {
  return text.replace(/^[\t\n\v\f\r ]+/, '').replace(/[\0\t\n\v\f\r ]+$/, '');
}
