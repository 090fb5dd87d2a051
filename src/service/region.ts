import type { ImdsClient } from './imds.js';
import type { OnPremisesConfig } from './onpremises-config.js';

/**
 * The region rule for the daemon and `deploy` alike: the on-premises file's region wins (AWS's agent
 * exports it as AWS_REGION, so nothing in the environment can override it), then AWS_REGION, then the
 * instance metadata. Instance metadata is asked only when nothing else answered, and never when
 * AWS_EC2_METADATA_DISABLED is set (the SDK's own switch): an on-premises host makes no call to
 * 169.254.169.254 for its region.
 */

/** The SDK's switch: `AWS_EC2_METADATA_DISABLED=true` (any case, surrounding blanks ignored). */
export function imdsDisabled(env: NodeJS.ProcessEnv): boolean {
  return env.AWS_EC2_METADATA_DISABLED?.trim().toLowerCase() === 'true';
}

/** Instance metadata, probed at most once and only when a caller needs it. */
export interface ImdsAccess {
  readonly client: ImdsClient;
  /** False without a probe when metadata is disabled; otherwise the one probe's answer. */
  reachable(): Promise<boolean>;
}

export function lazyImds(client: ImdsClient, env: NodeJS.ProcessEnv): ImdsAccess {
  const disabled = imdsDisabled(env);
  let probe: Promise<boolean> | undefined;
  return {
    client,
    reachable: () => {
      if (disabled) return Promise.resolve(false);
      probe ??= client.isAvailable();
      return probe;
    },
  };
}

export interface RegionSources {
  onPremises?: OnPremisesConfig;
  env: NodeJS.ProcessEnv;
  imds: ImdsAccess;
  /**
   * Also take AWS_DEFAULT_REGION after AWS_REGION: `deploy` is run from a shell where the AWS CLI's
   * variable may be all there is; the daemon, as AWS's agent, reads AWS_REGION only.
   */
  defaultRegionVariable?: boolean;
}

/** The region, or undefined when no source names one (the caller says what to set). */
export async function resolveRegion(sources: RegionSources): Promise<string | undefined> {
  const { onPremises, env } = sources;
  const given = onPremises?.region
    || env.AWS_REGION?.trim()
    || (sources.defaultRegionVariable ? env.AWS_DEFAULT_REGION?.trim() : undefined);
  if (given) return given;
  return (await sources.imds.reachable()) ? sources.imds.client.region() : undefined;
}
