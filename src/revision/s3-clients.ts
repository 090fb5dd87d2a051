/**
 * The S3 side of a download: which endpoint serves a region, the SDK clients with their connection pools
 * and proxy, and following S3's "the bucket is in region X" answers. The download itself (HEAD, parts,
 * retries) is ./s3.ts; what a user reads when it fails is ./s3-errors.ts.
 */
import http from 'node:http';
import https from 'node:https';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { AwsCredentialIdentityProvider } from '@aws-sdk/types';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpsProxyAgent } from 'https-proxy-agent';
import type { Logger } from '../log/logger.js';
import { matchesNoProxy, proxyFor } from '../service/proxy.js';
import { isRegionName } from './s3-names.js';

export interface S3ConnectionOptions {
  region: string;
  /** Omitted: the SDK's default chain (env, shared files, container, instance profile; agent-spec §7.6). */
  credentials?: AwsCredentialIdentityProvider;
  /** `:s3_endpoint_override:`; when set, requests are path-style against it. */
  endpointOverride?: string;
  /** `:use_fips_mode:` → `https://s3-fips.<region>.amazonaws.com`. */
  useFips?: boolean;
  /**
   * `:proxy_uri:` (userinfo in the URI is used for proxy authentication); without it HTTPS_PROXY /
   * HTTP_PROXY from `env` apply unless NO_PROXY names the S3 host (or the bucket's virtual host).
   */
  proxyUri?: string;
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  logger: Logger;
  /** Tests: e.g. `requestChecksumCalculation`/`responseChecksumValidation: 'WHEN_REQUIRED'` for moto. */
  clientOverrides?: Partial<S3ClientConfig>;
  /** A socket that stays silent this long is dropped and the part retried (default 60 s). */
  idleTimeoutMs?: number;
}

const EUSC_REGION = 'eusc-de-east-1';
const EUSC_ENDPOINT = 'https://s3.eusc-de-east-1.amazonaws.eu';
/** Limit for following "your bucket lives in another region" answers. */
const MAX_REGION_REDIRECTS = 2;

/**
 * The endpoint the agent talks to for `region` (agent-spec §3.4): an override wins, then FIPS, then the
 * European Sovereign Cloud endpoint; `undefined` leaves it to the SDK.
 */
export function s3EndpointFor(region: string, options: Pick<S3ConnectionOptions, 'endpointOverride' | 'useFips'>): string | undefined {
  if (options.endpointOverride && options.endpointOverride.trim() !== '') return options.endpointOverride.trim();
  if (options.useFips) return `https://s3-fips.${region}.amazonaws.com`;
  if (region === EUSC_REGION) return EUSC_ENDPOINT;
  return undefined;
}

/**
 * The SDK clients of one download, one per region, so a region redirect can switch and stay switched
 * (the SDK's own `followRegionRedirects` does not cover every answer S3 gives: see docs/decisions.md).
 */
export class S3Clients {
  region: string;
  private readonly byRegion = new Map<string, S3Client>();
  private readonly partsByRegion = new Map<string, S3Client>();
  private readonly agentsByRegion = new Map<string, { httpAgent: http.Agent; httpsAgent: https.Agent }>();
  private readonly agents: http.Agent[] = [];
  private redirects = 0;

  /** `maxSockets`: sockets per scheme and region (the parts fetched at once, with room for retries). */
  constructor(
    private readonly options: S3ConnectionOptions,
    private readonly bucket: string,
    private readonly maxSockets: number,
  ) {
    this.region = options.region;
  }

  get endpoint(): string {
    return s3EndpointFor(this.region, this.options) ?? `https://s3.${this.region}.amazonaws.com`;
  }

  client(): S3Client {
    return this.clientFor(this.region, this.byRegion, false);
  }

  /**
   * The client of part GETs: the SDK's own retries off (maxAttempts 1), because each part has the agent's
   * retries (maxPartAttempts, resuming where the body stopped); with both, one failing part sent
   * maxPartAttempts × 3 GETs.
   */
  partClient(): S3Client {
    return this.clientFor(this.region, this.partsByRegion, true);
  }

  private clientFor(region: string, cache: Map<string, S3Client>, forParts: boolean): S3Client {
    let client = cache.get(region);
    if (!client) {
      client = this.create(region, forParts);
      cache.set(region, client);
    }
    return client;
  }

  /** Runs `operation`, following an "the bucket is in region X" answer by switching region and trying again. */
  async send<T>(operation: (client: S3Client) => Promise<T>, forParts = false): Promise<T> {
    for (;;) {
      const regionBefore = this.region;
      try {
        return await operation(forParts ? this.partClient() : this.client());
      } catch (error) {
        const hinted = bucketRegionHint(error);
        if (!hinted || hinted === regionBefore) throw error;
        // A parallel part may already have switched; only count and log the first switch.
        if (this.region === regionBefore) {
          if (this.redirects >= MAX_REGION_REDIRECTS) throw error;
          this.redirects++;
          this.options.logger.info(`The bucket is in region ${hinted}, not ${regionBefore}; retrying there`);
          this.region = hinted;
        }
      }
    }
  }

  /** `send` with the client of part GETs (no SDK retries under the agent's own). */
  sendPart<T>(operation: (client: S3Client) => Promise<T>): Promise<T> {
    return this.send(operation, true);
  }

