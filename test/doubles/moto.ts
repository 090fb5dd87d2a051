/**
 * A real S3 for tests: `moto_server` on a loopback port, started and stopped by the test that uses it, plus
 * an optional "front" proxy between the client and moto that injects the failures moto cannot produce
 * (a connection reset in the middle of a ranged GET, 403s, wrong-region answers).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { findTestTool, missingTool } from '../helpers/prerequisites.js';

export interface MotoServer {
  /** `http://127.0.0.1:<port>`; use with `forcePathStyle: true`. */
  endpoint: string;
  pid: number;
  stop(): Promise<void>;
}

/** Where `moto_server` is (PATH, or where `npm test` set it up), or undefined; tests skip (saying why) when it is missing. */
export function findMotoServer(): string | undefined {
  return findTestTool('moto_server');
}

export const motoMissingReason = missingTool('moto_server');

export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts `moto_server -H 127.0.0.1 -p <free port>` and resolves once it answers HTTP. */
export async function startMoto(timeoutMs = 30_000): Promise<MotoServer> {
  const executable = findMotoServer();
  if (!executable) throw new Error(motoMissingReason);
  const port = await freePort();
  const child = spawn(executable, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('moto_server did not start');
  // If the test process dies first, do not leave the server behind.
  const killOnExit = (): void => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', killOnExit);
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${stderr}`);
    if (await answers(endpoint)) break;
    if (Date.now() > deadline) {
      await stopChild(child, pid);
      throw new Error(`moto_server did not answer on ${endpoint} within ${timeoutMs} ms: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    endpoint,
    pid,
    stop: async () => {
      process.removeListener('exit', killOnExit);
      await stopChild(child, pid);
    },
  };
}

