/**
 * An EC2 instance-metadata double on 127.0.0.1 (random port): IMDSv2 tokens (PUT /latest/api/token with
 * a TTL header), optional IMDSv1, the identity document, services/partition and services/domain, and
 * instance-profile credentials at /latest/meta-data/iam/security-credentials/<role> in the shape the AWS
 * SDK reads. Point the agent at it with `ImdsClient({ endpoint: double.url })` or, for the SDK's
 * instance-profile provider and the daemon, env `AWS_EC2_METADATA_SERVICE_ENDPOINT=<double.url>`.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

export interface ImdsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  token: string;
  /** Default: one hour from when the credentials are served. */
  expiration?: Date;
}

export interface ImdsDoubleOptions {
  region?: string;
  accountId?: string;
  instanceId?: string;
  partition?: string;
  domain?: string;
  /** The instance requires IMDSv2 (HttpTokens=required): token-less GETs get 401. Default false. */
  requireToken?: boolean;
  /** IMDSv2 is not offered: the token PUT answers this status (e.g. 403, 404, 405). */
  tokenStatus?: number;
  roleName?: string;
  credentials?: ImdsCredentials;
}

export interface ImdsRequestRecord {
  method: string;
  path: string;
  token?: string;
  ttl?: string;
  status: number;
  at: number;
}

export type ImdsFault = 'server-error' | 'hang' | 'reset' | { status: number };

export const IMDS_TEST_CREDENTIALS: ImdsCredentials = {
  accessKeyId: 'ASIAFAKEINSTANCEPROF',
  secretAccessKey: 'fakeInstanceProfileSecret/0123456789abcdef',
  token: 'fakeInstanceProfileSessionToken0123456789',
};

export class ImdsDouble {
  readonly requests: ImdsRequestRecord[] = [];
  region: string;
  accountId: string;
  instanceId: string;
  partition: string;
  domain: string;
  requireToken: boolean;
  tokenStatus?: number;
  roleName: string;
  credentials: ImdsCredentials;
  /** Every token issued, with its expiry (epoch ms). Delete or expire entries to force 401s. */
  readonly tokens = new Map<string, number>();
  private readonly faults: { match: (path: string, method: string) => boolean; fault: ImdsFault; remaining: number }[] = [];
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private port = 0;

  private constructor(options: ImdsDoubleOptions) {
    this.region = options.region ?? 'us-west-2';
    this.accountId = options.accountId ?? '123456789012';
    this.instanceId = options.instanceId ?? 'i-0123456789abcdef0';
    this.partition = options.partition ?? 'aws';
    this.domain = options.domain ?? 'amazonaws.com';
    this.requireToken = options.requireToken ?? false;
    this.tokenStatus = options.tokenStatus;
    this.roleName = options.roleName ?? 'CodeDeployInstanceRole';
    this.credentials = options.credentials ?? IMDS_TEST_CREDENTIALS;
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(options: ImdsDoubleOptions = {}): Promise<ImdsDouble> {
    const double = new ImdsDouble(options);
    await new Promise<void>((resolve) => double.server.listen(0, '127.0.0.1', resolve));
    double.port = (double.server.address() as AddressInfo).port;
    return double;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** `arn:<partition>:ec2:<region>:<account>:instance/<id>` — what the agent should compute. */
  get hostIdentifier(): string {
    return `arn:${this.partition}:ec2:${this.region}:${this.accountId}:instance/${this.instanceId}`;
  }

  /** Invalidates every issued token: the next request carrying one gets 401. */
  revokeTokens(): void {
    this.tokens.clear();
  }

  /** The next `count` requests whose path starts with `pathPrefix` (and method matches, if given) fail. */
  injectFault(pathPrefix: string, fault: ImdsFault, count = 1, method?: 'GET' | 'PUT'): void {
    this.faults.push({ match: (path, m) => path.startsWith(pathPrefix) && (!method || m === method), fault, remaining: count });
  }

  requestsFor(pathPrefix: string, method?: string): ImdsRequestRecord[] {
    return this.requests.filter((r) => r.path.startsWith(pathPrefix) && (!method || r.method === method));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private identityDocument(): string {
    return JSON.stringify(
      {
        accountId: this.accountId,
        architecture: 'x86_64',
        availabilityZone: `${this.region}a`,
        imageId: 'ami-0123456789abcdef0',
        instanceId: this.instanceId,
        instanceType: 't3.micro',
        pendingTime: '2024-01-01T00:00:00Z',
        privateIp: '10.0.0.10',
        region: this.region,
        version: '2017-09-30',
      },
      null,
      2,
    );
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0];
    const token = typeof req.headers['x-aws-ec2-metadata-token'] === 'string' ? req.headers['x-aws-ec2-metadata-token'] : undefined;
    const ttl = typeof req.headers['x-aws-ec2-metadata-token-ttl-seconds'] === 'string' ? req.headers['x-aws-ec2-metadata-token-ttl-seconds'] : undefined;
    const record: ImdsRequestRecord = { method, path, token, ttl, status: 0, at: Date.now() };
    this.requests.push(record);
    const send = (status: number, body = '', headers: http.OutgoingHttpHeaders = {}) => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...headers });
      res.end(body);
    };

    const fault = this.faults.find((f) => f.remaining > 0 && f.match(path, method));
    if (fault) {
      fault.remaining -= 1;
      if (fault.fault === 'hang') {
        record.status = -1;
        return;
      }
      if (fault.fault === 'reset') {
        record.status = -2;
        req.socket.destroy();
        return;
      }
      return send(fault.fault === 'server-error' ? 500 : fault.fault.status, 'injected fault');
    }

    if (path === '/latest/api/token') {
      if (method !== 'PUT') return send(405);
      if (this.tokenStatus) return send(this.tokenStatus);
      const seconds = Number(ttl);
      if (!ttl || !Number.isInteger(seconds) || seconds < 1 || seconds > 21600) return send(400);
      const value = `AQAEA${randomBytes(24).toString('base64url')}`;
      this.tokens.set(value, Date.now() + seconds * 1000);
      return send(200, value, { 'x-aws-ec2-metadata-token-ttl-seconds': String(seconds) });
    }
    if (method !== 'GET') return send(405);
    if (token !== undefined) {
      const expiry = this.tokens.get(token);
      if (expiry === undefined || expiry < Date.now()) return send(401);
    } else if (this.requireToken) {
      return send(401);
    }

    const credentialsPath = '/latest/meta-data/iam/security-credentials/';
    switch (path) {
      case '/latest/meta-data':
      case '/latest/meta-data/':
        return send(200, 'ami-id\nhostname\niam/\ninstance-id\nservices/\n');
      case '/latest/meta-data/instance-id':
        return send(200, this.instanceId);
      case '/latest/meta-data/services/partition':
        return send(200, this.partition);
      case '/latest/meta-data/services/domain':
        return send(200, this.domain);
      case '/latest/dynamic/instance-identity/document':
        return send(200, this.identityDocument());
      case credentialsPath:
        return send(200, this.roleName);
      case `${credentialsPath}${this.roleName}`:
        return send(
          200,
          JSON.stringify({
            Code: 'Success',
            LastUpdated: new Date().toISOString(),
            Type: 'AWS-HMAC',
            AccessKeyId: this.credentials.accessKeyId,
            SecretAccessKey: this.credentials.secretAccessKey,
            Token: this.credentials.token,
            Expiration: (this.credentials.expiration ?? new Date(Date.now() + 3600_000)).toISOString(),
          }),
        );
      default:
        return send(404, 'Not Found');
    }
  }
}