  /** The proxy for this region's S3 host: `:proxy_uri:`, else the environment's, unless NO_PROXY names the host. */
  private proxyFor(region: string): string | undefined {
    const env = this.options.env ?? process.env;
    const endpoint = new URL(s3EndpointFor(region, this.options) ?? `https://s3.${region}.amazonaws.com`);
    const proxy = proxyFor(endpoint, this.options.proxyUri, env);
    if (!proxy || this.options.proxyUri?.trim() || this.options.endpointOverride?.trim()) return proxy;
    // Without an override the SDK addresses the bucket as its own host (<bucket>.s3.<region>.amazonaws.com).
    const virtualHost = new URL(endpoint);
    virtualHost.hostname = `${this.bucket}.${endpoint.hostname}`;
    return matchesNoProxy(virtualHost, env.NO_PROXY ?? env.no_proxy) ? undefined : proxy;
  }

  /** As the Ruby agent, the connection hint names FIPS whenever FIPS mode is on. */
  fipsMode(): boolean {
    return Boolean(this.options.useFips);
  }

  destroy(): void {
    for (const client of [...this.byRegion.values(), ...this.partsByRegion.values()]) client.destroy();
    for (const agent of this.agents) agent.destroy();
  }

  /** The connection pool of a region, shared by its two clients. */
  private agentsFor(region: string): { httpAgent: http.Agent; httpsAgent: https.Agent } {
    const known = this.agentsByRegion.get(region);
    if (known) return known;
    const sockets = this.maxSockets;
    let httpAgent: http.Agent;
    let httpsAgent: https.Agent;
    const proxyUri = this.proxyFor(region);
    if (proxyUri) {
      // One CONNECT-tunnelling agent for both schemes; it reads proxy credentials from the URI's userinfo.
      const proxy = new HttpsProxyAgent(proxyUri, { keepAlive: true, maxSockets: sockets });
      httpAgent = proxy;
      httpsAgent = proxy as unknown as https.Agent;
    } else {
      httpAgent = new http.Agent({ keepAlive: true, maxSockets: sockets });
      httpsAgent = new https.Agent({ keepAlive: true, maxSockets: sockets });
    }
    this.agents.push(httpAgent, httpsAgent);
    const agents = { httpAgent, httpsAgent };
    this.agentsByRegion.set(region, agents);
    return agents;
  }

  private create(region: string, forParts: boolean): S3Client {
    const { options } = this;
    const endpoint = s3EndpointFor(region, options);
    const { httpAgent, httpsAgent } = this.agentsFor(region);
    return withoutNodeVersionWarning(() => new S3Client({
      region,
      credentials: options.credentials,
      ...(endpoint ? { endpoint } : {}),
      forcePathStyle: Boolean(options.endpointOverride && options.endpointOverride.trim() !== ''),
      requestHandler: new NodeHttpHandler({
        httpAgent,
        httpsAgent,
        connectionTimeout: 15_000,
        socketTimeout: options.idleTimeoutMs ?? 60_000,
      }),
      ...options.clientOverrides,
      ...(forParts ? { maxAttempts: 1 } : {}),
    }));
  }
}

const NODE_VERSION_WARNING_SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/**
 * The SDK's first client prints a multi-line "NodeVersionSupportWarning" to stderr on Node < 22, on every
 * `deploy` from S3 and in the daemon's journal; nobody running the agent can act on it. The SDK checks its
 * switch once, while the client is built, so it is set only for that moment: hooks never see it.
 */
function withoutNodeVersionWarning<T>(build: () => T): T {
  const before = process.env[NODE_VERSION_WARNING_SWITCH];
  process.env[NODE_VERSION_WARNING_SWITCH] = 'true';
  try {
    return build();
  } finally {
    if (before === undefined) delete process.env[NODE_VERSION_WARNING_SWITCH];
    else process.env[NODE_VERSION_WARNING_SWITCH] = before;
  }
}

/** The region S3 says the bucket lives in, from a 301 / PermanentRedirect / AuthorizationHeaderMalformed answer. */
export function bucketRegionHint(error: unknown): string | undefined {
  const err = error as {
    name?: string;
    Region?: unknown;
    Endpoint?: unknown;
    $metadata?: { httpStatusCode?: number };
    $response?: { headers?: Record<string, string | undefined> };
  };
  if (!err || typeof err !== 'object') return undefined;
  const status = err.$metadata?.httpStatusCode;
  const redirectLike =
    status === 301 ||
    status === 307 ||
    err.name === 'PermanentRedirect' ||
    err.name === 'AuthorizationHeaderMalformed' ||
    err.name === 'IllegalLocationConstraintException';
  if (!redirectLike) return undefined;
  // The region goes into a host name and a client's configuration: only a region's shape is taken.
  const header = err.$response?.headers?.['x-amz-bucket-region']?.trim();
  if (header && isRegionName(header)) return header;
  if (typeof err.Region === 'string' && isRegionName(err.Region)) return err.Region;
  if (typeof err.Endpoint === 'string') {
    const match = /s3[.-](?:dualstack\.)?([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\./.exec(err.Endpoint);
    if (match) return match[1];
  }
  return undefined;
}
