import { ConfigError } from '../report/errors.js';

/**
 * Where the commands service lives and how to address it (docs/compatibility.md, "Wire protocol"). Pure: the
 * caller supplies what IMDS said; nothing here does I/O.
 */

export type CommandsVariant = 'normal' | 'secure';

export interface CommandsServiceModel {
  variant: CommandsVariant;
  /** SigV4 service name = the model's endpointPrefix (FIPS hosts still sign with it). */
  signingName: 'codedeploy-commands' | 'codedeploy-commands-secure';
  /** `X-Amz-Target: <targetPrefix>.<Operation>`. */
  targetPrefix: 'CodeDeployCommandService_v20141006' | 'CodeDeployCommandService';
  apiVersion: '2014-10-06' | '2019-11-11';
}

export const NORMAL_MODEL: CommandsServiceModel = {
  variant: 'normal',
  signingName: 'codedeploy-commands',
  targetPrefix: 'CodeDeployCommandService_v20141006',
  apiVersion: '2014-10-06',
};

export const SECURE_MODEL: CommandsServiceModel = {
  variant: 'secure',
  signingName: 'codedeploy-commands-secure',
  targetPrefix: 'CodeDeployCommandService',
  apiVersion: '2019-11-11',
};

/** `:enable_auth_policy: true` selects the secure variant (it also wins over the legacy mock flag). */
export function commandsModel(enableAuthPolicy: boolean): CommandsServiceModel {
  return enableAuthPolicy ? SECURE_MODEL : NORMAL_MODEL;
}

/** `codedeploy-commands[-secure][-fips]`. */
export function serviceLabel(enableAuthPolicy: boolean, useFipsMode: boolean): string {
  return `codedeploy-commands${enableAuthPolicy ? '-secure' : ''}${useFipsMode ? '-fips' : ''}`;
}

/** Copied from `partition-region-pattern.json` of AWS's agent. */
export const PARTITION_REGION_PATTERNS: Readonly<Record<string, RegExp>> = {
  'amazonaws.com': /^[0-9a-z-]{1,20}$/,
  'amazonaws.eu': /^[0-9a-z-]{1,20}$/,
  'amazonaws.com.cn': /^cn-\w+-\d+$/,
};

/** The DNS suffix when IMDS cannot tell us: `eu` for eusc-de-east-1, `com.cn` for `cn-*`, else `com`. */
export function domainForRegion(region: string): string {
  if (region === 'eusc-de-east-1') return 'amazonaws.eu';
  if (region.split('-')[0] === 'cn') return 'amazonaws.com.cn';
  return 'amazonaws.com';
}

/** AWS's agent's check for hosts that are both on-premises-registered and able to reach IMDS. */
export function checkPartitionRegion(domain: string, region: string): void {
  const pattern = PARTITION_REGION_PATTERNS[domain];
  if (!pattern) throw new ConfigError(`Unknown domain: ${domain}`);
  if (!pattern.test(region)) throw new ConfigError(`Invalid region: ${region}`);
}

export const FIPS_REGIONS: readonly string[] = ['us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'us-gov-west-1', 'us-gov-east-1'];

export const FIPS_REGION_MESSAGE = 'use_fips_mode can be set to true only in regions located in the USA';

/** `:use_fips_mode: true` is only valid in the US regions (AWS's rule). */
export function checkFipsRegion(useFipsMode: boolean, region: string | undefined): void {
  if (useFipsMode && (region === undefined || !FIPS_REGIONS.includes(region))) {
    throw new ConfigError(FIPS_REGION_MESSAGE);
  }
}

export interface EndpointInputs {
  /** `:deploy_control_endpoint:`; a full URL used verbatim. */
  deployControlEndpoint?: string;
  enableAuthPolicy: boolean;
  useFipsMode: boolean;
  /** The client (= signing) region: on-premises config / AWS_REGION, else the IMDS region. */
  region: string;
  /**
   * IMDS's `services/domain` when IMDS answered; undefined when IMDS is not reachable (the domain is
   * then derived from the region).
   */
  imdsDomain?: string;
  /** The on-premises config file is readable (then an IMDS-provided domain/region pair is checked). */
  onPremises?: boolean;
}

export interface ResolvedEndpoint {
  url: string;
  /** Signing region (always the client region). */
  region: string;
  model: CommandsServiceModel;
}

/**
 * The commands endpoint, `https://codedeploy-commands[-secure][-fips].<region>.<domain>`. One deliberate difference: the URL's region is the client
 * region, also when IMDS is reachable. AWS's agent takes the IMDS region for the URL but signs with the
 * client region, which only differs on an on-premises-registered EC2 instance (or with AWS_REGION set on
 * EC2) — and there it produces a request the service must reject. On a plain EC2 host both are the same.
 */
export function resolveCommandsEndpoint(inputs: EndpointInputs): ResolvedEndpoint {
  const model = commandsModel(inputs.enableAuthPolicy);
  checkFipsRegion(inputs.useFipsMode, inputs.region);
  const override = inputs.deployControlEndpoint?.trim();
  if (override) {
    let parsed: URL;
    try {
      parsed = new URL(override);
    } catch {
      throw new ConfigError(`deploy_control_endpoint ${override} is not a valid URL`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      throw new ConfigError(`deploy_control_endpoint ${override} must be an http or https URL`);
    }
    return { url: override.replace(/\/+$/, ''), region: inputs.region, model };
  }
  if (!inputs.region) throw new ConfigError('Cannot build the CodeDeploy endpoint: the region is unknown');
  let domain: string;
  if (inputs.imdsDomain) {
    domain = inputs.imdsDomain;
    if (inputs.onPremises) checkPartitionRegion(domain, inputs.region);
  } else {
    domain = domainForRegion(inputs.region);
  }
  const label = serviceLabel(inputs.enableAuthPolicy, inputs.useFipsMode);
  return { url: `https://${label}.${inputs.region}.${domain}`, region: inputs.region, model };
}
