/**
 * A loopback GitHub for revision downloads: an "API" server that checks `Authorization: token <t>` and
 * answers `/repos/<owner>/<repo>/<tarball|zipball>/<ref>` with a 302 to a second server on another port (a
 * different origin, like codeload.github.com) that serves the archive bytes. Failures can be queued on
 * either side: statuses with headers (5xx, 429 + Retry-After, 403 rate limit) or a connection cut mid-body.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GitHubDoubleRequest {
  server: 'api' | 'codeload';
  method: string;
  url: string;
  authorization?: string;
  at: number;
}

export interface InjectedFailure {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface GitHubDouble {
  /** Pass as `apiBase`. */
  apiBase: string;
  codeloadOrigin: string;
  requests: GitHubDoubleRequest[];
  /** Serve `bytes` for this repository and ref, as `tar` (tarball) or `zip` (zipball). */
  setArchive(owner: string, repo: string, ref: string, format: 'tar' | 'zip', bytes: Buffer): void;
  /** The next `count` API calls answer with `failure` instead of the redirect. */
  failApi(count: number, failure: InjectedFailure): void;
  /** The next `count` archive downloads send headers and half the body, then drop the connection. */
  cutDownloads(count: number): void;
  /** Archive bodies are sent `chunkBytes` at a time every `intervalMs` (a slow link); `undefined` for full speed. */
  pace(chunkBytes?: number, intervalMs?: number): void;
  stop(): Promise<void>;
}

export interface GitHubDoubleOptions {
  /** When set, repositories are private: calls without `Authorization: token <token>` get 404 as on GitHub. */
  token?: string;
}

export async function startGitHubDouble(options: GitHubDoubleOptions = {}): Promise<GitHubDouble> {
  const requests: GitHubDoubleRequest[] = [];
  const archives = new Map<string, Buffer>();
  const apiFailures: InjectedFailure[] = [];
  let cuts = 0;
  let slow: { chunkBytes: number; intervalMs: number } | undefined;

  const codeload = http.createServer((req, res) => {
    requests.push({ server: 'codeload', method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, at: Date.now() });
    const path = (req.url ?? '').split('?')[0];
    const bytes = archives.get(path);
    if (!bytes) {
      res.writeHead(404).end('Not Found');
      return;
    }
    const contentType = path.includes('/legacy.zip/') ? 'application/zip' : 'application/x-gzip';
    res.writeHead(200, { 'content-type': contentType, 'content-length': String(bytes.length) });
    if (cuts > 0) {
      cuts--;
      res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => res.socket?.destroy());
      return;
    }
    if (slow) {
      const { chunkBytes, intervalMs } = slow;
      let sent = 0;
      const timer = setInterval(() => {
        const chunk = bytes.subarray(sent, sent + chunkBytes);
        sent += chunk.length;
        if (sent >= bytes.length) {
          clearInterval(timer);
          res.end(chunk);
        } else {
          res.write(chunk);
        }
      }, intervalMs);
      res.on('close', () => clearInterval(timer));
      return;
    }
    res.end(bytes);
  });
  await listen(codeload);
  const codeloadOrigin = `http://127.0.0.1:${(codeload.address() as AddressInfo).port}`;

  const api = http.createServer((req, res) => {
    requests.push({ server: 'api', method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, at: Date.now() });
    const match = /^\/repos\/([^/]+)\/([^/]+)\/(tarball|zipball)\/([^/?]+)$/.exec((req.url ?? '').split('?')[0]);
    if (!match) {
      json(res, 404, { message: 'Not Found' });
      return;
    }
    const failure = apiFailures.shift();
    if (failure) {
      res.writeHead(failure.status, { 'content-type': 'application/json', ...failure.headers });
      res.end(failure.body ?? JSON.stringify({ message: http.STATUS_CODES[failure.status] }));
      return;
    }
    if (options.token !== undefined) {
      const authorization = req.headers.authorization;
      if (authorization === undefined) {
        json(res, 404, { message: 'Not Found' });
        return;
      }
      if (authorization !== `token ${options.token}`) {
        json(res, 401, { message: 'Bad credentials' });
        return;
      }
    }
    const [, owner, repo, kind, ref] = match;
    const format = kind === 'zipball' ? 'legacy.zip' : 'legacy.tar.gz';
    // codeload URLs of private repositories carry a short-lived token of their own in the query.
    res.writeHead(302, { location: `${codeloadOrigin}/${owner}/${repo}/${format}/${ref}?token=CODELOADSECRET123` });
    res.end();
  });
  await listen(api);
  const apiBase = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;

  return {
    apiBase,
    codeloadOrigin,
    requests,
    setArchive(owner, repo, ref, format, bytes) {
      archives.set(`/${owner}/${repo}/${format === 'zip' ? 'legacy.zip' : 'legacy.tar.gz'}/${ref}`, bytes);
    },
    failApi(count, failure) {
      for (let i = 0; i < count; i++) apiFailures.push(failure);
    },
    cutDownloads(count) {
      cuts += count;
    },
    pace(chunkBytes, intervalMs) {
      slow = chunkBytes !== undefined && intervalMs !== undefined ? { chunkBytes, intervalMs } : undefined;
    },
    stop: async () => {
      await Promise.all([close(api), close(codeload)]);
    },
  };
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function listen(server: http.Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
