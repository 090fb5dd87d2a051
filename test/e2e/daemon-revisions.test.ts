import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, PutBucketVersioningCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSpec, type FakeDeployment } from '../doubles/commands-service.js';
import { startGitHubDouble, type GitHubDouble } from '../doubles/github.js';
import { motoMissingReason, startMoto, type MotoServer } from '../doubles/moto.js';
import { AGENT_TARGETS, runCli } from '../helpers/cli.js';
import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
import { agentEnv, filesContaining, makeRecordingBundle, motoAdmin, readRecords, tgzOf } from './fixtures.js';

/**
 * The daemon (`codedeploy-agent run`) deploying S3 and GitHub revisions handed out by the commands-service
 * double: the real process, the real commands client (SigV4 with the on-premises IAM user's keys), moto
 * behind `:s3_endpoint_override:` and the GitHub double behind `:github_api_base:`. Against the source build
 * and the single executable alike.
 */
const HOST = 'arn:aws:iam::123456789012:user/onprem-e2e';
const TOKEN = 'daemonE2eGitHubToken-Hq27pL';
const SHA = '0123456789abcdef0123456789abcdef01234567';
const BUCKET = 'e2e-daemon-bundles';
const KEY = 'releases/app.tgz';

describe.skipIf(motoMissingReason !== undefined).each(AGENT_TARGETS)('daemon deployments of S3 and GitHub revisions ($name)', (target) => {
  useDaemonWorld('e2e-daemon');
  let recordFile: string;
  let moto: MotoServer;
  let admin: S3Client;
  let github: GitHubDouble;
  const s3Objects: Record<string, { etag: string; versionId: string }> = {};

  beforeAll(async () => {
    [moto, github] = await Promise.all([startMoto(), startGitHubDouble({ token: TOKEN })]);
    // One host for the whole file: its deployment root, logs and records carry over from test to test.
    newWorld({ s3_endpoint_override: moto.endpoint, github_api_base: github.apiBase }, { iamUser: { arn: HOST } });
    recordFile = join(world.dir, 'records.txt');
    admin = motoAdmin(moto.endpoint);
    await admin.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await admin.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: 'Enabled' } }));
    for (const version of ['s3-v1', 's3-v2']) {
      const dir = makeRecordingBundle(join(world.dir, version), { version, destination: join(world.dir, 'dest'), recordFile });
      const answer = await admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: tgzOf(dir, `${dir}.tgz`) }));
      s3Objects[version] = { etag: (answer.ETag ?? '').replaceAll('"', ''), versionId: answer.VersionId ?? '' };
    }
    const ghDir = makeRecordingBundle(join(world.dir, 'gh'), { version: 'gh', destination: join(world.dir, 'dest'), recordFile });
    // Incompressible, so a paced download lasts long enough to be watched.
    writeFileSync(join(ghDir, 'content', 'padding.bin'), randomBytes(192 * 1024));
    github.setArchive('octo', 'service', SHA, 'tar', tgzOf(ghDir, join(world.dir, 'gh.tgz'), `octo-service-${SHA.slice(0, 7)}`));
  });

  afterAll(async () => {
    admin?.destroy();
    await Promise.all([moto?.stop(), github?.stop()]);
  });

  function startAgent(): ResultPromise<{ reject: false; all: true; extendEnv: false }> {
    const [command, ...before] = target.command;
    return execa(command, [...before, 'run', '-c', world.configFile], { reject: false, all: true, extendEnv: false, env: agentEnv(world.dir) });
  }

  /** Runs the daemon until `deployment` is done (or `timeoutMs`), stops it with SIGTERM, returns its output. */
  async function deployWithAgent(deployment: FakeDeployment, timeoutMs = 20_000, whileRunning?: () => Promise<void>): Promise<string> {
    const agent = startAgent();
    let failure: unknown;
    try {
      await Promise.all([service.waitForDeployment(deployment, timeoutMs), whileRunning?.()]);
    } catch (error) {
      failure = error;
    } finally {
      agent.kill('SIGTERM');
    }
    const result = await agent;
    const output = String(result.all);
    if (failure) throw new Error(`${(failure as Error).message}\nagent output:\n${output}`);
    expect(result.exitCode, output).toBe(0);
    return output;
  }

  function completionMessages(deployment: FakeDeployment): string {
    return JSON.stringify(deployment.commands.map((c) => c.completions));
  }

  it('deploys an S3 revision pinned by Version and ETag; hooks see BUNDLE_BUCKET/KEY/VERSION/ETAG', async () => {
    const old = s3Objects['s3-v1'];
    const spec = makeSpec({
      revision: { RevisionType: 'S3', S3Revision: { Bucket: BUCKET, Key: KEY, BundleType: 'tgz', Version: old.versionId, ETag: `"${old.etag}"` } },
      fileExistsBehavior: 'OVERWRITE',
    });
    const deployment = service.addDeployment({ hostIdentifier: HOST, spec });
    const before = readRecords(recordFile).length;
    await deployWithAgent(deployment);
    expect(deployment.status, completionMessages(deployment)).toBe('Succeeded');
    expect(readFileSync(join(world.dir, 'dest', 'index.html'), 'utf8')).toBe('version s3-v1\n');
    const records = readRecords(recordFile).slice(before);
    expect(records.map((r) => r.LIFECYCLE_EVENT)).toEqual(['BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService']);
    for (const record of records) {
      expect(record).toMatchObject({
        DEPLOYMENT_ID: spec.DeploymentId,
        BUNDLE_BUCKET: BUCKET,
        BUNDLE_KEY: KEY,
        BUNDLE_VERSION: old.versionId,
        // As the spec gave it: the anchor passes the value through.
        BUNDLE_ETAG: `"${old.etag}"`,
        VERSION: 's3-v1',
      });
    }
    const agentLog = readFileSync(join(world.dir, 'log', 'codedeploy-agent.log'), 'utf8');
    expect(agentLog).toContain(`Downloading s3://${BUCKET}/${KEY} (version ${old.versionId})`);
  });

  it('an S3 ETag mismatch fails DownloadBundle with the anchor message; nothing is installed', async () => {
    const spec = makeSpec({
      deploymentGroupId: 'group-etag-mismatch',
      revision: { RevisionType: 'S3', S3Revision: { Bucket: BUCKET, Key: KEY, BundleType: 'tgz', ETag: 'not-the-etag' } },
    });
    const deployment = service.addDeployment({ hostIdentifier: HOST, spec });
    const before = readRecords(recordFile).length;
    await deployWithAgent(deployment);
    expect(deployment.status).toBe('Failed');
    const download = deployment.commands.find((c) => c.commandName === 'DownloadBundle');
    expect(download?.status).toBe('Failed');
    expect(JSON.stringify(download?.completions)).toContain(
      `Expected deployment artifact bundle etag not-the-etag but was actually ${s3Objects['s3-v2'].etag}`,
    );
    expect(deployment.commands.find((c) => c.commandName === 'Install')?.status).not.toBe('Succeeded');
    expect(readRecords(recordFile).slice(before).filter((r) => r.DEPLOYMENT_ID === spec.DeploymentId)).toEqual([]);
  });

  it('deploys a GitHub revision with a token that appears in no log, while status shows the download', async () => {
    // ~12 s: long enough for a progress line in the agent log and several status snapshots.
    github.pace(4 * 1024, 220);
    const spec = makeSpec({
      deploymentGroupId: 'group-github',
      revision: { RevisionType: 'GitHub', GitHubRevision: { Account: 'octo', Repository: 'service', CommitId: SHA, BundleType: 'tar' } },
      gitHubAccessToken: TOKEN,
      fileExistsBehavior: 'OVERWRITE',
    });
    const deployment = service.addDeployment({ hostIdentifier: HOST, spec });
    const before = readRecords(recordFile).length;
    const seen: { bytes: number; total?: number; bytesPerSecond: number; etaSeconds?: number; deploymentId: string }[] = [];
    const watchStatus = async () => {
      const deadline = Date.now() + 25_000;
      while (Date.now() < deadline && deployment.status !== 'Succeeded' && deployment.status !== 'Failed') {
        const status = await runCli(['status', '--json', '-c', world.configFile], { extendEnv: false, env: agentEnv(world.dir) }, target);
        try {
          const report = JSON.parse(status.stdout) as { downloads?: typeof seen };
          seen.push(...(report.downloads ?? []));
        } catch {
          // the agent may not have written its first snapshot yet
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    };
    let output: string;
    try {
      output = await deployWithAgent(deployment, 40_000, watchStatus);
    } finally {
      github.pace(undefined);
    }
    expect(deployment.status, completionMessages(deployment)).toBe('Succeeded');
    expect(readFileSync(join(world.dir, 'dest', 'index.html'), 'utf8')).toBe('version gh\n');
    const records = readRecords(recordFile).slice(before);
    expect(records.length).toBe(4);
    for (const record of records) expect(record).toMatchObject({ BUNDLE_COMMIT: SHA, BUNDLE_BUCKET: undefined, VERSION: 'gh' });

    // The token went to the API host only.
    expect(github.requests.filter((r) => r.server === 'api').every((r) => r.authorization === `token ${TOKEN}`)).toBe(true);
    expect(github.requests.filter((r) => r.server === 'codeload').every((r) => r.authorization === undefined)).toBe(true);

    // Status snapshots during the download: figures for this deployment, growing, with the total.
    const ours = seen.filter((d) => d.deploymentId === spec.DeploymentId);
    expect(ours.length, JSON.stringify(seen)).toBeGreaterThan(2);
    expect(ours.some((d) => d.bytes > 0 && d.total !== undefined && d.bytes < d.total && d.bytesPerSecond > 0 && d.etaSeconds !== undefined)).toBe(true);
    expect(ours.at(-1)!.bytes).toBeGreaterThan(ours[0].bytes);

    // A progress line in the agent log while it ran.
    const agentLog = readFileSync(join(world.dir, 'log', 'codedeploy-agent.log'), 'utf8');
    expect(agentLog).toMatch(/GitHub octo\/service@0123456789ab: [\d.]+ KiB of [\d.]+ KiB \(\d+%\), [\d.]+ (B|KiB)\/s/);

    // Redacted everywhere: agent log, scripts.log, deployments log, status file, outbox, and what went to the service.
    const scriptsLogs = readdirSync(join(world.dir, 'root', 'group-github')).map((id) => join(world.dir, 'root', 'group-github', id, 'logs', 'scripts.log'));
    expect(scriptsLogs.length).toBeGreaterThan(0);
    expect(readFileSync(join(world.dir, 'root', 'deployment-logs', 'codedeploy-agent-deployments.log'), 'utf8')).toContain(spec.DeploymentId as string);
    expect(filesContaining(join(world.dir, 'log'), TOKEN)).toEqual([]);
    expect(filesContaining(join(world.dir, 'root'), TOKEN)).toEqual([]);
    expect(filesContaining(join(world.dir, 'pid'), TOKEN)).toEqual([]);
    expect(output).not.toContain(TOKEN);
    expect(completionMessages(deployment)).not.toContain(TOKEN);
  }, 60_000);
});
