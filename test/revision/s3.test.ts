import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { RevisionError } from '../../src/report/errors.js';
import { downloadS3Bundle, normalizeEtag, type S3DownloadOptions, type S3Revision } from '../../src/revision/s3.js';
import { bucketRegionHint, s3EndpointFor } from '../../src/revision/s3-clients.js';
import { freePort, motoMissingReason, startMoto, startS3Front, type MotoServer, type S3Front } from '../doubles/moto.js';
import { makeTempDir } from '../helpers/tmp.js';
import { startConnectProxy } from './connect-proxy.js';

const MiB = 1024 * 1024;
const motoClientConfig: Partial<S3ClientConfig> = {
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
};
const credentials = async () => ({ accessKeyId: 'test', secretAccessKey: 'test' });

function pattern(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 10)) & 0xff;
  return bytes;
}

describe('s3 helpers', () => {
  it('strips every quote from an ETag', () => {
    expect(normalizeEtag('"abc"')).toBe('abc');
    expect(normalizeEtag('abc-3')).toBe('abc-3');
  });

  it('picks the endpoint as the Ruby agent: override, then FIPS, then the sovereign cloud', () => {
    expect(s3EndpointFor('us-east-1', {})).toBeUndefined();
    expect(s3EndpointFor('eusc-de-east-1', {})).toBe('https://s3.eusc-de-east-1.amazonaws.eu');
    expect(s3EndpointFor('us-west-2', { useFips: true })).toBe('https://s3-fips.us-west-2.amazonaws.com');
    expect(s3EndpointFor('eusc-de-east-1', { useFips: true })).toBe('https://s3-fips.eusc-de-east-1.amazonaws.com');
    expect(s3EndpointFor('us-west-2', { useFips: true, endpointOverride: 'https://vpce.example' })).toBe('https://vpce.example');
    expect(s3EndpointFor('us-west-2', { endpointOverride: '  ' })).toBeUndefined();
  });

  it('reads the bucket region from redirect headers and error bodies', () => {
    expect(bucketRegionHint({ $metadata: { httpStatusCode: 301 }, $response: { headers: { 'x-amz-bucket-region': 'eu-west-1' } } })).toBe('eu-west-1');
    expect(bucketRegionHint({ name: 'AuthorizationHeaderMalformed', Region: 'ap-south-1', $metadata: { httpStatusCode: 400 } })).toBe('ap-south-1');
    expect(bucketRegionHint({ name: 'PermanentRedirect', Endpoint: 'b.s3.eu-central-1.amazonaws.com', $metadata: { httpStatusCode: 301 } })).toBe('eu-central-1');
    expect(bucketRegionHint({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 }, $response: { headers: { 'x-amz-bucket-region': 'eu-west-1' } } })).toBeUndefined();
  });

  it('takes only a region name from a redirect (found by test/fuzz/locators.test.ts)', () => {
    const redirect = (region: string) => ({ $metadata: { httpStatusCode: 301 }, $response: { headers: { 'x-amz-bucket-region': region } } });
    expect(bucketRegionHint(redirect(' eu-west-1 '))).toBe('eu-west-1');
    for (const region of [' ', 'evil.com/x', 'us-east-1\r\nx: y', 'a b', '../..']) expect(bucketRegionHint(redirect(region))).toBeUndefined();
    expect(bucketRegionHint({ name: 'PermanentRedirect', Region: 'evil.com/x', $metadata: { httpStatusCode: 301 } })).toBeUndefined();
  });

  it('refuses a bucket S3 cannot be asked for, before any request (found by test/fuzz/locators.test.ts)', async () => {
    const tmp = makeTempDir('cda-s3-name-');
    try {
      for (const bucket of ['?', 'a/b', '..', 'bad bucket', '']) {
        const error = await downloadS3Bundle({ type: 'S3', bucket, key: 'k.tgz', bundleType: 'tgz' }, join(tmp.dir, 'bundle'), {
          region: 'us-east-1', endpointOverride: 'http://127.0.0.1:9', partSizeBytes: MiB, concurrency: 1, logger: new MemoryLogger(), env: {},
        }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(RevisionError);
        expect((error as Error).message).toBe(`The revision's bucket ${JSON.stringify(bucket)} is not an S3 bucket name (letters, digits, '.', '-' and '_'). Check the Bucket of the revision.`);
      }
    } finally {
      tmp.cleanup();
    }
  });
});

