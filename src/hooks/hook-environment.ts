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
