/**
 * Theme 15 in numbers: a 1 GiB object fetched with parallel ranged GETs from a real (moto) S3, while the
 * downloading process — a separate node process, so the test runner's heap is not in the figure — keeps its
 * peak RSS under 150 MB.
 */
import { execFile } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { motoMissingReason, startMoto, type MotoServer } from '../doubles/moto.js';
import { bundleScript } from '../helpers/bundle-script.js';
import { makeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const OBJECT_SIZE = 1024 * MiB;
const UPLOAD_PART = 64 * MiB;
const RSS_LIMIT_BYTES = 150 * 1000 * 1000;

/** A deterministic, incompressible byte stream (AES-CTR keystream), produced chunk by chunk. */
async function* keystream(total: number, chunk = MiB): AsyncGenerator<Buffer> {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(chunk);
  for (let sent = 0; sent < total; sent += chunk) yield cipher.update(zeros.subarray(0, Math.min(chunk, total - sent)));
}

/** Multipart upload from the stream: only one part is ever held in memory. */
async function uploadFromStream(client: S3Client, bucket: string, key: string): Promise<string> {
  const hash = createHash('sha256');
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const parts: { ETag?: string; PartNumber: number }[] = [];
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async (): Promise<void> => {
    const body = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    const PartNumber = parts.length + 1;
    const { ETag } = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber, Body: body }));
    parts.push({ ETag, PartNumber });
  };
  for await (const chunk of keystream(OBJECT_SIZE)) {
    hash.update(chunk);
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes >= UPLOAD_PART) await flush();
  }
  if (pendingBytes > 0) await flush();
  await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
  return hash.digest('hex');
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe.skipIf(motoMissingReason !== undefined)('a 1 GiB bundle from S3', () => {
  let moto: MotoServer;
  let tmp: { dir: string; cleanup: () => void };

  beforeAll(async () => {
    moto = await startMoto();
    tmp = makeTempDir('cda-s3-large-');
  });

  afterAll(async () => {
    tmp?.cleanup();
    await moto?.stop();
  });

  it('is downloaded with parallel ranges while the downloader stays under 150 MB RSS', async () => {
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: moto.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    await client.send(new CreateBucketCommand({ Bucket: 'large-bucket' }));
    const expectedHash = await uploadFromStream(client, 'large-bucket', 'big.tar');
    client.destroy();

    const childFile = await bundleScript(new URL('./fixtures/s3-download-child.ts', import.meta.url), join(tmp.dir, 's3-download-child.mjs'));
    const destFile = join(tmp.dir, 'bundle.tar');
    const args = { bucket: 'large-bucket', key: 'big.tar', destFile, endpoint: moto.endpoint, partSizeBytes: 64 * MiB, concurrency: 4 };
    const { stdout } = await promisify(execFile)(process.execPath, [childFile, JSON.stringify(args)], { maxBuffer: MiB });
    const report = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
      result: { bytes: number };
      ms: number;
      vmHwmKb: number;
    };
    const peakBytes = report.vmHwmKb * 1024;
    console.log(
      `1 GiB S3 download: ${(report.ms / 1000).toFixed(1)} s, ${(OBJECT_SIZE / MiB / (report.ms / 1000)).toFixed(0)} MiB/s, ` +
        `peak RSS ${(peakBytes / MiB).toFixed(1)} MiB (VmHWM), 16 parts of 64 MiB, 4 at a time`,
    );
    expect(report.result.bytes).toBe(OBJECT_SIZE);
    expect(statSync(destFile).size).toBe(OBJECT_SIZE);
    expect(peakBytes).toBeLessThan(RSS_LIMIT_BYTES);
    expect(await sha256File(destFile)).toBe(expectedHash);
  }, 600_000);
});
