import http from 'node:http';
import { readFileSync } from 'node:fs';
import { SignatureV4 } from '@smithy/signature-v4';
import { HttpRequest } from '@smithy/protocol-http';
import { Hash } from '@smithy/hash-node';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { AgentConfig } from '../config/agent-config.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { registerSecret } from '../log/redact.js';
import type { ServiceError } from '../report/errors.js';
import { AGENT_VERSION } from '../version.js';
import { abortError, isAbortError, retry } from '../util/retry.js';
import type { ThrottleGate } from '../util/throttle-gate.js';
import { readAgentVersion } from './agent-version.js';
import { decodeCommandsOutput } from './commands-outputs.js';
import { commandsModel, resolveCommandsEndpoint } from './endpoint.js';
import { proxyFor } from './proxy.js';
import type { CommandsServiceModel } from './endpoint.js';
import type { HostIdentity } from './identity.js';

export { matchesNoProxy, proxyFor } from './proxy.js';
import {
  CLOCK_SKEW_ERROR_TYPES,
  NETWORKING_ERROR,
  TIMEOUT_ERROR,
  decodeServiceError,
  isRetryableError,
  isThrottlingError,
  transportError,
} from './service-errors.js';

/**
 * Client of the CodeDeploy commands service (agent-spec §1): AWS JSON 1.1 over HTTPS, SigV4-signed,
 * one POST `/` per operation. It only talks HTTP; what to do with a command is the poller's business.
 */

export type CommandStatus = 'Pending' | 'InProgress' | 'Succeeded' | 'Failed';

/** `{Format, Payload}`; for diagnostics Format is always `JSON` (§1.6). */
export interface Envelope {
  Format: string;
  Payload: string;
}

export interface HostCommandInstance {
  HostCommandIdentifier: string;
  HostIdentifier: string;
  DeploymentExecutionId: string;
  CommandName: string;
  Nonce?: number;
}

export interface DeploymentSpecificationOutput {
  /** Must be `CodeDeploy` (the poller checks). */
  DeploymentSystem?: string;
  DeploymentSpecification?: {
    GenericEnvelope?: Envelope;
    VariantId?: string;
    VariantEnvelope?: Envelope;
  };
}

export interface PollHostCommandOutput {
  HostCommand?: HostCommandInstance | null;
}

export interface CommandStatusOutput {
  CommandStatus?: CommandStatus;
}

export type CommandsOperation =
  | 'PollHostCommand'
  | 'GetDeploymentSpecification'
  | 'PutHostCommandAcknowledgement'
  | 'PutHostCommandComplete'
  | 'PostHostCommandUpdate';

export const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';
export const AGENT_VERSION_HEADER = 'x-amz-codedeploy-agent-version';

export interface CommandsClientOptions {
  /** Base URL, e.g. `https://codedeploy-commands.us-east-1.amazonaws.com` (see resolveCommandsEndpoint). */
  endpoint: string;
  /** Signing region. */
  region: string;
  credentials: AwsCredentialIdentityProvider | AwsCredentialIdentity;
  /** `:enable_auth_policy:` → the secure model (signing name, target prefix). */
  enableAuthPolicy?: boolean;
  /** Value of `x-amz-codedeploy-agent-version` (readAgentVersion). */
  agentVersion: string;
  /** Whole-request deadline, ms; must exceed the service's long-poll hold. Default 80 000 (`http_read_timeout`). */
  requestTimeoutMs?: number;
  /** `:proxy_uri:`; otherwise HTTPS_PROXY / HTTP_PROXY from `env`, minus NO_PROXY hosts. */
  proxyUri?: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /**
   * Tries per call for everything but PollHostCommand. Default 4 (the SDK's 3 retries); retryable are
   * throttling, 5xx, network failures and timeouts.
   */
  maxAttempts?: number;
  /**
   * Tries per PollHostCommand. Default 1: the poller has its own backoff (§1.7), and retrying here
   * as well would multiply the load on a throttling service.
   */
  pollAttempts?: number;
  /** First retry delay, ms (full jitter, doubling). Default 300. */
  retryBaseMs?: number;
  /** Longest retry delay, ms. Default 20 000. */
  retryCapMs?: number;
  /** A reset on a pooled socket idle longer than this is retried at once (see STALE_SOCKET_IDLE_MS). */
  staleSocketIdleMs?: number;
  /**
   * Shared with the poll loop: a throttling answer to any operation closes it, and no request of any
   * operation is sent while it is closed.
   */
  throttleGate?: ThrottleGate;
}

export interface CallOptions {
  signal?: AbortSignal;
  attempts?: number;
}

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * A reset on a keep-alive socket that sat idle this long is taken for the server (or a proxy) having
 * closed it just as we reused it, and retried at once. Shorter idle times surface as network errors,
 * so a reset the fake service injects right after another call is seen by the caller.
 */
