import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { RevisionError } from '../../src/report/errors.js';
import { downloadGitHubBundle, gitHubArchiveUrl, type GitHubDownloadOptions, type GitHubRevision } from '../../src/revision/github.js';
import { startGitHubDouble, type GitHubDouble } from '../doubles/github.js';
import { makeTempDir } from '../helpers/tmp.js';
import { startConnectProxy } from './connect-proxy.js';

const TOKEN = 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';
const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const TARBALL = Buffer.from('\x1f\x8b pretend this is a gzipped tarball '.repeat(2000), 'latin1');
const ZIPBALL = Buffer.from('PK\x03\x04 pretend this is a zip '.repeat(1500), 'latin1');

describe('downloadGitHubBundle', () => {
  let github: GitHubDouble;
  let tmp: { dir: string; cleanup: () => void };
  let logger: MemoryLogger;
  let dest: string;

  const revision = (extra: Partial<GitHubRevision> = {}): GitHubRevision => ({
    type: 'GitHub',
    account: 'octo-org',
    repository: 'web-app',
    commitId: COMMIT,
    ...extra,
  });
  const options = (extra: Partial<GitHubDownloadOptions> = {}): GitHubDownloadOptions => ({
    apiBase: github.apiBase,
    logger,
    retryDelaysMs: [20, 20, 20],
    ...extra,
  });

  async function useDouble(token?: string): Promise<void> {
    await github?.stop();
    github = await startGitHubDouble({ token });
    github.setArchive('octo-org', 'web-app', COMMIT, 'tar', TARBALL);
    github.setArchive('octo-org', 'web-app', COMMIT, 'zip', ZIPBALL);
  }

  /** Every place a secret could leak to: log lines, the error message, its cause chain. */
  function expectNoSecrets(error?: unknown): void {
    const text = [logger.text(), String((error as Error | undefined)?.message ?? ''), String((error as Error | undefined)?.stack ?? '')].join('\n');
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('CODELOADSECRET123');
  }

  beforeEach(async () => {
    tmp = makeTempDir('cda-github-');
    dest = join(tmp.dir, 'bundle.tar');
    logger = new MemoryLogger();
    await useDouble();
  });

  afterEach(async () => {
    await github.stop();
    tmp.cleanup();
  });

  it('builds the API URL as the Ruby agent', () => {
    expect(gitHubArchiveUrl(revision())).toBe(`https://api.github.com/repos/octo-org/web-app/tarball/${COMMIT}`);
    expect(gitHubArchiveUrl(revision({ bundleType: 'zip' }), 'https://ghe.example/api/v3/')).toBe(`https://ghe.example/api/v3/repos/octo-org/web-app/zipball/${COMMIT}`);
  });

  it('downloads a tarball anonymously when no bundle type is given, following the redirect', async () => {
    const seen: number[] = [];
    const result = await downloadGitHubBundle(revision(), dest, options({ onProgress: (p) => seen.push(p.bytes) }));
    expect(result).toEqual({ bundleType: 'tar' });
    expect(readFileSync(dest).equals(TARBALL)).toBe(true);
    expect(seen.at(-1)).toBe(TARBALL.length);
    expect(github.requests.map((r) => [r.server, r.url.split('?')[0]])).toEqual([
      ['api', `/repos/octo-org/web-app/tarball/${COMMIT}`],
      ['codeload', `/octo-org/web-app/legacy.tar.gz/${COMMIT}`],
    ]);
    expect(github.requests.every((r) => r.authorization === undefined)).toBe(true);
    expect(logger.text()).toContain('anonymously');
  });

  it('sends the token to the API only, never to the redirect host, and never logs it', async () => {
    await useDouble(TOKEN);
    const result = await downloadGitHubBundle(revision({ bundleType: 'zip' }), dest, options({ token: TOKEN }));
    expect(result).toEqual({ bundleType: 'zip' });
    expect(readFileSync(dest).equals(ZIPBALL)).toBe(true);
    const api = github.requests.filter((r) => r.server === 'api');
    const codeload = github.requests.filter((r) => r.server === 'codeload');
    expect(api).toHaveLength(1);
    expect(api[0].authorization).toBe(`token ${TOKEN}`);
    expect(api[0].url).toBe(`/repos/octo-org/web-app/zipball/${COMMIT}`);
    expect(codeload).toHaveLength(1);
    expect(codeload[0].authorization).toBeUndefined();
    expect(logger.lines.length).toBeGreaterThan(0);
    expectNoSecrets();
  });

  it("refuses '.' and '..' as names, which a URL would resolve into another path (found by test/fuzz/locators.test.ts)", async () => {
    for (const bad of [{ repository: '..' }, { account: '.' }, { commitId: '..' }]) {
      expect(() => gitHubArchiveUrl(revision(bad))).toThrow(RevisionError);
    }
    expect(() => gitHubArchiveUrl(revision({ commitId: '..' }))).toThrow(`GitHub revision octo-org/web-app@.. cannot be fetched: '..' is not a GitHub account, repository or commit name`);
    await expect(downloadGitHubBundle(revision({ account: '..' }), dest, options())).rejects.toBeInstanceOf(RevisionError);
    expect(github.requests).toEqual([]);
  });

  it.each(['file:///etc/passwd', 'data:,hello', 'ftp://127.0.0.1/x', 'http://[::1'])(
    'a redirect to %s is a RevisionError saying so, not a TypeError (found by test/fuzz/locators.test.ts)',
    async (location) => {
      github.failApi(1, { status: 302, headers: { location } });
      const error = await downloadGitHubBundle(revision(), dest, options()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RevisionError);
      expect((error as Error).message).toMatch(/server returned 302 'redirect to (a [a-z]+: URL, which is not followed|an invalid location \(http:\/\/\[::1\))'/);
      expect((error as Error).cause).not.toBeInstanceOf(TypeError);
      expect(github.requests.filter((r) => r.server === 'api')).toHaveLength(1);
    },
  );

  it('retries after a 500 and then succeeds', async () => {
    github.failApi(1, { status: 500 });
    await downloadGitHubBundle(revision(), dest, options());
    expect(readFileSync(dest).equals(TARBALL)).toBe(true);
    expect(github.requests.filter((r) => r.server === 'api')).toHaveLength(2);
    expect(logger.text()).toMatch(/warn .*failed \(500 'Internal Server Error'\); retry 1\/3 in 20ms/);
  });

  it('waits as long as Retry-After asks on a 429', async () => {
    github.failApi(1, { status: 429, headers: { 'retry-after': '1' } });
    await downloadGitHubBundle(revision(), dest, options({ retryDelaysMs: [10, 10, 10] }));
    const [first, second] = github.requests.filter((r) => r.server === 'api');
    expect(second.at - first.at).toBeGreaterThanOrEqual(950);
    expect(readFileSync(dest).equals(TARBALL)).toBe(true);
  });

  it('treats a 403 with a spent rate limit as retriable and waits until the reset', async () => {
    const reset = Math.ceil(Date.now() / 1000) + 1;
    github.failApi(1, { status: 403, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) }, body: '{"message":"API rate limit exceeded"}' });
    await downloadGitHubBundle(revision(), dest, options({ retryDelaysMs: [10] }));
    const [, second] = github.requests.filter((r) => r.server === 'api');
    expect(second.at).toBeGreaterThanOrEqual(reset * 1000 - 50);
  });

  it('caps what a server may ask it to wait', async () => {
    github.failApi(1, { status: 503, headers: { 'retry-after': '3600' } });
    const started = Date.now();
    await downloadGitHubBundle(revision(), dest, options({ retryDelaysMs: [10], maxRetryWaitMs: 100 }));
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('retries a download whose connection drops mid-body', async () => {
    github.cutDownloads(1);
    await downloadGitHubBundle(revision(), dest, options());
    expect(readFileSync(dest).equals(TARBALL)).toBe(true);
    expect(github.requests.filter((r) => r.server === 'codeload')).toHaveLength(2);
    expect(logger.text()).toMatch(/failed \(network error '/);
  });

  it('fails after three retries listing every code, as the Ruby agent, with the token redacted', async () => {
    await useDouble(TOKEN);
    github.failApi(4, { status: 502 });
    const error = await downloadGitHubBundle(revision(), dest, options({ token: TOKEN })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RevisionError);
    const url = `${github.apiBase}/repos/octo-org/web-app/tarball/${COMMIT}`;
    expect((error as Error).message).toBe(
      `Could not download bundle at '${url}' after 3 retries. Server returned codes: 502 'Bad Gateway'; 502 'Bad Gateway'; 502 'Bad Gateway'; 502 'Bad Gateway'.`,
    );
    expect(github.requests.filter((r) => r.server === 'api')).toHaveLength(4);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.download`)).toBe(false);
    expectNoSecrets(error);
  });

  it('fails at once with a hint when a private repository is asked for without a token', async () => {
    await useDouble(TOKEN);
    const error = await downloadGitHubBundle(revision(), dest, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RevisionError);
    expect((error as Error).message).toMatch(/server returned 404 'Not Found' \(Not Found\)\. .*a private repository needs a GitHub token/);
    expect(github.requests).toHaveLength(1);
  });

  it('fails at once on a refused token without repeating it', async () => {
    await useDouble(TOKEN);
    const wrong = 'ghp_' + 'Z'.repeat(36);
    const error = await downloadGitHubBundle(revision(), dest, options({ token: wrong })).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/401 'Unauthorized' \(Bad credentials\)\. The GitHub token was refused/);
    expect((error as Error).message).not.toContain(wrong);
    expect(logger.text()).not.toContain(wrong);
  });

  it('rejects a bundle type other than zip or tar with the Ruby agent\'s message', async () => {
    const error = await downloadGitHubBundle(revision({ bundleType: 'tgz' as never }), dest, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RevisionError);
    expect((error as Error).message).toBe('GitHub revision specified with bundle_type other than zip or tar [bundle_type=tgz');
    expect(github.requests).toHaveLength(0);
  });

  it('goes through proxy_uri for both the API and the redirect host', async () => {
    const proxy = await startConnectProxy();
    try {
      await downloadGitHubBundle(revision(), dest, options({ proxyUri: proxy.uri }));
      expect(readFileSync(dest).equals(TARBALL)).toBe(true);
      expect(proxy.tunnels.map((t) => t.target)).toEqual([new URL(github.apiBase).host, new URL(github.codeloadOrigin).host]);
    } finally {
      await proxy.stop();
    }
  });

  it('without proxy_uri, goes through HTTP(S)_PROXY from the environment, per host as NO_PROXY says', async () => {
    const proxy = await startConnectProxy();
    try {
      await downloadGitHubBundle(revision(), dest, options({ env: { HTTP_PROXY: proxy.uri } }));
      expect(readFileSync(dest).equals(TARBALL)).toBe(true);
      expect(proxy.tunnels.map((t) => t.target)).toEqual([new URL(github.apiBase).host, new URL(github.codeloadOrigin).host]);
      // NO_PROXY names the API host (host and port): only the redirect host goes through the proxy.
      const api = new URL(github.apiBase);
      await downloadGitHubBundle(revision(), dest, options({ env: { http_proxy: proxy.uri, no_proxy: `${api.hostname}:${api.port}` } }));
      expect(readFileSync(dest).equals(TARBALL)).toBe(true);
      expect(proxy.tunnels.map((t) => t.target).slice(2)).toEqual([new URL(github.codeloadOrigin).host]);
    } finally {
      await proxy.stop();
    }
  });
});
