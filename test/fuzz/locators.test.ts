import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isAbsolute, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalDeployError, revisionFromLocation } from '../../src/deployment/local-spec.js';
import type { Revision } from '../../src/deployment/spec-types.js';
import { silentLogger } from '../../src/log/logger.js';
import { RevisionError } from '../../src/report/errors.js';
import { downloadGitHubBundle, gitHubArchiveUrl, type GitHubRevision } from '../../src/revision/github.js';
import { downloadS3Bundle } from '../../src/revision/s3.js';
import { bucketRegionHint } from '../../src/revision/s3-clients.js';
import { makeTempDir } from '../helpers/tmp.js';
import { anyText, fuzz, parseOrTypedError, settleOrTypedError, testTimeout } from './fuzz.js';

/**
 * Where a revision is: `deploy -l` locations (s3://, https://github.com/..., paths, file:// URLs), the
 * GitHub repository and commit a spec names, the S3 bucket, key, version and ETag, and what the GitHub
 * and S3 servers answer about them (redirects, retry hints, the bucket's region, sizes). For any of them:
 * a revision and a download of exactly the object named, or the project's typed error; the GitHub token
 * only ever goes to the API's origin.
 */

const PIECES = ['a', 'bucket', 'key.tgz', 'dir/key', '..', '.', '', '%2F', '%2e%2e', '%E0%A4%A', '%00', '?', '#', '@', ':', '[', ']', '[::1]', ' ', 'ü', '\\', '//', 'repos', 'tarball', 'zipball', '.git'];
const piece = fc.oneof(fc.constantFrom(...PIECES), fc.string({ maxLength: 6 }));
const pathOf = fc.array(piece, { maxLength: 6 }).map((parts) => parts.join('/'));
const query = fc.array(fc.tuple(fc.constantFrom('versionId', 'version', 'etag', 'x', ''), piece), { maxLength: 3 })
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([key, value]) => `${key}=${value}`).join('&')}`));

/** Locations close to the forms codedeploy-local takes, and text of every kind. */
const location = fc.oneof(
  fc.tuple(fc.constantFrom('s3://', 'S3://', 's3:/', 's3:'), piece, pathOf, query).map(([scheme, host, path, q]) => `${scheme}${host}/${path}${q}`),
  fc.tuple(fc.constantFrom('https://github.com/', 'https://api.github.com/repos/', 'https://evilgithub.com/', 'https://github.com.evil/', 'HTTPS://GitHub.com/', 'http://github.com/'), pathOf)
    .map(([prefix, path]) => `${prefix}${path}`),
  fc.tuple(fc.constantFrom('file://', 'file:', 'FILE:///', 'ftp://', 'c:', 'x:', ''), pathOf).map(([prefix, path]) => `${prefix}${path}`),
  anyText(80),
);

function checkRevision(revision: Revision, type: string): void {
  switch (revision.type) {
    case 'S3':
      expect(revision.bucket).not.toBe('');
      expect(revision.key).not.toBe('');
      expect(['tar', 'tgz', 'zip']).toContain(revision.bundleType);
      expect(revision.bundleType).toBe(type);
      break;
    case 'GitHub':
      for (const part of [revision.account, revision.repository, revision.commitId]) expect(part).not.toBe('');
      // The revision must be fetchable: its archive URL names exactly it.
      checkArchiveUrl(revision);
      break;
    case 'Local File':
    case 'Local Directory':
      expect(isAbsolute(revision.location)).toBe(true);
      expect(existsSync(revision.location)).toBe(true);
      expect(statSync(revision.location).isDirectory()).toBe(revision.type === 'Local Directory');
      break;
  }
}

/** The archive URL of a GitHub revision, or a RevisionError; when there is one, its path names exactly that account, repository and commit. */
function checkArchiveUrl(revision: GitHubRevision): void {
  const url = parseOrTypedError(() => gitHubArchiveUrl(revision, 'https://api.github.com'), [RevisionError]);
  if (url === undefined) return;
  const parsed = new URL(url);
  expect(parsed.origin).toBe('https://api.github.com');
  const segments = parsed.pathname.split('/').slice(1).map((segment) => decodeURIComponent(segment));
  expect(segments).toEqual(['repos', revision.account, revision.repository, (revision.bundleType ?? 'tar') === 'zip' ? 'zipball' : 'tarball', revision.commitId]);
}

describe('fuzz: locations of codedeploy-local (deploy -l)', () => {
  const budget = { runs: 1_000, timeMs: 1_500 };

  it('a revision of the given type, or a LocalDeployError', { timeout: testTimeout(budget.timeMs) }, async () => {
    const type = fc.constantFrom('tar', 'tgz', 'zip', 'directory', 'TAR', '');
    await fuzz(import.meta.url, fc.property(location, type, (where, kind) => {
      const revision = parseOrTypedError(() => revisionFromLocation(where, kind), [LocalDeployError]);
      if (revision) checkRevision(revision, kind);
    }), budget);
  });
});

describe('fuzz: GitHub archive URLs', () => {
  const budget = { runs: 1_000, timeMs: 1_000 };

  it('the URL names exactly the account, repository and commit, or a RevisionError', { timeout: testTimeout(budget.timeMs) }, async () => {
    const revision = fc.record({
      type: fc.constant('GitHub' as const),
      account: piece.filter((part) => part !== ''),
      repository: piece.filter((part) => part !== ''),
      commitId: piece.filter((part) => part !== ''),
      bundleType: fc.constantFrom('tar' as const, 'zip' as const, undefined),
    });
    await fuzz(import.meta.url, fc.property(revision, (value) => checkArchiveUrl(value)), budget);
  });
});

describe('fuzz: the bucket region S3 names in a redirect', () => {
  const budget = { runs: 1_000, timeMs: 1_000 };

  it('undefined or a region name, whatever the header, body or endpoint says', { timeout: testTimeout(budget.timeMs) }, async () => {
    const region = fc.oneof(fc.constantFrom('us-west-2', 'eu-central-1', 'a b', 'evil.com/x', '', ' us-east-1 ', 'us-east-1\r\nx: y', '../..', 'x'.repeat(300)), fc.string({ maxLength: 20 }));
    const error = fc.record({
      name: fc.constantFrom('PermanentRedirect', 'AuthorizationHeaderMalformed', 'IllegalLocationConstraintException', 'NoSuchKey'),
      Region: fc.option(region),
      Endpoint: fc.option(fc.oneof(region.map((r) => `bucket.s3.${r}.amazonaws.com`), fc.string())),
      $metadata: fc.record({ httpStatusCode: fc.constantFrom(301, 307, 400, 403) }),
      $response: fc.record({ headers: fc.dictionary(fc.constantFrom('x-amz-bucket-region', 'other'), region, { maxKeys: 2 }) }),
    }, { requiredKeys: ['name', '$metadata'] });
    await fuzz(import.meta.url, fc.property(error, (value) => {
      const hint = parseOrTypedError(() => bucketRegionHint(value), []);
      if (hint !== undefined) expect(hint).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
    }), budget);
  });
});

/** A loopback HTTP server answering each request with the next of a case's scripted answers. */
interface Scripted {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

interface Recorded {
  method: string;
  url: string;
  authorization?: string;
}

async function startScripted(): Promise<{ server: http.Server; url: string; answers: Scripted[]; requests: Recorded[]; close: () => Promise<void> }> {
  const answers: Scripted[] = [];
  const requests: Recorded[] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    req.resume();
    const answer = answers.length > 1 ? answers.shift()! : answers[0];
    if (!answer) return void res.destroy();
    try {
      res.writeHead(answer.status, answer.headers);
      res.end(req.method === 'HEAD' ? undefined : answer.body);
    } catch {
      res.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { server, url, answers, requests, close };
}

const headerValue = fc.oneof(
  fc.constantFrom('0', '-1', '1e3', '10', '99999999999999', 'abc', '', 'Wed, 21 Oct 2015 07:28:00 GMT', 'Sat, 13 Sep 275760 00:00:00 GMT', '"etag"', 'null', 'us-west-2', 'a b'),
  fc.integer({ min: 0, max: 5000 }).map(String),
  fc.string({ unit: fc.constantFrom(...'abc019-_."/: '.split('')), maxLength: 12 }),
);

describe('fuzz: GitHub downloads against a loopback GitHub with fuzzed answers', () => {
  let api: Awaited<ReturnType<typeof startScripted>>;
  let codeload: Awaited<ReturnType<typeof startScripted>>;
  let tmp: { dir: string; cleanup: () => void };
  let caseNumber = 0;
  const TOKEN = 'ghp_FuzzToken000000000000000000000000000';

  beforeAll(async () => {
    api = await startScripted();
    codeload = await startScripted();
    tmp = makeTempDir('cda-fuzz-github-', process.env.CDA_TEST_RUN_DIR);
  });
  afterAll(async () => {
    await api.close();
    await codeload.close();
    tmp.cleanup();
  });

  /** Redirect targets that stay on this machine: relative ones, the API's origin, and the other server's. */
  function location(): fc.Arbitrary<string> {
    return fc.oneof(
      fc.constantFrom('/archive.tgz', 'archive?token=CODELOAD', '../../x', '?x=1', '#frag', '', ' ', 'ftp://127.0.0.1/x', 'file:///etc/passwd', 'http://[::1', 'javascript:alert(1)', 'data:,hello'),
      fc.constantFrom(`${codeload.url}/archive.tgz?token=CODELOAD`, `${api.url}/again`, `//127.0.0.1:${new URL(codeload.url).port}/x`, `${codeload.url.replace('127.0.0.1', 'localhost')}/x`),
      fc.string({ maxLength: 10 }).map((text) => `/${text}`),
    ).map((target) => {
      // Never a host off this machine: anything resolving elsewhere becomes a relative path.
      try {
        const resolved = new URL(target, api.url);
        if ((resolved.protocol === 'http:' || resolved.protocol === 'https:') && !['127.0.0.1', 'localhost'].includes(resolved.hostname)) return '/elsewhere';
      } catch {
        // Not a URL at all: the client must refuse it with a RevisionError.
      }
      return target;
    });
  }

  function answer(): fc.Arbitrary<Scripted> {
    return fc.record({
      status: fc.constantFrom(200, 200, 200, 301, 302, 303, 307, 308, 304, 400, 401, 403, 404, 408, 429, 500, 502, 503),
      headers: fc.record({
        location: location(),
        'retry-after': headerValue,
        'x-ratelimit-remaining': fc.constantFrom('0', '1', ''),
        'x-ratelimit-reset': headerValue,
        'content-length': headerValue,
      }, { requiredKeys: [] }),
      body: fc.oneof(fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)), fc.constantFrom(Buffer.from('{"message":"API rate limit exceeded"}'), Buffer.from('{"message":{"x":1}}'))),
    });
  }

  const budget = { runs: 200, timeMs: 3_000, caseTimeoutMs: 15_000 };

  it('a downloaded bundle or a RevisionError; the token never leaves the API origin', { timeout: testTimeout(budget.timeMs) }, async () => {
    const scripts = fc.tuple(fc.array(answer(), { minLength: 1, maxLength: 4 }), fc.array(answer(), { minLength: 1, maxLength: 2 }), fc.constantFrom('tar' as const, 'zip' as const));
    await fuzz(import.meta.url, fc.asyncProperty(scripts, async ([apiAnswers, codeloadAnswers, bundleType]) => {
      api.answers.splice(0, Infinity, ...apiAnswers);
      codeload.answers.splice(0, Infinity, ...codeloadAnswers);
      api.requests.length = 0;
      codeload.requests.length = 0;
      const dir = join(tmp.dir, `case-${caseNumber++}`);
      mkdirSync(dir);
      const dest = join(dir, 'bundle');
      const result = await settleOrTypedError(() => downloadGitHubBundle(
        { type: 'GitHub', account: 'octo', repository: 'app', commitId: 'c0ffee', bundleType },
        dest,
        { apiBase: api.url, token: TOKEN, logger: silentLogger, retryDelaysMs: [1, 1], maxRetryWaitMs: 20, idleTimeoutMs: 100, env: {} },
      ), [RevisionError]);
      expect(readdirSync(dir)).toEqual(result ? ['bundle'] : []);
      if (result) expect(result.bundleType).toBe(bundleType);
      // The token goes with requests to the API's own origin only.
      for (const request of codeload.requests) expect(request.authorization, request.url).toBeUndefined();
    }), budget);
  });
});

