/**
 * Fetches a GitHub revision as a tarball or zipball (agent-spec §3.4), with what the Ruby agent lacked
 * (§10.28): `:proxy_uri:` is honoured (and, without it, HTTPS_PROXY/NO_PROXY as the Ruby agent's open-uri did), network errors are retried like HTTP errors, rate limits wait for
 * the time GitHub names, and the token is only ever sent to the API host — never to the codeload host a
 * redirect points at — and never logged.
 */
import http from 'node:http';
import https from 'node:https';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpsProxyAgent } from 'https-proxy-agent';
import type { Revision } from '../deployment/spec-types.js';
import type { Logger } from '../log/logger.js';
import { redact, registerSecret } from '../log/redact.js';
import { RevisionError } from '../report/errors.js';
import { proxyFor } from '../service/proxy.js';
import { AGENT_VERSION } from '../version.js';
import { retry } from '../util/retry.js';
import { isNetworkError } from '../util/network-errors.js';
import { formatMs } from '../util/duration.js';
import { transferSummary } from './progress.js';

export type GitHubRevision = Extract<Revision, { type: 'GitHub' }>;

export const GITHUB_API_BASE = 'https://api.github.com';

export interface GitHubDownloadOptions {
  /** The deployment's `GitHubAccessToken`; anonymous when absent. */
  token?: string;
  /** Default `https://api.github.com` (GitHub Enterprise: `https://<host>/api/v3`). */
  apiBase?: string;
  /** `:proxy_uri:`; without it HTTPS_PROXY / HTTP_PROXY from `env` apply, minus NO_PROXY hosts. */
  proxyUri?: string;
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  onProgress?: (progress: { bytes: number; total?: number }) => void;
  signal?: AbortSignal;
  logger: Logger;
  /** Waits before each retry; its length is the number of retries. Default 10 s, 30 s, 90 s as the Ruby agent. */
  retryDelaysMs?: number[];
  /** Upper bound on a wait that GitHub asks for with Retry-After / x-ratelimit-reset (default 5 min). */
  maxRetryWaitMs?: number;
  /** A connection silent this long is dropped and retried (default 60 s). */
  idleTimeoutMs?: number;
}

const DEFAULT_RETRY_DELAYS_MS = [10_000, 30_000, 90_000];
const MAX_REDIRECTS = 5;
/** Statuses where waiting helps; anything else (404, 401, ...) will not change on its own. */
const RETRIABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** `<apiBase>/repos/<Account>/<Repository>/<tarball|zipball>/<CommitId>`. */
export function gitHubArchiveUrl(revision: GitHubRevision, apiBase = GITHUB_API_BASE): string {
  const format = (revision.bundleType ?? 'tar') === 'zip' ? 'zipball' : 'tarball';
  const segment = (value: string): string => {
    // encodeURIComponent leaves dots alone, and a URL resolves '.' and '..' segments: a commit of '..'
    // would ask the API for another repository's archive with the deployment's token.
    if (value === '' || value === '.' || value === '..') {
      throw new RevisionError(`GitHub revision ${revision.account}/${revision.repository}@${revision.commitId} cannot be fetched: '${value}' is not a GitHub account, repository or commit name`);
    }
    return encodeURIComponent(value);
  };
  return `${apiBase.replace(/\/+$/, '')}/repos/${segment(revision.account)}/${segment(revision.repository)}/${format}/${segment(revision.commitId)}`;
}

export async function downloadGitHubBundle(
  revision: GitHubRevision,
  destFile: string,
  options: GitHubDownloadOptions,
): Promise<{ bundleType: 'tar' | 'zip' }> {
  const bundleType = revision.bundleType ?? 'tar';
  if (bundleType !== 'tar' && bundleType !== 'zip') {
    // Wording (and the missing bracket) as the Ruby agent.
    throw new RevisionError(`GitHub revision specified with bundle_type other than zip or tar [bundle_type=${String(bundleType)}`);
  }
  if (options.token) registerSecret(options.token);
  const url = gitHubArchiveUrl({ ...revision, bundleType }, options.apiBase);
  const delays = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  const tempFile = `${destFile}.download`;
  const agents = new ProxyAgents(options);
  const failures: string[] = [];
  const { logger } = options;
  try {
    await mkdir(dirname(destFile), { recursive: true });
    logger.info(`Downloading GitHub revision ${revision.account}/${revision.repository}@${revision.commitId} (${bundleType}) from ${url}${options.token ? '' : ' anonymously'}`);
    const started = Date.now();
    await retry(
      async () => {
        try {
          const bytes = await fetchToFile(url, tempFile, options, agents);
          await rename(tempFile, destFile);
          const seconds = (Date.now() - started) / 1000;
          logger.info(`Downloaded ${url}: ${transferSummary(bytes, seconds)}`);
        } catch (error) {
          if (error instanceof HttpStatusError) failures.push(`${error.status} '${error.reason}'`);
          else if (isNetworkError(error)) failures.push(`network error '${networkErrorText(error)}'`);
          throw error;
        }
      },
      {
        attempts: delays.length + 1,
        baseMs: 0,
        capMs: 0,
        signal: options.signal,
        isRetryable: (error) => (error instanceof HttpStatusError ? error.retriable : isNetworkError(error)),
        // The Ruby agent's fixed schedule, stretched to what GitHub asks for (Retry-After / rate-limit reset), within a cap.
        delayFor: (error, attempt) => {
          const hinted = error instanceof HttpStatusError ? (error.retryAfterMs ?? 0) : 0;
          return Math.min(Math.max(delays[attempt], hinted), Math.max(delays[attempt], options.maxRetryWaitMs ?? 300_000));
        },
        onRetry: (_error, attempt, delayMs) =>
          logger.warn(redact(`Download of '${url}' failed (${failures[failures.length - 1]}); retry ${attempt + 1}/${delays.length} in ${formatMs(delayMs)}`)),
      },
    );
    return { bundleType };
  } catch (error) {
    await rm(tempFile, { force: true });
    await rm(destFile, { force: true });
    throw toRevisionError(error, url, failures, delays.length, revision, options);
  } finally {
    agents.destroy();
  }
}