const STALE_SOCKET_IDLE_MS = 4_000;

/** The first instant after year 9999, which SigV4's YYYYMMDD dates cannot express. */
const LAST_SIGNABLE_TIME_MS = Date.UTC(10_000, 0, 1);

/** Clock skew beyond which the signing clock is corrected from the service's Date header. */
const CLOCK_SKEW_TOLERANCE_MS = 4 * 60_000;

export class CommandsClient {
  readonly endpoint: URL;
  readonly model: CommandsServiceModel;
  readonly region: string;
  readonly agentVersion: string;
  private readonly signer: SignatureV4;
  private readonly agent: http.Agent | Promise<http.Agent>;
  private readonly requestTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly pollAttempts: number;
  private readonly retryBaseMs: number;
  private readonly retryCapMs: number;
  private readonly staleSocketIdleMs: number;
  private readonly throttleGate?: ThrottleGate;
  private readonly logger: Logger;
  private readonly userAgent = `codedeploy-agent-ts/${AGENT_VERSION} node/${process.version}`;
  private clockOffsetMs = 0;
  /** When each pooled socket last became free. */
  private readonly idleSince = new WeakMap<object, number>();

  constructor(options: CommandsClientOptions) {
    this.endpoint = new URL(options.endpoint);
    if (this.endpoint.protocol !== 'https:' && this.endpoint.protocol !== 'http:') {
      throw new Error(`The commands endpoint must be an http(s) URL: ${options.endpoint}`);
    }
    this.model = commandsModel(options.enableAuthPolicy ?? false);
    this.region = options.region;
    this.agentVersion = options.agentVersion;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 80_000;
    this.maxAttempts = options.maxAttempts ?? 4;
    this.pollAttempts = options.pollAttempts ?? 1;
    this.retryBaseMs = options.retryBaseMs ?? 300;
    this.retryCapMs = options.retryCapMs ?? 20_000;
    this.staleSocketIdleMs = options.staleSocketIdleMs ?? STALE_SOCKET_IDLE_MS;
    this.throttleGate = options.throttleGate;
    this.logger = options.logger ?? silentLogger;
    const credentials = options.credentials;
    this.signer = new SignatureV4({
      service: this.model.signingName,
      region: options.region,
      // A provider is asked on every request, so rotated credentials are used as soon as it returns them.
      credentials: typeof credentials === 'function' ? credentials : async () => credentials,
      sha256: Hash.bind(null, 'sha256'),
    });
    this.agent = makeAgent(this.endpoint, options.proxyUri, options.env ?? process.env, this.logger);
    void Promise.resolve(this.agent).then((agent) => agent.on('free', (socket: object) => this.idleSince.set(socket, Date.now())));
  }

  /**
   * Long poll for the next command. `HostCommand` is absent or null when the service has none. Outputs
   * keep the model's shapes (PascalCase members) throughout.
   */
  async pollHostCommand(hostIdentifier: string, signal?: AbortSignal): Promise<PollHostCommandOutput> {
    return this.call<PollHostCommandOutput>('PollHostCommand', { HostIdentifier: hostIdentifier }, { signal, attempts: this.pollAttempts });
  }

  async getDeploymentSpecification(deploymentExecutionId: string, hostIdentifier: string, signal?: AbortSignal): Promise<DeploymentSpecificationOutput> {
    return this.call<DeploymentSpecificationOutput>(
      'GetDeploymentSpecification',
      { DeploymentExecutionId: deploymentExecutionId, HostIdentifier: hostIdentifier },
      { signal },
    );
  }

  /** `CommandStatus` is the service's view: `Succeeded`/`Failed` mean "do not run it" (§1.5). */
  async putHostCommandAcknowledgement(hostCommandIdentifier: string, diagnostics?: Envelope, signal?: AbortSignal): Promise<CommandStatusOutput> {
    return this.call<CommandStatusOutput>(
      'PutHostCommandAcknowledgement',
      { HostCommandIdentifier: hostCommandIdentifier, ...(diagnostics ? { Diagnostics: diagnostics } : {}) },
      { signal },
    );
  }

  async putHostCommandComplete(
    hostCommandIdentifier: string,
    status: 'Succeeded' | 'Failed',
    diagnostics?: Envelope,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.call(
      'PutHostCommandComplete',
      { HostCommandIdentifier: hostCommandIdentifier, CommandStatus: status, ...(diagnostics ? { Diagnostics: diagnostics } : {}) },
      { signal },
    );
  }

