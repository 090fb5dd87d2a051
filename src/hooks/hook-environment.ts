/**
 * The environment a hook script gets (agent-spec §6.3).
 *
 * The anchor passes its whole process environment through and only removes a few credential variables;
 * the on-premises IAM-user keys (`AWS_ACCESS_KEY` / `AWS_SECRET_KEY`) and container credentials leaked
 * into every hook (§10.19). Here every variable that carries or locates the agent's own credentials is
 * removed; everything else still passes through, as in the anchor, so existing scripts keep working.
 */

import { isCredentialVariable } from '../log/environment-secrets.js';

export { CREDENTIAL_VARIABLES, isCredentialVariable } from '../log/environment-secrets.js';

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
