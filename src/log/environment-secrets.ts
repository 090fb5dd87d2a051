/**
 * The agent's own secrets that live in its environment: the variables that carry or locate its
 * credentials (which hooks never inherit, hooks/hook-environment.ts) and proxy URLs with a password.
 * Here, not under hooks/, because the daemon registers them at start, before any hook code is loaded.
 */

import { registerSecret } from './redact.js';

/** Variables that hold (or point at) the agent's credentials. */
export const CREDENTIAL_VARIABLES: readonly string[] = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_SECURITY_TOKEN',
  'AWS_ACCESS_KEY',
  'AWS_SECRET_KEY',
  'AWS_CREDENTIAL_FILE',
  'AWS_CREDENTIALS_FILE',
];

/** Variables that name a proxy, whose URL may carry a password. */
const PROXY_VARIABLES: readonly string[] = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'];

/**
 * Registers the secrets the agent's own environment and configuration hold (credential variables,
 * container credential tokens, proxy passwords), so that a hook that prints one, having read it some
 * other way, never puts it in scripts.log, the diagnostics tail or on the terminal. Called once at start
 * by `deploy` and the daemon; credentials fetched later register themselves (service/identity.ts).
 */
export function registerEnvironmentSecrets(env: NodeJS.ProcessEnv, proxyUri: string | undefined, register: (value: string | undefined) => void = registerSecret): void {
  for (const [name, value] of Object.entries(env)) {
    if (value && isCredentialVariable(name) && !name.endsWith('_FILE') && !name.endsWith('_URI') && !name.endsWith('_URL')) register(value);
  }
  for (const url of [proxyUri, ...PROXY_VARIABLES.map((name) => env[name])]) {
    if (!url) continue;
    try {
      const password = new URL(url).password;
      if (password) register(decodeURIComponent(password));
    } catch {
      // not a URL: nothing to find in it
    }
  }
}

/** ECS/EKS-style credential endpoints and tokens: `AWS_CONTAINER_CREDENTIALS_*`, `AWS_CONTAINER_AUTHORIZATION_TOKEN*`. */
const CREDENTIAL_PREFIXES: readonly string[] = ['AWS_CONTAINER_'];

export function isCredentialVariable(name: string): boolean {
  return CREDENTIAL_VARIABLES.includes(name) || CREDENTIAL_PREFIXES.some((prefix) => name.startsWith(prefix));
}