function answers(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${endpoint}/moto-api/`, (res) => {
      res.resume();
      resolve(true);
    });
    req.setTimeout(1000, () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** SIGTERM to our own child by pid, SIGKILL after 5 s. */
async function stopChild(child: ChildProcess, pid: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(pid, 'SIGTERM');
  const timer = setTimeout(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 5000);
  await exited;
  clearTimeout(timer);
}

export interface FrontRequest {
  method: string;
  /** Path and query as received (path-style: `/<bucket>/<key>?...`). */
  url: string;
  range?: string;
  ifMatch?: string;
  /** The region in the SigV4 credential scope of the request. */
  signedRegion?: string;
  /** What the front did: `proxied`, `reset`, `failed`, `denied`, `redirected`. */
  outcome: string;
}

export interface S3Front {
  endpoint: string;
  requests: FrontRequest[];
  /** The next `count` ranged GETs are cut after `afterBytes` bytes of body (connection destroyed). */
  resetRangedGets(count: number, afterBytes?: number): void;
  /** The next `count` ranged GETs are answered `status` (503 SlowDown by default) without reaching moto. */
  failRangedGets(count: number, status?: number): void;
  /** Requests whose path contains `pathPart` get 403 AccessDenied. */
  deny(pathPart: string): void;
  /**
   * Requests for `bucket` signed for another region than `region` are refused as S3 does: `header` →
   * 301 with `x-amz-bucket-region` (any method); `body` → GETs only get 400 AuthorizationHeaderMalformed
   * naming the region in the XML body and no header.
   */
  bucketInRegion(bucket: string, region: string, style: 'header' | 'body'): void;
  /** Runs `action` (e.g. overwrite the object) before forwarding the `nth` ranged GET from now on. */
  beforeRangedGet(nth: number, action: () => Promise<void>): void;
  stop(): Promise<void>;
}

/** A loopback HTTP proxy in front of `target` (moto) that can misbehave on request. */
export async function startS3Front(target: string): Promise<S3Front> {
  const upstream = new URL(target);
  const requests: FrontRequest[] = [];
  let resets: { count: number; afterBytes: number } = { count: 0, afterBytes: 0 };
  let failures: { count: number; status: number } = { count: 0, status: 503 };
  const denied: string[] = [];
  const regions = new Map<string, { region: string; style: 'header' | 'body' }>();
  let pending: { remaining: number; action: () => Promise<void> } | undefined;

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const path = decodeURIComponent(url.split('?')[0]);
    const record: FrontRequest = {
      method: req.method ?? 'GET',
      url,
      range: req.headers.range,
      ifMatch: req.headers['if-match'] as string | undefined,
      signedRegion: /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(req.headers.authorization ?? '')?.[1],
      outcome: 'proxied',
    };
    requests.push(record);
    const bucket = path.split('/')[1] ?? '';
    const regionRule = regions.get(bucket);
    if (regionRule && record.signedRegion !== regionRule.region) {
      if (regionRule.style === 'header') {
        record.outcome = 'redirected';
        const body = req.method === 'HEAD' ? '' : errorXml('PermanentRedirect', 'The bucket you are attempting to access must be addressed using the specified endpoint.', `<Endpoint>${bucket}.s3.${regionRule.region}.amazonaws.com</Endpoint><Bucket>${bucket}</Bucket>`);
        res.writeHead(301, { 'x-amz-bucket-region': regionRule.region, 'content-type': 'application/xml' });
        res.end(body);
        return;
      }
      if (req.method === 'GET') {
        record.outcome = 'redirected';
        res.writeHead(400, { 'content-type': 'application/xml' });
        res.end(errorXml('AuthorizationHeaderMalformed', `The authorization header is malformed; the region '${record.signedRegion}' is wrong; expecting '${regionRule.region}'`, `<Region>${regionRule.region}</Region>`));
        return;
      }
    }
    if (denied.some((part) => path.includes(part))) {
      record.outcome = 'denied';
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end(req.method === 'HEAD' ? '' : errorXml('AccessDenied', 'Access Denied', ''));
      return;
    }
    const ranged = req.method === 'GET' && req.headers.range !== undefined;
    if (ranged && failures.count > 0) {
      failures.count--;
      record.outcome = 'failed';
      req.resume();
      res.writeHead(failures.status, { 'content-type': 'application/xml' });
      res.end(errorXml(failures.status === 503 ? 'SlowDown' : 'InternalError', 'Please reduce your request rate.', ''));
      return;
    }
    const cut = ranged && resets.count > 0;
    if (cut) {
      resets.count--;
      record.outcome = 'reset';
    }
    let before: (() => Promise<void>) | undefined;
    if (ranged && pending && --pending.remaining === 0) {
      before = pending.action;
      pending = undefined;
    }
    const proxy = (): void => {
      const forward = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          if (!cut) {
            answer.pipe(res);
            return;
          }
          let sent = 0;
          const limit = resets.afterBytes;
          answer.on('data', (chunk: Buffer) => {
            if (sent >= limit) return;
            const slice = chunk.subarray(0, limit - sent);
            sent += slice.length;
            const cutNow = sent >= limit;
            // Cut only once the bytes are on the wire, so the client sees headers and part of the body.
            res.write(slice, () => {
              if (cutNow) res.socket?.destroy();
            });
            if (cutNow) answer.destroy();
          });
          answer.on('end', () => {
            if (sent < limit) res.end();
          });
        },
      );
      forward.on('error', () => res.socket?.destroy());
      req.pipe(forward);
    };
    if (before) before().then(proxy, () => res.socket?.destroy());
    else proxy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    resetRangedGets(count, afterBytes = 1024) {
      resets = { count, afterBytes };
    },
    failRangedGets(count, status = 503) {
      failures = { count, status };
    },
    deny(pathPart) {
      denied.push(pathPart);
    },
    bucketInRegion(bucket, region, style) {
      regions.set(bucket, { region, style });
    },
    beforeRangedGet(nth, action) {
      pending = { remaining: nth, action };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function errorXml(code: string, message: string, extra: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${extra}<RequestId>front</RequestId><HostId>front</HostId></Error>`;
}
