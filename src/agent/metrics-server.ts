import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatListenAddress, parseListenAddress, type ListenAddress } from '../config/listen-address.js';
import type { Logger } from '../log/logger.js';
import type { AgentMetrics } from './agent-metrics.js';
import type { HealthVerdict } from './health.js';
import { PrometheusMetrics, type MetricsSources } from './metrics.js';

/**
 * The daemon's health and metrics listener (`:metrics_listen:`): `GET /healthz` answers 200 or 503 with
 * one line saying why, `GET /metrics` the Prometheus text format. Plain node:http: two fixed routes
 * need no framework. Loaded only when the key is set (the daemon imports this module on demand).
 */
export interface MetricsEndpoint {
  metrics: AgentMetrics;
  /** Where it listens (the port the system chose when the config said 0). */
  address: ListenAddress;
  close(): Promise<void>;
}

/** A scraper that holds connections open must not pile them up in the agent. */
const MAX_CONNECTIONS = 32;
const REQUEST_TIMEOUT_MS = 10_000;

function healthBody(verdict: HealthVerdict): string {
  return `${verdict.healthy ? 'ok' : 'unhealthy'}: ${verdict.reason}\n`;
}

export async function startMetricsEndpoint(options: { listen: string; sources: MetricsSources; logger: Logger }): Promise<MetricsEndpoint> {
  const parsed = parseListenAddress(options.listen);
  if ('problem' in parsed) throw new Error(`metrics_listen ${JSON.stringify(options.listen)} is not ${parsed.problem}`);
  const metrics = new PrometheusMetrics(options.sources);

  const server = http.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const reply = (status: number, contentType: string, body: string) => {
      response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      reply(405, 'text/plain; charset=utf-8', 'only GET and HEAD\n');
      return;
    }
    if (path === '/healthz') {
      const verdict = options.sources.health();
      reply(verdict.healthy ? 200 : 503, 'text/plain; charset=utf-8', healthBody(verdict));
      return;
    }
    if (path === '/metrics') {
      metrics.scrape().then(
        ({ contentType, body }) => reply(200, contentType, body),
        (error: unknown) => {
          options.logger.warn(`GET /metrics failed: ${(error as Error).message}`);
          reply(500, 'text/plain; charset=utf-8', 'metrics are not available\n');
        },
      );
      return;
    }
    reply(404, 'text/plain; charset=utf-8', 'not found: try /healthz or /metrics\n');
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(parsed.port, parsed.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // A failing connection (a scraper resetting) is the scraper's business, not a reason to log at error.
  server.on('clientError', (_error, socket) => socket.destroy());
  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  options.logger.info(`Health and metrics at http://${formatListenAddress(address)}/healthz and /metrics`);
  return {
    metrics,
    address,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
