/**
 * A pass-through HTTP proxy in front of the commands-service double, for the faults the double cannot
 * make itself: an answer lost on its way back after the service acted on the request (so the agent sends
 * the same request again), and answers rewritten (a command for another host). Requests reach the double
 * unchanged, Host header included, so their SigV4 signatures are still checked there.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

type Rewrite = (body: Record<string, unknown>) => Record<string, unknown>;

export class ServiceProxy {
  /** Answers dropped so far, per operation. */
  readonly dropped = new Map<string, number>();
  private readonly drops = new Map<string, number>();
  private readonly rewrites = new Map<string, Rewrite>();
  private readonly sockets = new Set<Socket>();
  private port = 0;

  private constructor(private readonly target: URL, private readonly server: http.Server) {}

  static async start(targetUrl: string): Promise<ServiceProxy> {
    const server = http.createServer();
    const proxy = new ServiceProxy(new URL(targetUrl), server);
    server.on('request', (req, res) => proxy.handle(req, res));
    server.on('connection', (socket) => {
      proxy.sockets.add(socket);
      socket.on('close', () => proxy.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy.port = (server.address() as AddressInfo).port;
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The double handles the next `count` requests of `operation`, but the agent never gets the answer. */
  dropAnswers(operation: string, count = 1): void {
    this.drops.set(operation, (this.drops.get(operation) ?? 0) + count);
  }

  /** Every successful answer of `operation` passes through `rewrite` from now on. */
  rewriteAnswers(operation: string, rewrite: Rewrite | undefined): void {
    if (rewrite) this.rewrites.set(operation, rewrite);
    else this.rewrites.delete(operation);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.slice(target.indexOf('.') + 1);
      const upstream = http.request({
        hostname: this.target.hostname,
        port: this.target.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
        agent: false,
      });
      // The agent hung up (an aborted long poll): let the double see it too, so it hands nothing out.
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      upstream.on('error', () => res.destroy());
      upstream.on('response', (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => parts.push(chunk));
        answer.on('end', () => {
          const pendingDrops = this.drops.get(operation) ?? 0;
          if (pendingDrops > 0) {
            this.drops.set(operation, pendingDrops - 1);
            this.dropped.set(operation, (this.dropped.get(operation) ?? 0) + 1);
            req.socket.destroy();
            return;
          }
          let body = Buffer.concat(parts);
          const rewrite = this.rewrites.get(operation);
          if (rewrite && answer.statusCode === 200) {
            body = Buffer.from(JSON.stringify(rewrite(JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>)));
          }
          const headers = { ...answer.headers, 'content-length': String(body.length) };
          res.writeHead(answer.statusCode ?? 500, headers);
          res.end(body);
        });
      });
      upstream.end(Buffer.concat(chunks));
    });
  }
}
