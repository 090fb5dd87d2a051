/**
 * Secrets must never reach a log line or a file of hook output (credentials, session tokens, GitHub
 * tokens, proxy passwords). Values are registered as they become known and replaced wherever they
 * appear; well-known shapes are masked too in the agent's own messages.
 */
const known = new Set<string>();
/** The known values as one alternation, longest first (so a secret that contains another goes whole); rebuilt when one is added. */
let knownPattern: RegExp | undefined;

export const REDACTED = '[REDACTED]';

export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < 4 || known.has(value)) return;
  known.add(value);
  knownPattern = undefined;
}

/** The values registered so far: for a process that takes over part of this one's work (agent/command-worker.ts). */
export function knownSecrets(): string[] {
  return [...known];
}

const PATTERNS: [RegExp, string][] = [
  [/(AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|aws_secret_access_key|aws_session_token|SecretAccessKey|SessionToken|Token)(["']?\s*[:=]\s*["']?)[^\s"',}]+/g, '$1$2[REDACTED]'],
  [/(Authorization:\s*(?:token|Bearer|AWS4-HMAC-SHA256)\s+)[^\r\n]+/gi, '$1[REDACTED]'],
  [/("GitHubAccessToken"\s*:\s*)"[^"]*"/g, '$1"REDACTED"'],
  [/\b(gh[pousr]_[A-Za-z0-9]{20,})\b/g, '[REDACTED]'],
];

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Only the values the agent knows, replaced: what hook output gets (scripts.log, the deployments log,
 * the terminal). Output of the user's own scripts is not reshaped by patterns; a value of the agent's is
 * never written. One regular expression over the whole batch: a hook printing 50 MB costs a scan, not a
 * pass per secret.
 */
export function redactKnownSecrets(text: string): string {
  if (known.size === 0) return text;
  knownPattern ??= new RegExp([...known].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'g');
  return text.replace(knownPattern, REDACTED);
}

export function redact(text: string): string {
  let out = redactKnownSecrets(text);
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}
