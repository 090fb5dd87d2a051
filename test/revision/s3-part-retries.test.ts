/**
 * One failing part costs the agent's retries, not the agent's times the SDK's: the part GETs go through a
 * client whose own retries are off (maxAttempts 1), so a part that S3 keeps refusing (503 SlowDown) is
 * asked for exactly maxPartAttempts times. With the SDK's default three attempts under the agent's five,
 * it was fifteen.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { RevisionError } from '../../src/report/errors.js';
import { downloadS3Bundle } from '../../src/revision/s3.js';
import { motoMissingReason, startMoto, startS3Front, type MotoServer, type S3Front } from '../doubles/moto.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const checksums = { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } as const;
const credentials = async () => ({ accessKeyId: 'test', secretAccessKey: 'test' });

describe.skipIf(motoMissingReason !== undefined)('S3 part retries', () => {
  let moto: MotoServer;
  let front: S3Front;
  let admin: S3Client;
  const tmp = makeTempDir('cda-s3-parts-');

  beforeAll(async () => {
    moto = await startMoto();
    front = await startS3Front(moto.endpoint);
    admin = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, credentials, ...checksums });
    await admin.send(new CreateBucketCommand({ Bucket: 'parts-bucket' }));
    await admin.send(new PutObjectCommand({ Bucket: 'parts-bucket', Key: 'app.tar', Body: Buffer.alloc(2 * MiB, 7) }));
  });

  afterAll(async () => {
    admin?.destroy();
    await front?.stop();
    await moto?.stop();
    tmp.cleanup();
  });

  const download = (maxPartAttempts: number) =>
    downloadS3Bundle({ type: 'S3', bucket: 'parts-bucket', key: 'app.tar', bundleType: 'tar' }, join(tmp.dir, 'bundle.tar'), {
      region: 'us-east-1',
      endpointOverride: front.endpoint,
      credentials,
      partSizeBytes: MiB,
      concurrency: 1,
      maxPartAttempts,
      partRetryBaseDelayMs: 10,
      logger: new MemoryLogger(),
      // The SDK's defaults otherwise (three attempts): the agent's part client must turn them off itself.
      clientOverrides: checksums,
    });

  it('sends exactly maxPartAttempts GETs for a part S3 keeps refusing', async () => {
    front.requests.length = 0;
    front.failRangedGets(100);
    const error = await download(4).catch((e: unknown) => e);
    front.failRangedGets(0);
    expect(error).toBeInstanceOf(RevisionError);
    const gets = front.requests.filter((r) => r.method === 'GET');
    expect(gets.map((r) => r.outcome)).toEqual(['failed', 'failed', 'failed', 'failed']);
    expect(existsSync(join(tmp.dir, 'bundle.tar'))).toBe(false);
  });

  it('still gets there when the refusals of a part end within its attempts', async () => {
    front.requests.length = 0;
    front.failRangedGets(2);
    const result = await download(3);
    expect(result.bytes).toBe(2 * MiB);
    expect(front.requests.filter((r) => r.method === 'GET').map((r) => r.outcome)).toEqual(['failed', 'failed', 'proxied', 'proxied']);
  });
});
