import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { AgentConfig } from '../config/agent-config.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { registerSecret } from '../log/redact.js';
import { AgentError, ConfigError } from '../report/errors.js';
import { ImdsClient } from './imds.js';
import { isOnPremisesConfigReadable, readOnPremisesConfig } from './onpremises-config.js';
import type { OnPremisesConfig } from './onpremises-config.js';
import { imdsDisabled, lazyImds, resolveRegion } from './region.js';

/**
 * Who this host is and how it signs (agent-spec §7.6): region, host identifier and a credential
 * provider, from the on-premises config file, the environment, or IMDS — for the daemon
 * (resolveIdentity) and for `deploy` reading an S3 revision (resolveLocalAccess). Credentials are never
 * logged and never put into the process environment.
 */

export interface HostIdentity {
  region: string;
  hostIdentifier: string;
  credentials: AwsCredentialIdentityProvider;
  /** The on-premises config file named an IAM user or session. */
  onPremises: boolean;
  /** IMDS `services/domain`, when IMDS answered; the endpoint is built from it (§1.2). */
  domain?: string;
  /** The on-premises config file is readable (even if it names no IAM identity): enables the §1.2 check. */
  onPremisesConfigReadable: boolean;
  /** Where the credentials come from, for messages when the service refuses them (never the credentials). */
  credentialsSource?: string;
}

export interface ResolveIdentityOptions {
  env?: NodeJS.ProcessEnv;
  /** Default: a client built from the config's `disable_imds_v1` and `env`. */
  imds?: ImdsClient;
  logger?: Logger;
}

export class CredentialsError extends AgentError {}

/**
 * The SDK's providers weigh about 12 MB; they are loaded on the first credential fetch, so a host with
 * static on-premises keys never loads them. The package is CommonJS: loaded on demand from the split
 * bundle it arrives as its `default` export (as Node itself does it), under vitest with named exports.
 */
type CredentialProviders = typeof import('@aws-sdk/credential-providers');
const sdkProviders = async (): Promise<CredentialProviders> => {
  const loaded = (await import('@aws-sdk/credential-providers')) as CredentialProviders & { default?: CredentialProviders };
  return typeof loaded.fromIni === 'function' ? loaded : loaded.default!;
};

/**
 * The SDK's own default chain (environment, ~/.aws, SSO, container, instance profile), as an S3 client
 * would use it by itself, with the values it yields registered as secrets (hook output never shows them).
 */
export function sdkDefaultCredentials(): AwsCredentialIdentityProvider {
  let chain: AwsCredentialIdentityProvider | undefined;
  return memoizeCredentials(async (options) => {
    chain ??= (await sdkProviders()).fromNodeProviderChain();
    return chain(options);
  });
}

/** Refresh credentials this long before they expire. */
export const REFRESH_WINDOW_MS = 5 * 60_000;

/**
 * Caches what `provider` returns until 5 minutes before its expiration (forever when it has none);
 * concurrent callers share one fetch. `forceRefresh` in the options bypasses the cache.
 */