/** The proxy agent for each host a download touches (the API host, then the host a redirect points at). */
class ProxyAgents {
  private readonly byProxy = new Map<string, http.Agent>();
  constructor(private readonly options: GitHubDownloadOptions) {}

  for(url: URL): http.Agent | undefined {
    const proxy = proxyFor(url, this.options.proxyUri, this.options.env ?? process.env);
    if (!proxy) return undefined;
    let agent = this.byProxy.get(proxy);
    if (!agent) {
      registerSecret(safeDecode(new URL(proxy).password));
      agent = new HttpsProxyAgent(proxy);
      this.byProxy.set(proxy, agent);
    }
    return agent;
  }

  destroy(): void {
    for (const agent of this.byProxy.values()) agent.destroy();
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function toRevisionError(
  error: unknown,
  url: string,
  failures: string[],
  retries: number,
  revision: GitHubRevision,
  options: GitHubDownloadOptions,
): RevisionError {
  if (error instanceof RevisionError) return error;
  if (options.signal?.aborted) return new RevisionError(`Download of '${url}' was cancelled`, undefined, { cause: error });
  let message: string;
  if (error instanceof HttpStatusError && !error.retriable) {
    message = permanentFailureMessage(url, error, revision, options);
  } else if (error instanceof HttpStatusError || isNetworkError(error)) {
    // Retries used up; the wording is the Ruby agent's.
    message = `Could not download bundle at '${url}' after ${retries} retries. Server returned codes: ${failures.join('; ')}.`;
  } else {
    message = `Could not download bundle at '${url}': ${(error as Error | undefined)?.message ?? String(error)}`;
  }
  return new RevisionError(redact(message), undefined, { cause: error });
}

class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly retriable: boolean,
    readonly retryAfterMs: number | undefined,
    readonly bodySnippet: string,
  ) {
    super(`${status} '${reason}'`);
  }
}

/** One attempt: follows redirects itself so the token stays on the API's origin. Resolves to the byte count. */
async function fetchToFile(
  startUrl: string,
  tempFile: string,
  options: GitHubDownloadOptions,
  agents: ProxyAgents,
): Promise<number> {
  const apiOrigin = new URL(startUrl).origin;
  let url = new URL(startUrl);
  for (let hop = 0; ; hop++) {
    const sendToken = Boolean(options.token) && url.origin === apiOrigin;
    const response = await request(url, sendToken ? options.token : undefined, options, agents.for(url));
    const status = response.statusCode ?? 0;
    if (status >= 300 && status < 400 && response.headers.location) {
      response.resume();
      if (hop >= MAX_REDIRECTS) throw new HttpStatusError(status, `more than ${MAX_REDIRECTS} redirects`, false, undefined, '');
      const next = redirectTarget(response.headers.location, url);
      if (typeof next === 'string') throw new HttpStatusError(status, next, false, undefined, '');
      // The query of a codeload URL holds a short-lived token of its own: log origin and path only.
      options.logger.debug(`GitHub answered ${status}; following to ${next.origin}${next.pathname}`);
      url = next;
      continue;
    }
    if (status < 200 || status >= 300) {
      const body = await readSnippet(response);
      throw statusError(status, response, body);
    }
    const lengthHeader = Number(response.headers['content-length']);
    const total = Number.isFinite(lengthHeader) && lengthHeader > 0 ? lengthHeader : undefined;
    let bytes = 0;
    options.onProgress?.({ bytes, total });
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        options.onProgress?.({ bytes, total });
        callback(null, chunk);
      },
    });
    await pipeline(response, counter, createWriteStream(tempFile), { signal: options.signal });
    if (total !== undefined && bytes !== total) {
      throw Object.assign(new Error(`connection closed after ${bytes} of ${total} bytes`), { code: 'ECONNRESET' });
    }
    return bytes;
  }
}

