/**
 * The environment a hook script gets (agent-spec §6.3).
 *
 * The anchor passes its whole process environment through and only removes a few credential variables;
 * the on-premises IAM-user keys (`AWS_ACCESS_KEY` / `AWS_SECRET_KEY`) and container credentials leaked
 * into every hook (§10.19). Here every variable that carries or locates the agent's own credentials is
 * removed; everything else still passes through, as in the anchor, so existing scripts keep working.
 */

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
export function registerEnvironmentSecrets(env: NodeJS.ProcessEnv, proxyUri: string | undefined, register: (value: string | undefined) => void): void {
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

/**
 * `base` minus the agent's credentials, with `vars` applied on top (`undefined` removes a variable,
 * e.g. `BUNDLE_VERSION` for an unversioned bucket, as the anchor does).
 */
export function buildHookEnvironment(
  base: NodeJS.ProcessEnv,
  vars: Record<string, string | undefined>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined || isCredentialVariable(name)) continue;
    env[name] = value;
  }
  for (const [name, value] of Object.entries(vars)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** Names of the hook variables that are set (for `sudo --preserve-env=`). */
export function definedVariableNames(vars: Record<string, string | undefined>): string[] {
  return Object.entries(vars)
    .filter(([, value]) => value !== undefined)
    .map(([name]) => name);
}
