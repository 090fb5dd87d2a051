import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGitHubDouble, type GitHubDouble } from '../doubles/github.js';
import { AGENT_BIN, runCli } from '../helpers/cli.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeTempDir } from '../helpers/tmp.js';
import { missingTool } from '../helpers/prerequisites.js';
import { agentEnv, filesContaining, makeRecordingBundle, readRecords, tgzOf, zipOf } from './fixtures.js';

/**
 * `codedeploy-agent deploy -l https://github.com/...` end to end against the loopback GitHub double (a
 * private repository: the API checks the token and redirects to a "codeload" origin that serves the
 * archive). The API base comes from `:github_api_base:` in the agent config.
 */
const TOKEN = 'e2eGitHubToken-7f3kQ9xWv';
const SHA = 'c0ffee1234567890abcdef1234567890abcdef12';

describe('deploy from GitHub', () => {
  const noZip = missingTool('zip') !== undefined;
  const tmp = makeTempDir('cda-e2e-gh-');
  const recordFile = join(tmp.dir, 'records.txt');
  const destination = join(tmp.dir, 'dest');
  let github: GitHubDouble;
  let configFile: string;

  beforeAll(async () => {
    github = await startGitHubDouble({ token: TOKEN });
    const dir = makeRecordingBundle(join(tmp.dir, 'bundle'), { version: 'gh1', destination, recordFile });
    // Incompressible padding, so a paced download takes long enough to draw a bar.
    writeFileSync(join(dir, 'content', 'padding.bin'), randomBytes(256 * 1024));
    const top = `octo-webapp-${SHA.slice(0, 7)}`;
    github.setArchive('octo', 'webapp', SHA, 'tar', tgzOf(dir, join(tmp.dir, 'gh.tgz'), top));
    if (!noZip) github.setArchive('octo', 'webapp', 'HEAD', 'zip', zipOf(dir, join(tmp.dir, 'gh.zip'), top));
    configFile = join(tmp.dir, 'agent.yml');
    writeAgentConfig(configFile, { root_dir: join(tmp.dir, 'root'), log_dir: join(tmp.dir, 'log'), pid_dir: join(tmp.dir, 'pid'), github_api_base: github.apiBase });
  });

  afterAll(async () => {
    await github?.stop();
    tmp.cleanup();
  });

  beforeEach(() => {
    github.requests.length = 0;
    github.pace(undefined);
  });

  function deploy(args: string[], env: NodeJS.ProcessEnv = {}) {
    // Every test installs the same files to the same place.
    return runCli(['deploy', '-c', configFile, '-b', 'OVERWRITE', ...args], { extendEnv: false, env: agentEnv(tmp.dir, env) });
  }

  function expectTokenNowhere(output: string): void {
    expect(output).not.toContain(TOKEN);
    expect(filesContaining(join(tmp.dir, 'log'), TOKEN)).toEqual([]);
    expect(filesContaining(join(tmp.dir, 'root'), TOKEN)).toEqual([]);
  }

  it('deploys a tarball at a commit: top folder stripped, BUNDLE_COMMIT for hooks, the token only sent to the API', async () => {
    const before = readRecords(recordFile).length;
    const result = await deploy(['-l', `https://api.github.com/repos/octo/webapp/tarball/${SHA}`, '-t', 'tar', '-g', 'group-gh', '--github-token', TOKEN]);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toContain('AppSpec file valid. Local deployment successful');
    expect(readFileSync(join(destination, 'index.html'), 'utf8')).toBe('version gh1\n');
    const records = readRecords(recordFile).slice(before);
    expect(records.map((r) => r.LIFECYCLE_EVENT)).toEqual(['BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService']);
    for (const record of records) {
      expect(record).toMatchObject({ BUNDLE_COMMIT: SHA, BUNDLE_BUCKET: undefined, BUNDLE_KEY: undefined, VERSION: 'gh1' });
    }
    // The single `<owner>-<repo>-<sha>/` folder is gone: the appspec sits at the archive's root.
    const last = readFileSync(join(tmp.dir, 'root', 'deployment-instructions', 'group-gh_last_successful_install'), 'utf8');
    expect(readdirSync(join(last, 'deployment-archive')).sort()).toEqual(['appspec.yml', 'content', 'scripts']);

    const api = github.requests.filter((r) => r.server === 'api');
    const codeload = github.requests.filter((r) => r.server === 'codeload');
    expect(api.map((r) => [r.url, r.authorization])).toEqual([[`/repos/octo/webapp/tarball/${SHA}`, `token ${TOKEN}`]]);
    expect(codeload).toHaveLength(1);
    expect(codeload[0].authorization).toBeUndefined();
    expectTokenNowhere(result.all);
    // The codeload URL's own short-lived token is not logged either.
    expect(filesContaining(join(tmp.dir, 'log'), 'CODELOADSECRET123')).toEqual([]);
  });

  it.skipIf(noZip)('deploys a repository URL as a zipball of HEAD (codedeploy-local rules), the token from CODEDEPLOY_GITHUB_TOKEN', async () => {
    const before = readRecords(recordFile).length;
    const result = await deploy(['-l', 'https://github.com/octo/webapp', '-g', 'group-gh-zip'], { CODEDEPLOY_GITHUB_TOKEN: TOKEN });
    expect(result.exitCode, result.all).toBe(0);
    expect(github.requests.find((r) => r.server === 'api')?.url).toBe('/repos/octo/webapp/zipball/HEAD');
    const records = readRecords(recordFile).slice(before);
    expect(records.length).toBe(4);
    expect(records.every((r) => r.BUNDLE_COMMIT === 'HEAD')).toBe(true);
    expect(github.requests.find((r) => r.server === 'api')?.authorization).toBe(`token ${TOKEN}`);
    expectTokenNowhere(result.all);
  });

  it('a refused token fails DownloadBundle with GitHub\'s answer and without echoing the token', async () => {
    const wrong = `${TOKEN}-revoked`;
    const result = await deploy(['-l', `https://api.github.com/repos/octo/webapp/tarball/${SHA}`, '-t', 'tar', '-g', 'group-gh-bad', '--github-token', wrong]);
    expect(result.exitCode).toBe(1);
    expect(result.all).toContain("401 'Unauthorized'");
    expect(result.all).toContain('The GitHub token was refused');
    expect(result.all).not.toContain(wrong);
    expect(filesContaining(join(tmp.dir, 'log'), wrong)).toEqual([]);
  });

  it('without a token a private repository is "not found", with a hint about tokens', async () => {
    const result = await deploy(['-l', `https://api.github.com/repos/octo/webapp/tarball/${SHA}`, '-t', 'tar', '-g', 'group-gh-anon']);
    expect(result.exitCode).toBe(1);
    expect(result.all).toContain("404 'Not Found'");
    expect(result.all).toContain('a private repository needs a GitHub token');
  });

  it('draws a progress bar (bytes, total, rate, ETA) on a terminal while the bundle downloads', async () => {
    github.pace(16 * 1024, 100);
    const command = [process.execPath, AGENT_BIN, 'deploy', '-c', configFile, '-b', 'OVERWRITE', '-l', `https://api.github.com/repos/octo/webapp/tarball/${SHA}`, '-t', 'tar', '-g', 'group-gh-tty', '--github-token', TOKEN]
      .map((arg) => `'${arg.replaceAll("'", "'\\''")}'`)
      .join(' ');
    // `script` gives the agent a pseudo-terminal as stdout.
    const result = await execa('script', ['-qfec', command, '/dev/null'], { reject: false, extendEnv: false, env: { ...agentEnv(tmp.dir), COLUMNS: '120' } });
    const output = String(result.stdout);
    expect(result.exitCode, output).toBe(0);
    // An unknown terminal width counts as 80 columns; the long label is shortened so the figures still show.
    const redraws = output.split('\r').filter((part) => part.startsWith('GitHub o'));
    expect(redraws.length, output).toBeGreaterThan(3);
    expect(redraws.some((line) => /\[#*\.+\]\s+\d+% .* \/ .*\/s ETA /.test(line)), output).toBe(true);
    expect(redraws.at(-1)).toMatch(/\[#+\] 100%/);
    // The download comes before the first event (the revision is checked before any hook runs); the
    // bar's line is ended before the first event line is printed.
    expect(output).toMatch(/100%[^\r\n]*\r?\n[^\n]*Starting to execute deployment from within folder/);
    expect(output).toMatch(/DownloadBundle: succeeded/);
    expect(output).not.toContain(TOKEN);
  });
});
