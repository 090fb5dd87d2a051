import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImdsClient, partitionForRegion, TOKEN_FAILED_MESSAGE, V1_FALLBACK_WARNING } from '../../src/service/imds.js';
import type { ImdsClientOptions } from '../../src/service/imds.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { ImdsDouble } from '../doubles/imds.js';

let imds: ImdsDouble;

function client(options: ImdsClientOptions = {}): ImdsClient {
  return new ImdsClient({ endpoint: imds.url, timeoutMs: 300, retryBaseMs: 1, ...options });
}

beforeEach(async () => {
  imds = await ImdsDouble.start({ region: 'eu-west-1', accountId: '111122223333', instanceId: 'i-0abc' });
});

afterEach(async () => {
  await imds.close();
});

describe('ImdsClient (agent-spec §7.7)', () => {
  it('uses an IMDSv2 token for every read and caches it', async () => {
    const c = client();
    expect(await c.region()).toBe('eu-west-1');
    expect(await c.partition()).toBe('aws');
    expect(await c.domain()).toBe('amazonaws.com');
    expect(await c.hostIdentifier()).toBe('arn:aws:ec2:eu-west-1:111122223333:instance/i-0abc');
    const puts = imds.requestsFor('/latest/api/token', 'PUT');
    expect(puts).toHaveLength(1);
    expect(puts[0].ttl).toBe('21600');
    const gets = imds.requests.filter((r) => r.method === 'GET');
    expect(gets.every((r) => r.token !== undefined && r.status === 200)).toBe(true);
  });

  it('reports availability', async () => {
    expect(await client().isAvailable()).toBe(true);
    const url = imds.url;
    await imds.close();
    expect(await new ImdsClient({ endpoint: url, timeoutMs: 200 }).isAvailable()).toBe(false);
    imds = await ImdsDouble.start();
  });

  it('gets a new token after a 401 instead of burning its retries (§10.27)', async () => {
    const c = client();
    await c.region();
    imds.revokeTokens();
    expect(await c.domain()).toBe('amazonaws.com');
    const domainReads = imds.requestsFor('/latest/meta-data/services/domain');
    expect(domainReads.map((r) => r.status)).toEqual([401, 200]);
    expect(imds.requestsFor('/latest/api/token', 'PUT')).toHaveLength(2);
  });

  it('renews the token before its TTL runs out', async () => {
    let now = Date.now();
    const c = client({ tokenTtlSeconds: 120, now: () => now });
    await c.instanceId();
    now += 30_000;
    await c.instanceId();
    expect(imds.requestsFor('/latest/api/token', 'PUT')).toHaveLength(1);
    now += 80_000; // past TTL minus the safety margin (12 s), still inside the TTL
    await c.instanceId();
    expect(imds.requestsFor('/latest/api/token', 'PUT')).toHaveLength(2);
  });

  it('falls back to IMDSv1 when the token request fails, with the anchor warning, and remembers it', async () => {
    imds.tokenStatus = 403;
    const logger = new MemoryLogger();
    const c = client({ logger });
    expect(await c.region()).toBe('eu-west-1');
    expect(await c.domain()).toBe('amazonaws.com');
    expect(logger.lines.filter((l) => l.level === 'warn' && l.message.startsWith(V1_FALLBACK_WARNING))).toHaveLength(1);
    expect(imds.requestsFor('/latest/api/token', 'PUT')).toHaveLength(1);
    expect(imds.requests.filter((r) => r.method === 'GET').every((r) => r.token === undefined)).toBe(true);
  });

  it('with disable_imds_v1 a failing token request is an error, never a token-less read', async () => {
    imds.tokenStatus = 403;
    const c = client({ disableImdsV1: true, attempts: 2 });
    await expect(c.identityDocument()).rejects.toThrow(TOKEN_FAILED_MESSAGE);
    expect(imds.requests.filter((r) => r.method === 'GET')).toHaveLength(0);
    expect(imds.requestsFor('/latest/api/token', 'PUT')).toHaveLength(2);
    expect(await c.region()).toBeUndefined();
    await expect(c.hostIdentifier()).rejects.toThrow(TOKEN_FAILED_MESSAGE);
  });

  it('works on an instance that requires IMDSv2', async () => {
    imds.requireToken = true;
    expect(await client({ disableImdsV1: true }).hostIdentifier()).toBe(imds.hostIdentifier);
  });

  it('a v1 fallback that meets a 401 tries for a token again', async () => {
    imds.tokenStatus = 404;
    const c = client();
    expect(await c.instanceId()).toBe('i-0abc');
    imds.tokenStatus = undefined;
    imds.requireToken = true;
    expect(await c.instanceId()).toBe('i-0abc');
    expect(imds.requestsFor('/latest/meta-data/instance-id').map((r) => r.status)).toEqual([200, 401, 200]);
  });

  it('retries server errors and timeouts a bounded number of times', async () => {
    imds.injectFault('/latest/meta-data/services/domain', 'server-error', 2);
    expect(await client().domain()).toBe('amazonaws.com');
    imds.injectFault('/latest/meta-data/services/partition', 'hang', 5);
    const started = Date.now();
    expect(await client({ timeoutMs: 100, attempts: 3 }).partition()).toBeUndefined();
    expect(imds.requestsFor('/latest/meta-data/services/partition')).toHaveLength(3);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('does not retry a 404 and names the status', async () => {
    const c = client();
    await expect(c.get('/latest/meta-data/nothing-here')).rejects.toThrow('HTTP error from metadata service: Not Found, code 404');
    expect(imds.requestsFor('/latest/meta-data/nothing-here')).toHaveLength(1);
  });

  it('derives the partition from the region when IMDS does not say', async () => {
    imds.injectFault('/latest/meta-data/services/partition', { status: 404 }, 10);
    imds.region = 'cn-north-1';
    expect(await client().hostIdentifier()).toBe('arn:aws-cn:ec2:cn-north-1:111122223333:instance/i-0abc');
    expect(partitionForRegion('us-gov-west-1')).toBe('aws-us-gov');
    expect(partitionForRegion('eu-west-1')).toBe('aws');
  });

  it('reads its address from AWS_EC2_METADATA_SERVICE_ENDPOINT', () => {
    expect(new ImdsClient({ env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url } }).endpoint.href).toBe(`${imds.url}/`);
    expect(new ImdsClient({ env: {} }).endpoint.href).toBe('http://169.254.169.254/');
  });
});