  /** In the model but never called by the anchor (no progress reporting exists). */
  async postHostCommandUpdate(
    hostCommandIdentifier: string,
    update: { estimatedCompletionTime?: Date; diagnostics?: Envelope } = {},
    signal?: AbortSignal,
  ): Promise<CommandStatusOutput> {
    return this.call<CommandStatusOutput>(
      'PostHostCommandUpdate',
      {
        HostCommandIdentifier: hostCommandIdentifier,
        ...(update.estimatedCompletionTime ? { EstimatedCompletionTime: Math.floor(update.estimatedCompletionTime.getTime() / 1000) } : {}),
        ...(update.diagnostics ? { Diagnostics: update.diagnostics } : {}),
      },
      { signal },
    );
  }

  /** One operation with retries: resolves to the parsed output, rejects with ServiceError (or the abort reason). */
  async call<T = Record<string, unknown>>(operation: CommandsOperation, input: Record<string, unknown>, options: CallOptions = {}): Promise<T> {
    const body = JSON.stringify(input);
    const once = async (): Promise<T> => {
      await this.throttleGate?.wait(options.signal);
      const answer = await this.send(operation, body, options.signal);
      if (answer.status >= 200 && answer.status <= 299) return decodeCommandsOutput(operation, answer.status, answer.body) as T;
      const errorTypeHeader = answer.headers['x-amzn-errortype'];
      const error = decodeServiceError(operation, answer.status, answer.body, typeof errorTypeHeader === 'string' ? errorTypeHeader : undefined);
      this.logger.debug(`${operation} answered HTTP ${answer.status} ${error.errorType}: ${error.body || '(no body)'}`);
      this.noteClockSkew(error, answer.headers.date);
      if (isThrottlingError(error)) {
        const waitMs = this.throttleGate?.close();
        // A throttled poll is reported by the poll loop itself.
        if (waitMs && operation !== 'PollHostCommand') this.logger.warn(`${operation} was throttled (${error.errorType}); no request goes to the commands service for ${(waitMs / 1000).toFixed(1)} s`);
      }
      throw error;
    };
    try {
      return await retry(once, {
        attempts: options.attempts ?? this.maxAttempts,
        baseMs: this.retryBaseMs,
        capMs: this.retryCapMs,
        jitter: 'full',
        signal: options.signal,
        isRetryable: (error) => isRetryableError(error) || retryAtOnce(error),
        delayFor: (error) => (retryAtOnce(error) ? 0 : undefined),
        onRetry: (error, attempt, delayMs) =>
          this.logger.debug(`${operation} failed (${(error as Error).message}); retry ${attempt + 1} in ${delayMs} ms`),
      });
    } catch (error) {
      // A request refused only because our clock was off, or lost on a keep-alive socket the server had
      // just closed, deserves one more try even when no retries were asked for (PollHostCommand).
      if (retryAtOnce(error) && !options.signal?.aborted) return once();
      throw error;
    }
  }

  /** Closes idle keep-alive sockets (call at shutdown). */
  close(): void {
    void Promise.resolve(this.agent).then((agent) => agent.destroy());
  }

  /** The service's clock is far from ours: sign with its time from now on (as the SDKs do). */
  private noteClockSkew(error: ServiceError, dateHeader: string | undefined): void {
    if (!CLOCK_SKEW_ERROR_TYPES.has(error.errorType) || !dateHeader) return;
    const serverTime = Date.parse(dateHeader);
    // Only a time SigV4 can write (years 1970-9999): Date.parse takes years up to 275760, and signing
    // with such an offset throws a RangeError on every request from then on.
    if (!Number.isFinite(serverTime) || serverTime < 0 || serverTime >= LAST_SIGNABLE_TIME_MS) return;
    const offset = serverTime - Date.now();
    if (Math.abs(offset - this.clockOffsetMs) > CLOCK_SKEW_TOLERANCE_MS) {
      this.logger.warn(`The commands service's clock differs from ours by ${Math.round(offset / 1000)} s; signing with its time`);
      this.clockOffsetMs = offset;
      Object.defineProperty(error, 'retryAtOnce', { value: true });
    }
  }