/**
 * Where a redirect leads, or why it is not followed: a Location that is no URL, or a scheme other than
 * http(s) (Node's request throws a TypeError on `file:` or `data:`).
 */
function redirectTarget(location: string, from: URL): URL | string {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    return `redirect to an invalid location (${location.slice(0, 100)})`;
  }
  if (next.protocol !== 'https:' && next.protocol !== 'http:') return `redirect to a ${next.protocol} URL, which is not followed`;
  return next;
}

function request(
  url: URL,
  token: string | undefined,
  options: GitHubDownloadOptions,
  agent: http.Agent | undefined,
): Promise<http.IncomingMessage> {
  const headers: Record<string, string> = {
    'User-Agent': `codedeploy-agent/${AGENT_VERSION}`,
    Accept: '*/*',
  };
  if (token) headers.Authorization = `token ${token}`;
  const send = url.protocol === 'http:' ? http.request : https.request;
  return new Promise((resolve, reject) => {
    const req = send(url, { method: 'GET', headers, agent, signal: options.signal }, resolve);
    // A socket timeout: it keeps guarding the body after the headers are in.
    req.setTimeout(options.idleTimeoutMs ?? 60_000, () => {
      req.destroy(Object.assign(new Error(`no data from ${url.host} for ${formatMs(options.idleTimeoutMs ?? 60_000)}`), { code: 'ETIMEDOUT' }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function readSnippet(response: http.IncomingMessage, limit = 4096): Promise<string> {
  let text = '';
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      if (text.length < limit) text += chunk.toString('utf8');
    }
  } catch {
    // The status line is what matters; a broken error body is not worth failing over.
  }
  return text.slice(0, limit);
}

function statusError(status: number, response: http.IncomingMessage, body: string): HttpStatusError {
  const reason = response.statusMessage || http.STATUS_CODES[status] || 'Unknown';
  const remaining = header(response, 'x-ratelimit-remaining');
  const rateLimited =
    status === 429 || (status === 403 && (remaining === '0' || header(response, 'retry-after') !== undefined || /rate limit/i.test(body)));
  const retriable = rateLimited || RETRIABLE_STATUSES.has(status) || status >= 500;
  return new HttpStatusError(status, reason, retriable, retriable ? retryAfterMs(response) : undefined, body);
}

/** Retry-After (seconds or an HTTP date), else x-ratelimit-reset (epoch seconds) when the limit is spent. */
function retryAfterMs(response: http.IncomingMessage): number | undefined {
  const retryAfter = header(response, 'retry-after');
  if (retryAfter !== undefined) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const date = Date.parse(retryAfter);
    if (Number.isFinite(date)) return Math.max(0, date - Date.now());
  }
  const reset = Number(header(response, 'x-ratelimit-reset'));
  if (header(response, 'x-ratelimit-remaining') === '0' && Number.isFinite(reset) && reset > 0) {
    return Math.max(0, reset * 1000 - Date.now());
  }
  return undefined;
}

function header(response: http.IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function permanentFailureMessage(url: string, error: HttpStatusError, revision: GitHubRevision, options: GitHubDownloadOptions): string {
  let hint = '';
  if (error.status === 404) {
    hint = options.token
      ? ` Check that ${revision.account}/${revision.repository} and commit ${revision.commitId} exist and that the token can read the repository.`
      : ` Check that ${revision.account}/${revision.repository} and commit ${revision.commitId} exist; a private repository needs a GitHub token (connect CodeDeploy to GitHub).`;
  } else if (error.status === 401) {
    hint = ' The GitHub token was refused: it may have expired or been revoked; reconnect CodeDeploy to GitHub.';
  } else if (error.status === 403) {
    hint = ' GitHub refused access: check the token\'s permissions on the repository (or SSO authorisation for the organisation).';
  }
  const detail = githubMessage(error.bodySnippet);
  return `Could not download bundle at '${url}': server returned ${error.status} '${error.reason}'${detail ? ` (${detail})` : ''}.${hint}`;
}

function githubMessage(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    return typeof parsed.message === 'string' ? parsed.message.slice(0, 200) : undefined;
  } catch {
    return undefined;
  }
}

function networkErrorText(error: unknown): string {
  const err = error as { code?: unknown; message?: string };
  return typeof err.code === 'string' ? `${err.code}${err.message && !err.message.includes(err.code) ? `: ${err.message}` : ''}` : String(err.message);
}
