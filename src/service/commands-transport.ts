/**
 * One signed POST to the commands service and its raw answer: keep-alive sockets (through the proxy when
 * one applies, with AWS_SSL_CA_BUNDLE), the whole-request deadline, cancellation, and telling a reset on a
 * stale pooled socket apart from a network failure. What the answer means is ./commands-client.ts's business.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { HttpRequest } from '@smithy/protocol-http';
import type { Logger } from '../log/logger.js';
import { registerSecret } from '../log/redact.js';
import { formatMs } from '../util/duration.js';
import { abortError, isAbortError } from '../util/retry.js';
import type { CommandsOperation } from './commands-types.js';
import { proxyFor } from './proxy.js';
import { markRetryAtOnce, NETWORKING_ERROR, TIMEOUT_ERROR, transportError } from './service-errors.js';

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface CommandsTransportOptions {
  endpoint: URL;
  /** `:proxy_uri:`; otherwise HTTPS_PROXY / HTTP_PROXY from `env`, minus NO_PROXY hosts. */
  proxyUri?: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Whole-request deadline, ms. */
  requestTimeoutMs: number;
  /** A reset on a pooled socket idle longer than this is retried at once (see STALE_SOCKET_IDLE_MS). */
  staleSocketIdleMs?: number;
}

/**
 * A reset on a keep-alive socket that sat idle this long is taken for the server (or a proxy) having
 * closed it just as we reused it, and retried at once. Shorter idle times surface as network errors,
 * so a reset the fake service injects right after another call is seen by the caller.
 */
const STALE_SOCKET_IDLE_MS = 4_000;

export class CommandsTransport {
  private readonly endpoint: URL;
  private readonly agent: http.Agent | Promise<http.Agent>;
  private readonly logger: Logger;
  private readonly requestTimeoutMs: number;
  private readonly staleSocketIdleMs: number;
  /** When each pooled socket last became free. */
  private readonly idleSince = new WeakMap<object, number>();

  constructor(options: CommandsTransportOptions) {
    this.endpoint = options.endpoint;
    this.logger = options.logger;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.staleSocketIdleMs = options.staleSocketIdleMs ?? STALE_SOCKET_IDLE_MS;
    this.agent = makeAgent(this.endpoint, options.proxyUri, options.env, this.logger);
    void Promise.resolve(this.agent).then((agent) => agent.on('free', (socket: object) => this.idleSince.set(socket, Date.now())));
  }

  /** Sends `signed` (its body is `body`); rejects with a transport ServiceError or the abort reason. */
  async post(operation: CommandsOperation, signed: HttpRequest, body: string, signal?: AbortSignal): Promise<RawAnswer> {
    const url = this.endpoint;
    const isHttps = url.protocol === 'https:';
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
        finish(transportError(operation, TIMEOUT_ERROR, `no complete answer within ${formatMs(this.requestTimeoutMs)}`));
        req.destroy();
      }, this.requestTimeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          this.logger.debug(`${operation} → HTTP ${status} in ${formatMs(Date.now() - started)}`);
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
          markRetryAtOnce(failure);
        }
        finish(failure);
      });
      req.end(body);
    });
  }

  /** Closes idle keep-alive sockets (call at shutdown). */
  close(): void {
    void Promise.resolve(this.agent).then((agent) => agent.destroy());
  }
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