export function memoizeCredentials(
  provider: AwsCredentialIdentityProvider,
  now: () => number = Date.now,
): AwsCredentialIdentityProvider {
  let cached: AwsCredentialIdentity | undefined;
  let pending: Promise<AwsCredentialIdentity> | undefined;
  const fresh = (identity: AwsCredentialIdentity) =>
    identity.expiration === undefined || identity.expiration.getTime() - now() > REFRESH_WINDOW_MS;
  return async (options) => {
    if (cached && fresh(cached) && !options?.forceRefresh) return cached;
    pending ??= (async () => {
      try {
        const identity = await provider(options);
        rememberSecrets(identity);
        cached = identity;
        return identity;
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  };
}

function rememberSecrets(identity: AwsCredentialIdentity): void {
  registerSecret(identity.secretAccessKey);
  registerSecret(identity.sessionToken);
}

/** Static IAM-user keys from the on-premises file. */
export function staticCredentials(accessKeyId: string, secretAccessKey: string, sessionToken?: string): AwsCredentialIdentityProvider {
  const identity: AwsCredentialIdentity = { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
  rememberSecrets(identity);
  return async () => identity;
}

/** Re-read a session file at least this often, even if it looks unchanged (the anchor: every 30 minutes). */
const SESSION_FILE_MAX_AGE_MS = 30 * 60_000;
/**
 * The expiration we hand out for file-based credentials: SDK clients (S3) cache an identity until five
 * minutes before its expiration, so six minutes makes them ask again — and see a rotated file — within
 * about a minute. Our own check (a stat) is cheap.
 */
const SESSION_ADVERTISED_LIFETIME_MS = 6 * 60_000;

/**
 * Credentials from a shared-credentials file that another process rotates (`iam_session_arn`). The file
 * is checked (mtime, size, inode) on every call and re-read when it changed, when the credentials are
 * near their own expiration, or after 30 minutes — instead of the anchor's fixed 30-minute cache (#354).
 */
export function sessionFileCredentials(
  path: string,
  options: { profile?: string; now?: () => number } = {},
): AwsCredentialIdentityProvider {
  const now = options.now ?? Date.now;
  const profile = options.profile ?? 'default';
  let cached: { identity: AwsCredentialIdentity; fingerprint: string; readAt: number } | undefined;
  let pending: Promise<AwsCredentialIdentity> | undefined;

  const load = async (): Promise<AwsCredentialIdentity> => {
    let fingerprint: string;
    try {
      // Synchronous: a stat is cheap, and node:fs/promises would cost an idle daemon 0.8 MB.
      const info = statSync(path);
      fingerprint = `${info.ino}:${info.size}:${info.mtimeMs}`;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'the file does not exist' : code === 'EACCES' ? 'the agent may not read it' : (error as Error).message;
      throw new CredentialsError(`Failed to load credentials from path ${path}: ${why}`, undefined, { cause: error });
    }
    const realExpiry = cached?.identity.expiration?.getTime();
    if (
      cached &&
      cached.fingerprint === fingerprint &&
      now() - cached.readAt < SESSION_FILE_MAX_AGE_MS &&
      (realExpiry === undefined || realExpiry - now() > REFRESH_WINDOW_MS)
    ) {
      return advertise(cached.identity);
    }
    let identity: AwsCredentialIdentity;
    try {
      // No config file: only the credentials file's profile counts, as in the anchor's FileCredentials.
      const { fromIni } = await sdkProviders();
      identity = await fromIni({ filepath: path, configFilepath: `${path}.no-config-file`, profile, ignoreCache: true })();
    } catch (error) {
      throw new CredentialsError(
        `Failed to load credentials from path ${path}: it has no [${profile}] profile with aws_access_key_id and aws_secret_access_key`,
        undefined,
        { cause: error },
      );
    }
    rememberSecrets(identity);
    cached = { identity, fingerprint, readAt: now() };
    return advertise(identity);
  };

  const advertise = (identity: AwsCredentialIdentity): AwsCredentialIdentity => {
    const soon = now() + SESSION_ADVERTISED_LIFETIME_MS;
    const real = identity.expiration?.getTime();
    return { ...identity, expiration: new Date(real === undefined ? soon : Math.min(real, soon)) };
  };

  return async () => {
    pending ??= load().finally(() => {
      pending = undefined;
    });
    return pending;
  };
}

/**
 * EC2 and "neither" hosts: the agent user's shared files (~/.aws), then the instance profile
 * (3 retries, 1 s timeout, as the anchor configures its SDK). Environment keys count only under the
 * `beta`/`gamma` test profiles, because the anchor deletes AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY at
 * startup otherwise. The instance-profile provider reads its address from AWS_EC2_METADATA_SERVICE_ENDPOINT.
 */
export function defaultCredentialChain(config: AgentConfig, env: NodeJS.ProcessEnv, logger: Logger): AwsCredentialIdentityProvider {
  const home = env.HOME ?? homedir();
  let providers: AwsCredentialIdentityProvider[] | undefined;
  const makeProviders = async (): Promise<AwsCredentialIdentityProvider[]> => {
    const { fromEnv, fromIni, fromInstanceMetadata } = await sdkProviders();
    const list: AwsCredentialIdentityProvider[] = [];
    if (config.codedeploy_test_profile === 'beta' || config.codedeploy_test_profile === 'gamma') list.push(fromEnv());
    list.push(
      fromIni({
        filepath: env.AWS_SHARED_CREDENTIALS_FILE ?? join(home, '.aws', 'credentials'),
        configFilepath: env.AWS_CONFIG_FILE ?? join(home, '.aws', 'config'),
        profile: env.AWS_PROFILE,
      }),
      fromInstanceMetadata({ timeout: 1000, maxRetries: 3, ec2MetadataV1Disabled: config.disable_imds_v1 }),
    );
    return list;
  };
  const chain: AwsCredentialIdentityProvider = async (options) => {
    providers ??= await makeProviders();
    const problems: string[] = [];
    for (const provider of providers) {
      try {
        return await provider(options);
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    logger.debug(`No credential provider succeeded: ${problems.join(' | ')}`);
    throw new CredentialsError('Missing credentials - please check if this instance was started with an IAM instance profile');
  };
  return memoizeCredentials(chain);
}

/** What was checked for instance metadata, for messages that say why it gave nothing. */
function imdsState(disabled: boolean): string {
  return disabled ? 'instance metadata is turned off by AWS_EC2_METADATA_DISABLED=true' : 'instance metadata is not reachable';
}

/** What was found of the on-premises file, for the same messages. */
function onPremisesFileState(path: string, found: OnPremisesConfig | undefined): string {
  if (found) return `the on-premises file ${path} does not say`;
  return existsSync(path) ? `the on-premises file ${path} cannot be read by this user` : `there is no on-premises file at ${path}`;
}

function credentialsFor(onPremises: OnPremisesConfig, env: NodeJS.ProcessEnv): AwsCredentialIdentityProvider {
  if (onPremises.kind === 'iam-user') return staticCredentials(onPremises.accessKeyId, onPremises.secretAccessKey);
  return sessionFileCredentials(onPremises.credentialsFile, { profile: env.AWS_PROFILE });
}

/**
 * Region and host identifier: the on-premises file first (as the anchor, which writes them into the
 * environment), then AWS_REGION / AWS_HOST_IDENTIFIER, then IMDS.
 */
export async function resolveIdentity(config: AgentConfig, options: ResolveIdentityOptions = {}): Promise<HostIdentity> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? silentLogger;
  const imds = options.imds ?? new ImdsClient({ disableImdsV1: config.disable_imds_v1, env, logger });

  const onPremisesConfigReadable = isOnPremisesConfigReadable(config.on_premises_config_file);
  const onPremises = onPremisesConfigReadable ? readOnPremisesConfig(config.on_premises_config_file) : undefined;

  // IMDS is asked only for what nothing else gives (the endpoint's domain, region, host identifier): an
  // on-premises host with an endpoint override makes no call to 169.254.169.254 at all.
  const metadata = lazyImds(imds, env);
  const domain = !config.deploy_control_endpoint && (await metadata.reachable()) ? await imds.domain() : undefined;

  let hostIdentifier: string | undefined;
  let credentials: AwsCredentialIdentityProvider;
  let credentialsSource: string;
  if (onPremises) {
    credentialsSource = onPremises.kind === 'iam-user'
      ? `the IAM user keys in ${onPremises.path}`
      : `the session credentials file ${onPremises.credentialsFile} (named in ${onPremises.path}; is its refresher running?)`;
    hostIdentifier = onPremises.kind === 'iam-user' ? onPremises.iamUserArn : onPremises.iamSessionArn;
    credentials = credentialsFor(onPremises, env);
    logger.info(`On-premises instance ${hostIdentifier} in ${onPremises.region} (credentials from ${onPremises.kind === 'iam-user' ? 'the IAM user keys' : onPremises.credentialsFile})`);
  } else {
    hostIdentifier = env.AWS_HOST_IDENTIFIER?.trim() || undefined;
    credentials = defaultCredentialChain(config, env, logger);
    credentialsSource = 'the instance profile (or ~/.aws of the agent\'s user)';
  }
  const region = await resolveRegion({ onPremises, env, imds: metadata });
  if (region === undefined) {
    throw new ConfigError(`Cannot determine the region: AWS_REGION is not set, ${onPremisesFileState(config.on_premises_config_file, onPremises)}, and ${imdsState(imdsDisabled(env))}. Set AWS_REGION, register the host (codedeploy-agent register), or run on EC2 with instance metadata reachable`);
  }
  if (hostIdentifier === undefined) {
    if (!(await metadata.reachable())) {
      throw new ConfigError(`Cannot determine the host identifier: ${imdsState(imdsDisabled(env))}, and ${onPremisesFileState(config.on_premises_config_file, onPremises)}. On EC2, unset AWS_EC2_METADATA_DISABLED or let the instance reach its metadata; on premises, register the host (codedeploy-agent register) or set AWS_HOST_IDENTIFIER`);
    }
    hostIdentifier = await imds.hostIdentifier();
  }
  return {
    region,
    hostIdentifier,
    credentials,
    onPremises: onPremises !== undefined,
    ...(domain ? { domain } : {}),
    onPremisesConfigReadable,
    credentialsSource,
  };
}

/** What `deploy` signs S3 requests with. */
export interface LocalAccess {
  /** Undefined when no source names one: the caller says what to set. */
  region?: string;
  credentials: AwsCredentialIdentityProvider;
}

/**
 * Region and credentials for `deploy` reading an S3 revision, as AWS's codedeploy-local finds them: the
 * region rule of ./region.ts (AWS_DEFAULT_REGION also counts here). Credentials: the SDK's default chain
 * (environment, ~/.aws, instance profile; what it yields is registered as secrets), except that a host registered with an on-premises file uses its
 * IAM session file, or its IAM user keys when the environment has none (AWS's agent exports those keys
 * under names its SDK reads after AWS_ACCESS_KEY_ID).
 */
export async function resolveLocalAccess(config: AgentConfig, options: ResolveIdentityOptions = {}): Promise<LocalAccess> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? silentLogger;
  const imds = options.imds ?? new ImdsClient({ disableImdsV1: config.disable_imds_v1, env, logger, timeoutMs: 1000 });
  const onPremises = readOnPremisesConfig(config.on_premises_config_file);
  let credentials: AwsCredentialIdentityProvider | undefined;
  if (onPremises?.kind === 'iam-session' || (onPremises?.kind === 'iam-user' && !env.AWS_ACCESS_KEY_ID)) {
    credentials = credentialsFor(onPremises, env);
  }
  // The SDK's default chain otherwise, through a wrapper that registers what it yields as secrets.
  credentials ??= sdkDefaultCredentials();
  const region = await resolveRegion({ onPremises, env, imds: lazyImds(imds, env), defaultRegionVariable: true });
  return { ...(region ? { region } : {}), credentials };
}
