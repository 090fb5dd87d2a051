import http from 'node:http';
import { AgentError } from '../report/errors.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { registerSecret } from '../log/redact.js';
import { formatMs } from '../util/duration.js';
import { isAbortError, retry } from '../util/retry.js';

/**
 * The agent's own EC2 instance-metadata client (agent-spec §7.7): region, partition, domain and the
 * identity document that make up the host identifier. IMDSv2 first, IMDSv1 only when allowed.
 *
 * Departures from the anchor (§10.27): the session token is renewed before its TTL runs out instead of
 * being kept for the life of the process; a 401 renews it at once instead of after three failed tries;
 * and after a failed token request the v1 fallback is remembered for a while, so a host without IMDSv2
 * does not pay for a failing PUT (with its retries) on every call. Timeouts are short (2 s, 3 tries)
 * instead of 10 s, because the daemon blocks on these calls at startup.
 */

export const IMDS_DEFAULT_ENDPOINT = 'http://169.254.169.254';
/** The AWS SDKs' variable for the IMDS address; the SDK's instance-profile provider honours it too. */
export const IMDS_ENDPOINT_ENV = 'AWS_EC2_METADATA_SERVICE_ENDPOINT';
export const TOKEN_PATH = '/latest/api/token';
export const TOKEN_TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
export const TOKEN_HEADER = 'x-aws-ec2-metadata-token';
export const IDENTITY_DOCUMENT_PATH = '/latest/dynamic/instance-identity/document';

export const TOKEN_FAILED_MESSAGE = 'HTTP error from metadata service to get imdsv2 token.';
export const V1_FALLBACK_WARNING = 'IMDSv2 http request failed, falling back to IMDSv1.';

export class ImdsError extends AgentError {
  readonly statusCode?: number;
  constructor(message: string, statusCode?: number, options?: { cause?: unknown }) {
    super(message, undefined, options);
    this.statusCode = statusCode;
  }
}

export interface IdentityDocument {
  region: string;
  accountId: string;
  instanceId: string;
  [key: string]: unknown;
}

export interface ImdsClientOptions {
  /** Base URL; default: env AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254. */
  endpoint?: string;
  env?: NodeJS.ProcessEnv;
  /** `:disable_imds_v1:` — never fall back to token-less requests. */
  disableImdsV1?: boolean;
  /** Per request (connect + response), ms. Default 2000. */
  timeoutMs?: number;
  /** Tries per metadata read. Default 3. */
  attempts?: number;
  /** First retry delay, ms (equal jitter, doubled each time, capped at 2 s). Default 250. */
  retryBaseMs?: number;
  /** TTL asked for each token. Default 21600 (6 h, the maximum). */
  tokenTtlSeconds?: number;
  /** How long a failed token request keeps us on IMDSv1 before IMDSv2 is tried again, ms. Default 5 min. */
  v1FallbackMs?: number;
  logger?: Logger;
  now?: () => number;
}

interface HttpAnswer {
  status: number;
  statusMessage: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface CachedToken {
  value: string;
  /** Epoch ms after which the token must not be used any more (refreshed a margin before). */
  refreshAt: number;
}

function isRetryable(error: unknown): boolean {
  if (isAbortError(error)) return false;
  if (error instanceof ImdsError) {
    const status = error.statusCode;
    // Token failures with v1 disabled, network errors (no status), throttling and server errors.
    return status === undefined || status === 429 || status >= 500;
  }
  return true;
}

export class ImdsClient {
  readonly endpoint: URL;
  private readonly disableImdsV1: boolean;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly retryBaseMs: number;
  private readonly tokenTtlSeconds: number;
  private readonly v1FallbackMs: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private token?: CachedToken;
  private tokenRequest?: Promise<string | undefined>;
  private v1FallbackUntil = 0;

  constructor(options: ImdsClientOptions = {}) {
    const env = options.env ?? process.env;
    this.endpoint = new URL(options.endpoint ?? env[IMDS_ENDPOINT_ENV] ?? IMDS_DEFAULT_ENDPOINT);
    this.disableImdsV1 = options.disableImdsV1 ?? false;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.attempts = options.attempts ?? 3;
    this.retryBaseMs = options.retryBaseMs ?? 250;
    this.tokenTtlSeconds = options.tokenTtlSeconds ?? 21600;
    this.v1FallbackMs = options.v1FallbackMs ?? 5 * 60_000;
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
  }

  /** GET a metadata path; the body with surrounding whitespace removed. */
  async get(path: string, options: { attempts?: number } = {}): Promise<string> {
    return retry(() => this.getOnce(path), {
      attempts: options.attempts ?? this.attempts,
      baseMs: this.retryBaseMs,
      capMs: 2000,
      jitter: 'equal',
      isRetryable,
      onRetry: (error, attempt, delayMs) =>
        this.logger.debug(`IMDS GET ${path} failed (${(error as Error).message}); try ${attempt + 2} in ${formatMs(delayMs)}`),
    });
  }

  /** IMDS answers at all (`GET /latest/meta-data`, one try): false on a host outside EC2. */
  async isAvailable(): Promise<boolean> {
    try {
      await this.get('/latest/meta-data', { attempts: 1 });
      return true;
    } catch (error) {
      this.logger.debug(`IMDS is not available: ${(error as Error).message}`);
      return false;
    }
  }

