import { SignatureV4 } from '@smithy/signature-v4';
import { HttpRequest } from '@smithy/protocol-http';
import { Hash } from '@smithy/hash-node';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { AgentConfig } from '../config/agent-config.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import type { Envelope } from '../report/diagnostics.js';
import { AGENT_VERSION } from '../version.js';
import { formatMs } from '../util/duration.js';
import { abortError, retry } from '../util/retry.js';
import type { ThrottleGate } from '../util/throttle-gate.js';
import { readAgentVersion } from './agent-version.js';
import { SigningClock } from './clock-skew.js';
import {
  AGENT_VERSION_HEADER,
  JSON_CONTENT_TYPE,
  type CommandStatusOutput,
  type CommandsOperation,
  type DeploymentSpecificationOutput,
  type PollHostCommandOutput,
} from './commands-types.js';
import { decodeCommandsOutput } from './commands-outputs.js';
import { CommandsTransport, type RawAnswer } from './commands-transport.js';
import { commandsModel, resolveCommandsEndpoint } from './endpoint.js';
import type { CommandsServiceModel } from './endpoint.js';
import type { HostIdentity } from './identity.js';
import { decodeServiceError, isRetryableError, isRetryAtOnce, isThrottlingError, markRetryAtOnce } from './service-errors.js';

/**
 * Client of the CodeDeploy commands service (agent-spec §1): AWS JSON 1.1 over HTTPS, SigV4-signed,
 * one POST `/` per operation, with its retries. It only talks HTTP; what to do with a command is the
 * poller's business. The wire shapes are ./commands-types.ts, the sockets ./commands-transport.ts, the
 * signing clock ./clock-skew.ts.
 */

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

export class CommandsClient {
  readonly endpoint: URL;
  readonly model: CommandsServiceModel;
  readonly region: string;
  readonly agentVersion: string;
  private readonly signer: SignatureV4;
  private readonly transport: CommandsTransport;
  private readonly clock: SigningClock;
  private readonly maxAttempts: number;
  private readonly pollAttempts: number;
  private readonly retryBaseMs: number;
  private readonly retryCapMs: number;
  private readonly throttleGate?: ThrottleGate;
  private readonly logger: Logger;
  private readonly userAgent = `codedeploy-agent-ts/${AGENT_VERSION} node/${process.version}`;

  constructor(options: CommandsClientOptions) {
    this.endpoint = new URL(options.endpoint);
    if (this.endpoint.protocol !== 'https:' && this.endpoint.protocol !== 'http:') {
      throw new Error(`The commands endpoint must be an http(s) URL: ${options.endpoint}`);
    }
    this.model = commandsModel(options.enableAuthPolicy ?? false);
    this.region = options.region;
    this.agentVersion = options.agentVersion;
    this.maxAttempts = options.maxAttempts ?? 4;
    this.pollAttempts = options.pollAttempts ?? 1;
    this.retryBaseMs = options.retryBaseMs ?? 300;
    this.retryCapMs = options.retryCapMs ?? 20_000;
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
    this.clock = new SigningClock(this.logger);
    this.transport = new CommandsTransport({
      endpoint: this.endpoint,
      proxyUri: options.proxyUri,
      env: options.env ?? process.env,
      logger: this.logger,
      requestTimeoutMs: options.requestTimeoutMs ?? 80_000,
      staleSocketIdleMs: options.staleSocketIdleMs,
    });
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
      if (this.clock.correct(error, answer.headers.date)) markRetryAtOnce(error);
      if (isThrottlingError(error)) {
        const waitMs = this.throttleGate?.close();
        // A throttled poll is reported by the poll loop itself.
        if (waitMs && operation !== 'PollHostCommand') this.logger.warn(`${operation} was throttled (${error.errorType}); no request goes to the commands service for ${formatMs(waitMs)}`);
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
        isRetryable: (error) => isRetryableError(error) || isRetryAtOnce(error),
        delayFor: (error) => (isRetryAtOnce(error) ? 0 : undefined),
        onRetry: (error, attempt, delayMs) =>
          this.logger.debug(`${operation} failed (${(error as Error).message}); retry ${attempt + 1} in ${formatMs(delayMs)}`),
      });
    } catch (error) {
      // A request refused only because our clock was off, or lost on a keep-alive socket the server had
      // just closed, deserves one more try even when no retries were asked for (PollHostCommand).
      if (isRetryAtOnce(error) && !options.signal?.aborted) return once();
      throw error;
    }
  }

  /** Closes idle keep-alive sockets (call at shutdown). */
  close(): void {
    this.transport.close();
  }

  private async send(operation: CommandsOperation, body: string, signal?: AbortSignal): Promise<RawAnswer> {
    if (signal?.aborted) throw abortError(signal);
    const url = this.endpoint;
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
    const signed = (await this.signer.sign(request, { signingDate: this.clock.now() })) as HttpRequest;
    return this.transport.post(operation, signed, body, signal);
  }
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