describe.skipIf(motoMissingReason !== undefined)('downloadS3Bundle against moto', () => {
  let moto: MotoServer;
  let front: S3Front;
  let admin: S3Client;
  let tmp: { dir: string; cleanup: () => void };
  let logger: MemoryLogger;
  const objects = new Map<string, { body: Buffer; etag: string; versionId?: string }>();

  async function put(bucket: string, key: string, body: Buffer): Promise<{ body: Buffer; etag: string; versionId?: string }> {
    const answer = await admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    const stored = { body, etag: normalizeEtag(answer.ETag ?? ''), versionId: answer.VersionId };
    objects.set(`${bucket}/${key}@${answer.VersionId ?? ''}`, stored);
    return stored;
  }

  function options(overrides: Partial<S3DownloadOptions> = {}): S3DownloadOptions {
    return {
      region: 'us-east-1',
      endpointOverride: front.endpoint,
      credentials,
      partSizeBytes: MiB,
      concurrency: 3,
      logger,
      clientOverrides: motoClientConfig,
      partRetryBaseDelayMs: 10,
      ...overrides,
    };
  }

  const revision = (bucket: string, key: string, extra: Partial<S3Revision> = {}): S3Revision => ({
    type: 'S3',
    bucket,
    key,
    bundleType: 'tar',
    ...extra,
  });

  beforeAll(async () => {
    moto = await startMoto();
    front = await startS3Front(moto.endpoint);
    admin = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, credentials, ...motoClientConfig });
    await admin.send(new CreateBucketCommand({ Bucket: 'plain-bucket' }));
    await admin.send(new CreateBucketCommand({ Bucket: 'versioned-bucket' }));
    await admin.send(new PutBucketVersioningCommand({ Bucket: 'versioned-bucket', VersioningConfiguration: { Status: 'Enabled' } }));
  });

  afterAll(async () => {
    admin?.destroy();
    await front?.stop();
    await moto?.stop();
  });

  beforeEach(() => {
    tmp = makeTempDir('cda-s3-');
    logger = new MemoryLogger();
    front.requests.length = 0;
  });
  afterEach(() => tmp.cleanup());

  it('downloads a small object in one ranged GET and reports progress', async () => {
    const { body, etag } = await put('plain-bucket', 'small.tar', pattern(1000, 1));
    const dest = join(tmp.dir, 'bundle.tar');
    const seen: number[] = [];
    const result = await downloadS3Bundle(revision('plain-bucket', 'small.tar'), dest, options({ onProgress: (p) => seen.push(p.bytes) }));
    expect(result).toEqual({ bytes: 1000, etag, versionId: undefined });
    expect(readFileSync(dest).equals(body)).toBe(true);
    expect(seen.at(-1)).toBe(1000);
    expect(existsSync(`${dest}.download`)).toBe(false);
    const gets = front.requests.filter((r) => r.method === 'GET');
    expect(gets).toHaveLength(1);
    expect(gets[0].range).toBe('bytes=0-999');
    expect(gets[0].ifMatch).toBe(`"${etag}"`);
  });

  it('writes an empty object as an empty file', async () => {
    await put('plain-bucket', 'empty.tar', Buffer.alloc(0));
    const dest = join(tmp.dir, 'bundle.tar');
    const result = await downloadS3Bundle(revision('plain-bucket', 'empty.tar'), dest, options());
    expect(result.bytes).toBe(0);
    expect(readFileSync(dest)).toHaveLength(0);
  });

  it('fetches a larger object as parallel ranged GETs, each pinned with If-Match', async () => {
    const size = 5 * MiB + 12345;
    const { body, etag } = await put('plain-bucket', 'multi.tar', pattern(size, 2));
    const dest = join(tmp.dir, 'bundle.tar');
    const result = await downloadS3Bundle(revision('plain-bucket', 'multi.tar', { etag: `"${etag}"` }), dest, options());
    expect(result.bytes).toBe(size);
    expect(readFileSync(dest).equals(body)).toBe(true);
    const gets = front.requests.filter((r) => r.method === 'GET');
    expect(gets.map((r) => r.range).sort()).toEqual(
      Array.from({ length: 6 }, (_, i) => `bytes=${i * MiB}-${Math.min(size, (i + 1) * MiB) - 1}`).sort(),
    );
    expect(gets.every((r) => r.ifMatch === `"${etag}"`)).toBe(true);
    expect(logger.text()).toMatch(/6 part\(s\) of up to 1\.0 MiB, 3 at a time/);
  });

  it('fetches exactly the version the spec names from a versioned bucket', async () => {
    const old = await put('versioned-bucket', 'app.tar', pattern(3 * MiB, 3));
    const current = await put('versioned-bucket', 'app.tar', pattern(3 * MiB, 4));
    expect(old.versionId).toBeDefined();
    const dest = join(tmp.dir, 'bundle.tar');

    const result = await downloadS3Bundle(revision('versioned-bucket', 'app.tar', { version: old.versionId }), dest, options());
    expect(result).toEqual({ bytes: 3 * MiB, etag: old.etag, versionId: old.versionId });
    expect(readFileSync(dest).equals(old.body)).toBe(true);
    const gets = front.requests.filter((r) => r.method === 'GET');
    expect(gets.length).toBe(3);
    expect(gets.every((r) => r.url.includes(`versionId=${old.versionId}`))).toBe(true);

    // Without a version the current one is fetched, and its parts are pinned to it as well.
    front.requests.length = 0;
    const latest = await downloadS3Bundle(revision('versioned-bucket', 'app.tar'), dest, options());
    expect(latest.versionId).toBe(current.versionId);
    expect(readFileSync(dest).equals(current.body)).toBe(true);
    expect(front.requests.filter((r) => r.method === 'GET').every((r) => r.url.includes(`versionId=${current.versionId}`))).toBe(true);
  });

  it('refuses an object whose ETag differs from the spec and leaves nothing behind', async () => {
    const { etag } = await put('plain-bucket', 'etag.tar', pattern(2 * MiB, 5));
    const dest = join(tmp.dir, 'bundle.tar');
    writeFileSync(dest, 'stale bundle from somewhere else');
    const error = await downloadS3Bundle(revision('plain-bucket', 'etag.tar', { etag: '"0123456789abcdef"' }), dest, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RevisionError);
    expect((error as Error).message).toBe(`Expected deployment artifact bundle etag 0123456789abcdef but was actually ${etag}`);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.download`)).toBe(false);
    expect(front.requests.filter((r) => r.method === 'GET')).toHaveLength(0);
  });

  it('never stitches two objects together: a replacement mid-download fails If-Match and the download starts again', async () => {
    await put('plain-bucket', 'replaced.tar', pattern(3 * MiB, 20));
    const replacement = pattern(3 * MiB + 7, 21);
    front.beforeRangedGet(2, async () => {
      await admin.send(new PutObjectCommand({ Bucket: 'plain-bucket', Key: 'replaced.tar', Body: replacement }));
    });
    const dest = join(tmp.dir, 'bundle.tar');
    const result = await downloadS3Bundle(revision('plain-bucket', 'replaced.tar'), dest, options({ concurrency: 1 }));
    expect(result.bytes).toBe(replacement.length);
    expect(readFileSync(dest).equals(replacement)).toBe(true);
    expect(front.requests.filter((r) => r.method === 'HEAD')).toHaveLength(2);
    expect(logger.text()).toContain('s3://plain-bucket/replaced.tar was replaced while it was being downloaded; starting again');
  });

  it('fails clearly when an object pinned by ETag is replaced mid-download', async () => {
    const { etag } = await put('plain-bucket', 'pinned.tar', pattern(3 * MiB, 22));
    front.beforeRangedGet(2, async () => {
      await admin.send(new PutObjectCommand({ Bucket: 'plain-bucket', Key: 'pinned.tar', Body: pattern(3 * MiB, 23) }));
    });
    const dest = join(tmp.dir, 'bundle.tar');
    const error = await downloadS3Bundle(revision('plain-bucket', 'pinned.tar', { etag }), dest, options({ concurrency: 1 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RevisionError);
    expect((error as Error).message).toMatch(/^s3:\/\/plain-bucket\/pinned\.tar changed while it was being downloaded/);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.download`)).toBe(false);
  });

  it('retries a part whose connection is cut, resuming where it stopped', async () => {
    const size = 4 * MiB;
    const { body } = await put('plain-bucket', 'flaky.tar', pattern(size, 6));
    const dest = join(tmp.dir, 'bundle.tar');
    front.resetRangedGets(1, 200_000);
    const result = await downloadS3Bundle(revision('plain-bucket', 'flaky.tar'), dest, options({ concurrency: 2 }));
    expect(result.bytes).toBe(size);
    expect(readFileSync(dest).equals(body)).toBe(true);
    const reset = front.requests.find((r) => r.outcome === 'reset');
    expect(reset).toBeDefined();
    const [, start, end] = /bytes=(\d+)-(\d+)/.exec(reset?.range ?? '') ?? [];
    const resumed = front.requests.filter((r) => r.method === 'GET' && r.outcome === 'proxied' && r.range?.endsWith(`-${end}`));
    expect(resumed).toHaveLength(1);
    expect(Number(/bytes=(\d+)-/.exec(resumed[0].range ?? '')?.[1])).toBeGreaterThanOrEqual(Number(start));
    expect(front.requests.filter((r) => r.method === 'GET')).toHaveLength(5);
    expect(logger.text()).toMatch(/warn Part \d\/4 of s3:\/\/plain-bucket\/flaky\.tar .* failed: .*retry 1\/4/);
  });

  it('gives up on a part after the bounded number of attempts', async () => {
    await put('plain-bucket', 'broken.tar', pattern(2 * MiB, 7));
    const dest = join(tmp.dir, 'bundle.tar');
    front.resetRangedGets(100, 1000);
    const error = await downloadS3Bundle(
      revision('plain-bucket', 'broken.tar'),
      dest,
      options({ concurrency: 1, maxPartAttempts: 3, clientOverrides: { ...motoClientConfig, maxAttempts: 1 } }),
    ).catch((e: unknown) => e);
    front.resetRangedGets(0);
    expect(front.requests.filter((r) => r.method === 'GET')).toHaveLength(3);
    expect(error).toBeInstanceOf(RevisionError);
    expect((error as Error).message).toMatch(/^Could not download s3:\/\/plain-bucket\/broken\.tar: /);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.download`)).toBe(false);
  });

  it('names the object when it does not exist', async () => {
    const dest = join(tmp.dir, 'bundle.tar');
    const error = await downloadS3Bundle(revision('plain-bucket', 'nope/missing.tar'), dest, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RevisionError);
    expect((error as Error).message).toMatch(/^No object at s3:\/\/plain-bucket\/nope\/missing\.tar \(region us-east-1\).*Bucket\/Key/);
  });

  it('tells a missing version apart from a missing key', async () => {
    await put('versioned-bucket', 'kept.tar', pattern(10, 8));
    const dest = join(tmp.dir, 'bundle.tar');
    const error = await downloadS3Bundle(revision('versioned-bucket', 'kept.tar', { version: 'no-such-version' }), dest, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RevisionError);
    expect((error as Error).message).toMatch(/^Version no-such-version of s3:\/\/versioned-bucket\/kept\.tar does not exist \(the key exists/);
  });

  it('explains access denied with the permissions to check', async () => {
    await put('plain-bucket', 'secret/app.tar', pattern(10, 9));
    front.deny('/plain-bucket/secret/');
    const dest = join(tmp.dir, 'bundle.tar');
    const error = await downloadS3Bundle(revision('plain-bucket', 'secret/app.tar', { version: 'v1' }), dest, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RevisionError);
    const message = (error as Error).message;
    expect(message).toMatch(/^Access denied reading s3:\/\/plain-bucket\/secret\/app\.tar \(version v1\)/);
    expect(message).toContain('s3:GetObject and s3:GetObjectVersion on arn:aws:s3:::plain-bucket/secret/app.tar');
  });

  it('follows a 301 with x-amz-bucket-region to the bucket\'s region', async () => {
    await admin.send(new CreateBucketCommand({ Bucket: 'irish-bucket' }));
    const body = pattern(2 * MiB, 10);
    await admin.send(new PutObjectCommand({ Bucket: 'irish-bucket', Key: 'a.tar', Body: body }));
    front.bucketInRegion('irish-bucket', 'eu-west-1', 'header');
    const dest = join(tmp.dir, 'bundle.tar');
    await downloadS3Bundle(revision('irish-bucket', 'a.tar'), dest, options());
    expect(readFileSync(dest).equals(body)).toBe(true);
    expect(front.requests[0]).toMatchObject({ method: 'HEAD', signedRegion: 'us-east-1', outcome: 'redirected' });
    expect(front.requests.slice(1).every((r) => r.signedRegion === 'eu-west-1' && r.outcome === 'proxied')).toBe(true);
    expect(logger.text()).toContain('The bucket is in region eu-west-1, not us-east-1; retrying there');
  });

  it('follows an AuthorizationHeaderMalformed answer that names the region in its body', async () => {
    await admin.send(new CreateBucketCommand({ Bucket: 'mumbai-bucket' }));
    await admin.send(new PutObjectCommand({ Bucket: 'mumbai-bucket', Key: 'a.tar', Body: pattern(3 * MiB, 11) }));
    front.bucketInRegion('mumbai-bucket', 'ap-south-1', 'body');
    const dest = join(tmp.dir, 'bundle.tar');
    await downloadS3Bundle(revision('mumbai-bucket', 'a.tar'), dest, options());
    expect(readFileSync(dest).equals(pattern(3 * MiB, 11))).toBe(true);
    expect(front.requests.some((r) => r.outcome === 'redirected')).toBe(true);
    expect(logger.text().match(/retrying there/g)).toHaveLength(1);
  });

  it('goes through proxy_uri', async () => {
    const { body } = await put('plain-bucket', 'proxied.tar', pattern(2 * MiB + 1, 12));
    const proxy = await startConnectProxy();
    try {
      const dest = join(tmp.dir, 'bundle.tar');
      await downloadS3Bundle(revision('plain-bucket', 'proxied.tar'), dest, options({ proxyUri: proxy.uri }));
      expect(readFileSync(dest).equals(body)).toBe(true);
      expect(proxy.tunnels.length).toBeGreaterThan(0);
      expect(proxy.tunnels.every((t) => t.target === new URL(front.endpoint).host)).toBe(true);
    } finally {
      await proxy.stop();
    }
  });

  it('without proxy_uri, goes through HTTP(S)_PROXY from the environment unless NO_PROXY names the host', async () => {
    const { body } = await put('plain-bucket', 'env-proxied.tar', pattern(MiB + 7, 14));
    const proxy = await startConnectProxy();
    try {
      const dest = join(tmp.dir, 'bundle.tar');
      await downloadS3Bundle(revision('plain-bucket', 'env-proxied.tar'), dest, options({ env: { HTTP_PROXY: proxy.uri } }));
      expect(readFileSync(dest).equals(body)).toBe(true);
      expect(proxy.tunnels.length).toBeGreaterThan(0);
      const tunnels = proxy.tunnels.length;
      await downloadS3Bundle(revision('plain-bucket', 'env-proxied.tar'), dest, options({ env: { http_proxy: proxy.uri, NO_PROXY: 'example.com,127.0.0.1' } }));
      expect(readFileSync(dest).equals(body)).toBe(true);
      expect(proxy.tunnels).toHaveLength(tunnels);
    } finally {
      await proxy.stop();
    }
  });

  it('adds the endpoint-override hint when S3 cannot be reached', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const dest = join(tmp.dir, 'bundle.tar');
    const error = await downloadS3Bundle(revision('plain-bucket', 'x.tar'), dest, options({ endpointOverride: closed, clientOverrides: { ...motoClientConfig, maxAttempts: 1 } })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RevisionError);
    expect((error as Error).message).toMatch(new RegExp(`^Unable to connect to ${closed} .*ECONNREFUSED.*\\. Try using s3 endpoint override\\.$`));
    const fips = await downloadS3Bundle(revision('plain-bucket', 'x.tar'), dest, options({ endpointOverride: closed, useFips: true, clientOverrides: { ...motoClientConfig, maxAttempts: 1 } })).catch((e: unknown) => e);
    expect((fips as Error).message).toMatch(/\. Check that Fips exists in us-east-1\. Or, try using s3 endpoint override\.$/);
  });

  it('stops and cleans up when cancelled', async () => {
    await put('plain-bucket', 'cancel.tar', pattern(4 * MiB, 13));
    const dest = join(tmp.dir, 'bundle.tar');
    const controller = new AbortController();
    const error = await downloadS3Bundle(
      revision('plain-bucket', 'cancel.tar'),
      dest,
      options({ concurrency: 1, signal: controller.signal, onProgress: (p) => p.bytes > MiB && controller.abort(new Error('shutdown')) }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RevisionError);
    expect((error as Error).message).toBe('Download of s3://plain-bucket/cancel.tar was cancelled');
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.download`)).toBe(false);
  });
});
