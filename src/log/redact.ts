/**
 * Secrets must never reach a log line (credentials, session tokens, GitHub tokens). Values are
 * registered as they become known and replaced wherever they appear; well-known shapes are masked too.
 */
const known = new Set<string>();

export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 4) known.add(value);
}

const PATTERNS: [RegExp, string][] = [
  [/(AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|aws_secret_access_key|aws_session_token|SecretAccessKey|SessionToken|Token)(["']?\s*[:=]\s*["']?)[^\s"',}]+/g, '$1$2[REDACTED]'],
  [/(Authorization:\s*(?:token|Bearer|AWS4-HMAC-SHA256)\s+)[^\r\n]+/gi, '$1[REDACTED]'],
  [/("GitHubAccessToken"\s*:\s*)"[^"]*"/g, '$1"REDACTED"'],
  [/\b(gh[pousr]_[A-Za-z0-9]{20,})\b/g, '[REDACTED]'],
];

export function redact(text: string): string {
  let out = text;
  for (const secret of known) {
    if (out.includes(secret)) out = out.split(secret).join('[REDACTED]');
  }
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}