  async identityDocument(): Promise<IdentityDocument> {
    const text = await this.get(IDENTITY_DOCUMENT_PATH);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new ImdsError('The instance identity document from the metadata service is not JSON');
    }
    const { region, accountId, instanceId } = (doc ?? {}) as Record<string, unknown>;
    if (typeof region !== 'string' || typeof accountId !== 'string' || typeof instanceId !== 'string') {
      throw new ImdsError('The instance identity document from the metadata service lacks region, accountId or instanceId');
    }
    return { ...(doc as object), region: region.trim(), accountId: accountId.trim(), instanceId: instanceId.trim() };
  }

  /** Identity-document region; undefined when IMDS cannot be read (as in the anchor). */
  async region(): Promise<string | undefined> {
    return this.quietly(async () => (await this.identityDocument()).region);
  }

  async partition(): Promise<string | undefined> {
    return this.quietly(() => this.get('/latest/meta-data/services/partition'));
  }

  async domain(): Promise<string | undefined> {
    return this.quietly(() => this.get('/latest/meta-data/services/domain'));
  }

  async instanceId(): Promise<string> {
    return this.get('/latest/meta-data/instance-id');
  }

  /** `arn:<partition>:ec2:<region>:<account>:instance/<id>`; throws when IMDS cannot be read. */
  async hostIdentifier(): Promise<string> {
    const doc = await this.identityDocument();
    const partition = (await this.partition()) ?? partitionForRegion(doc.region);
    return `arn:${partition}:ec2:${doc.region}:${doc.accountId}:instance/${doc.instanceId}`;
  }

  private async quietly(read: () => Promise<string>): Promise<string | undefined> {
    try {
      return await read();
    } catch (error) {
      this.logger.debug(`IMDS read failed: ${(error as Error).message}`);
      return undefined;
    }
  }

  private async getOnce(path: string): Promise<string> {
    let token = await this.currentToken();
    let answer = await this.request('GET', path, token ? { [TOKEN_HEADER]: token } : {});
    if (answer.status === 401) {
      // The token expired or was revoked (or IMDSv2 became required): get a new one and try once more.
      this.token = undefined;
      this.v1FallbackUntil = 0;
      token = await this.currentToken();
      answer = await this.request('GET', path, token ? { [TOKEN_HEADER]: token } : {});
    }
    if (answer.status < 200 || answer.status > 299) {
      throw new ImdsError(`HTTP error from metadata service: ${answer.statusMessage}, code ${answer.status}`, answer.status);
    }
    return answer.body.trim();
  }

  /** The cached token, a fresh one, or undefined when we are on IMDSv1. */
  private async currentToken(): Promise<string | undefined> {
    const now = this.now();
    if (this.token && now < this.token.refreshAt) return this.token.value;
    if (!this.disableImdsV1 && now < this.v1FallbackUntil) return undefined;
    this.tokenRequest ??= this.fetchToken().finally(() => {
      this.tokenRequest = undefined;
    });
    return this.tokenRequest;
  }

  private async fetchToken(): Promise<string | undefined> {
    let failure: string;
    try {
      const answer = await this.request('PUT', TOKEN_PATH, { [TOKEN_TTL_HEADER]: String(this.tokenTtlSeconds) });
      if (answer.status >= 200 && answer.status <= 299 && answer.body.trim() !== '') {
        const value = answer.body.trim();
        registerSecret(value);
        const granted = Number(answer.headers[TOKEN_TTL_HEADER]);
        const ttlMs = (Number.isFinite(granted) && granted > 0 ? granted : this.tokenTtlSeconds) * 1000;
        // Renew a tenth of the TTL (at most a minute) early so no request goes out with a dying token.
        this.token = { value, refreshAt: this.now() + ttlMs - Math.min(60_000, ttlMs / 10) };
        this.v1FallbackUntil = 0;
        return value;
      }
      failure = `code ${answer.status}`;
    } catch (error) {
      failure = (error as Error).message;
    }
    if (this.disableImdsV1) throw new ImdsError(TOKEN_FAILED_MESSAGE);
    this.logger.warn(`${V1_FALLBACK_WARNING} (${failure})`);
    this.v1FallbackUntil = this.now() + this.v1FallbackMs;
    return undefined;
  }

  private request(method: 'GET' | 'PUT', path: string, headers: Record<string, string>): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          protocol: this.endpoint.protocol,
          hostname: this.endpoint.hostname.replace(/^\[|\]$/g, ''),
          port: this.endpoint.port || 80,
          method,
          path,
          headers,
          agent: false,
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            clearTimeout(deadline);
            resolve({
              status: res.statusCode ?? 0,
              statusMessage: res.statusMessage ?? '',
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            });
          });
          res.on('error', (error) => {
            clearTimeout(deadline);
            reject(new ImdsError(`metadata service request failed: ${error.message}`, undefined, { cause: error }));
          });
        },
      );
      // `timeout` above only covers idle sockets; this bounds the whole exchange.
      const deadline = setTimeout(() => req.destroy(new Error(`timed out after ${formatMs(this.timeoutMs)}`)), this.timeoutMs);
      req.on('timeout', () => req.destroy(new Error(`timed out after ${formatMs(this.timeoutMs)}`)));
      req.on('error', (error) => {
        clearTimeout(deadline);
        reject(new ImdsError(`metadata service request failed: ${error.message}`, undefined, { cause: error }));
      });
      req.end();
    });
  }
}

/** The partition a region belongs to, for when IMDS does not say. */
export function partitionForRegion(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('eusc-')) return 'aws-eusc';
  if (region.startsWith('us-iso-')) return 'aws-iso';
  if (region.startsWith('us-isob-')) return 'aws-iso-b';
  return 'aws';
}