  private async send(operation: CommandsOperation, body: string, signal?: AbortSignal): Promise<RawAnswer> {
    if (signal?.aborted) throw abortError(signal);
    const url = this.endpoint;
    const isHttps = url.protocol === 'https:';
    const request = new HttpRequest({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname || '/',
      headers: {
        host: url.host,
        'content-type': JSON_CONTENT_TYPE,
        'x-amz-target': `${this.model.targetPrefix}.${operation}`,
        [AGENT_VERSION_HEADER]: this.agentVersion,
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': this.userAgent,
      },
      body,
    });
    // Credential provider failures (no instance profile, unreadable session file) pass through unchanged.
    const signed = (await this.signer.sign(request, { signingDate: new Date(Date.now() + this.clockOffsetMs) })) as HttpRequest;
    const agent = await this.agent;
    const started = Date.now();
    return new Promise<RawAnswer>((resolve, reject) => {
      let settled = false;
      const finish = (error: Error | undefined, answer?: RawAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        signal?.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve(answer!);
      };
      const req = (isHttps ? process.getBuiltinModule('node:https') : http).request({
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || (isHttps ? 443 : 80),
        path: signed.path,
        method: 'POST',
        headers: signed.headers,
        agent,
      });
      const onAbort = () => {
        finish(abortError(signal!));
        req.destroy();
      };
      const deadline = setTimeout(() => {
        finish(transportError(operation, TIMEOUT_ERROR, `no complete answer within ${this.requestTimeoutMs} ms`));
        req.destroy();
      }, this.requestTimeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          this.logger.debug(`${operation} → HTTP ${status} in ${Date.now() - started} ms`);
          finish(undefined, { status, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (error) => finish(transportError(operation, NETWORKING_ERROR, describe(error), error)));
        res.on('aborted', () => finish(transportError(operation, NETWORKING_ERROR, 'the connection closed mid-answer')));
      });
      req.on('error', (error) => {
        if (isAbortError(error) && signal?.aborted) {
          finish(abortError(signal));
          return;
        }
        const failure = transportError(operation, NETWORKING_ERROR, describe(error), error);
        // The server closed an idle keep-alive socket just as we reused it (a race Node documents).
        const idle = req.socket ? this.idleSince.get(req.socket) : undefined;
        if (req.reusedSocket && (error as NodeJS.ErrnoException).code === 'ECONNRESET' && idle !== undefined && Date.now() - idle > this.staleSocketIdleMs) {
          Object.defineProperty(failure, 'retryAtOnce', { value: true });
        }
        finish(failure);
      });
      req.end(body);
    });
  }
}

/** Failures that are not the service's answer to this request: the clock was corrected, or a stale socket. */
function retryAtOnce(error: unknown): boolean {
  return (error as { retryAtOnce?: boolean } | undefined)?.retryAtOnce === true;
}

function describe(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code && !error.message.includes(code) ? `${code} ${error.message}` : error.message;
}

/**
 * Keep-alive agent; tunnelling through the proxy (CONNECT) when one applies. node:https (and with it TLS:
 * 2.5 MB of an idle agent's memory) and https-proxy-agent are loaded only when the endpoint or the proxy
 * needs them (docs/decisions.md, "Single executable").
 */
function makeAgent(endpoint: URL, proxyUri: string | undefined, env: NodeJS.ProcessEnv, logger: Logger): http.Agent | Promise<http.Agent> {
  const isHttps = endpoint.protocol === 'https:';
  const caFile = env.AWS_SSL_CA_BUNDLE;
  let ca: Buffer | undefined;
  if (isHttps && caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (error) {
      logger.warn(`AWS_SSL_CA_BUNDLE ${caFile} is not readable (${(error as Error).message}); using the default CAs`);
    }
  }
  const proxy = proxyFor(endpoint, proxyUri, env);
  if (proxy) {
    const proxyUrl = new URL(proxy);
    registerSecret(decodeURIComponent(proxyUrl.password));
    logger.info(`Commands service requests go through the proxy ${proxyUrl.protocol}//${proxyUrl.host}`);
    return import('https-proxy-agent').then(({ HttpsProxyAgent }) => new HttpsProxyAgent(proxyUrl, { keepAlive: true, ...(ca ? { ca } : {}) }));
  }
  return isHttps ? new (process.getBuiltinModule('node:https').Agent)({ keepAlive: true, ...(ca ? { ca } : {}) }) : new http.Agent({ keepAlive: true });
}

export interface CreateCommandsClientOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Overrides for tests (retry timing and the like). */
  overrides?: Partial<CommandsClientOptions>;
}

/** The client the daemon uses: endpoint from the config and the host's identity, version from `.version`. */
export function createCommandsClient(config: AgentConfig, identity: HostIdentity, options: CreateCommandsClientOptions = {}): CommandsClient {
  const logger = options.logger ?? silentLogger;
  const endpoint = resolveCommandsEndpoint({
    deployControlEndpoint: config.deploy_control_endpoint,
    enableAuthPolicy: config.enable_auth_policy,
    useFipsMode: config.use_fips_mode,
    region: identity.region,
    imdsDomain: identity.domain,
    onPremises: identity.onPremisesConfigReadable,
  });
  logger.info(`CodeDeploy endpoint: ${endpoint.url}`);
  return new CommandsClient({
    endpoint: endpoint.url,
    region: endpoint.region,
    credentials: identity.credentials,
    enableAuthPolicy: config.enable_auth_policy,
    agentVersion: readAgentVersion(config.root_dir, logger),
    requestTimeoutMs: config.http_read_timeout * 1000,
    proxyUri: config.proxy_uri,
    env: options.env,
    logger,
    ...options.overrides,
  });
}