describe('fuzz: S3 downloads of any bucket, key, version and ETag against a loopback S3 with fuzzed answers', () => {
  let s3: Awaited<ReturnType<typeof startScripted>>;
  let tmp: { dir: string; cleanup: () => void };
  let caseNumber = 0;

  beforeAll(async () => {
    s3 = await startScripted();
    tmp = makeTempDir('cda-fuzz-s3-', process.env.CDA_TEST_RUN_DIR);
  });
  afterAll(async () => {
    await s3.close();
    tmp.cleanup();
  });

  const name = fc.oneof(fc.constantFrom('bucket', 'my.bucket', 'a', '..', '.', 'a/b', 'a?b', 'a#b', '%2F', ' ', 'ü', 'key.tgz', 'dir/key.tgz', '../../etc/passwd', '/leading', 'trailing/', 'a//b'),
    fc.string({ minLength: 1, maxLength: 12 }));
  const answer: fc.Arbitrary<Scripted> = fc.record({
    status: fc.constantFrom(200, 200, 206, 206, 301, 307, 400, 403, 404, 412, 500, 503),
    headers: fc.record({
      // Sizes S3 could serve: a HEAD claiming terabytes that every GET then honours is a long download, not a bug.
      'content-length': fc.oneof(fc.constantFrom('0', '-1', '1e3', 'abc', ''), fc.integer({ min: 0, max: 5000 }).map(String)),
      etag: headerValue,
      'x-amz-version-id': headerValue,
      'x-amz-bucket-region': headerValue,
      'content-range': headerValue,
    }, { requiredKeys: [] }),
    body: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  });

  const budget = { runs: 150, timeMs: 3_000, caseTimeoutMs: 15_000 };

  it('a file of the size S3 gave, or a RevisionError; the requests name exactly that bucket and key', { timeout: testTimeout(budget.timeMs) }, async () => {
    // Mostly names S3 takes, so the download itself is fuzzed and not only the refusal of a bad bucket.
    const bucket = fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9.-]{1,20}$/) }, { weight: 1, arbitrary: name });
    const revision = fc.record({ bucket, key: name, version: fc.option(name, { nil: undefined }), etag: fc.option(name, { nil: undefined }) });
    await fuzz(import.meta.url, fc.asyncProperty(revision, fc.array(answer, { minLength: 1, maxLength: 4 }), async (locator, answers) => {
      s3.answers.splice(0, Infinity, ...answers);
      s3.requests.length = 0;
      const dir = join(tmp.dir, `case-${caseNumber++}`);
      mkdirSync(dir);
      const dest = join(dir, 'bundle');
      const result = await settleOrTypedError(() => downloadS3Bundle({ type: 'S3', bundleType: 'tgz', ...locator }, dest, {
        region: 'us-east-1',
        credentials: async () => ({ accessKeyId: 'AKIDFUZZ', secretAccessKey: 'fuzz' }),
        endpointOverride: s3.url,
        env: {},
        partSizeBytes: 1024,
        concurrency: 2,
        maxPartAttempts: 2,
        partRetryBaseDelayMs: 1,
        idleTimeoutMs: 100,
        logger: silentLogger,
        clientOverrides: { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', maxAttempts: 1 },
      }), [RevisionError]);
      expect(readdirSync(dir)).toEqual(result ? ['bundle'] : []);
      if (result) expect(readFileSync(dest).length).toBe(result.bytes);
      // As sent: the path is not normalised here, since S3 takes '..' in a key as a name.
      for (const request of s3.requests) {
        expect(decodeURIComponent(request.url.split('?')[0]), request.url).toBe(`/${locator.bucket}/${locator.key}`);
      }
    }), budget);
  });
});
