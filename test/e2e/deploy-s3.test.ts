import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, PutBucketVersioningCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImdsDouble } from '../doubles/imds.js';
import { motoMissingReason, startMoto, type MotoServer } from '../doubles/moto.js';
import { AGENT_TARGETS, runCli } from '../helpers/cli.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeTempDir } from '../helpers/tmp.js';
import { agentEnv, makeRecordingBundle, motoAdmin, readRecords, S3_TEST_CREDENTIALS, tgzOf } from './fixtures.js';

/**
 * `codedeploy-agent deploy -l s3://...` end to end: the built CLI, a real S3 (moto on loopback) with a
 * versioned bucket, real hooks. The S3 endpoint comes from `:s3_endpoint_override:` in the agent config
 * (path-style), credentials and region from the environment, as an operator would run it. Against the source
 * build and the single executable alike.
 */
describe.skipIf(motoMissingReason !== undefined).each(AGENT_TARGETS)('deploy from S3 ($name)', (target) => {
  const tmp = makeTempDir('cda-e2e-s3-');
  const bucket = 'e2e-versioned-bundles';
  const key = 'apps/web/bundle.tgz';
  let moto: MotoServer;
  let admin: S3Client;
  let configFile: string;
  const uploaded: { version: string; etag: string; versionId: string }[] = [];

  beforeAll(async () => {
    moto = await startMoto();
    admin = motoAdmin(moto.endpoint);
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    await admin.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    for (const version of ['v1', 'v2']) {
      const dir = makeRecordingBundle(join(tmp.dir, `bundle-${version}`), {
        version,
        destination: join(tmp.dir, 'dest'),
        recordFile: join(tmp.dir, 'records.txt'),
      });
      const body = tgzOf(dir, `${dir}.tgz`);
      const answer = await admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      uploaded.push({ version, etag: (answer.ETag ?? '').replaceAll('"', ''), versionId: answer.VersionId ?? '' });
    }
    expect(uploaded.every((u) => u.versionId !== '' && u.etag !== '')).toBe(true);
    configFile = join(tmp.dir, 'agent.yml');
    writeAgentConfig(configFile, { root_dir: join(tmp.dir, 'root'), log_dir: join(tmp.dir, 'log'), pid_dir: join(tmp.dir, 'pid'), s3_endpoint_override: moto.endpoint });
  });

  afterAll(async () => {
    admin?.destroy();
    await moto?.stop();
    tmp.cleanup();
  });

  function deploy(args: string[], env: NodeJS.ProcessEnv = {}) {
    return runCli(['deploy', '-c', configFile, ...args], {
      extendEnv: false,
      env: agentEnv(tmp.dir, {
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey,
        ...env,
      }),
    }, target);
  }

  function freshRecords(before: number) {
    return readRecords(join(tmp.dir, 'records.txt')).slice(before);
  }

  it('deploys the version and ETag named in the location; hooks see BUNDLE_BUCKET/KEY/VERSION/ETAG', async () => {
    const [v1] = uploaded;
    const before = readRecords(join(tmp.dir, 'records.txt')).length;
    const location = `s3://${bucket}/${key}?versionId=${encodeURIComponent(v1.versionId)}&etag=${v1.etag}`;
    const result = await deploy(['-l', location, '-t', 'tgz', '-g', 'group-s3', '-a', 'WebApp']);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toContain('AppSpec file valid. Local deployment successful');
    // The older version, not the current one.
    expect(readFileSync(join(tmp.dir, 'dest', 'index.html'), 'utf8')).toBe('version v1\n');
    const records = freshRecords(before);
    expect(records.map((r) => r.LIFECYCLE_EVENT)).toEqual(['BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService']);
    for (const record of records) {
      expect(record).toMatchObject({ BUNDLE_BUCKET: bucket, BUNDLE_KEY: key, BUNDLE_VERSION: v1.versionId, BUNDLE_ETAG: v1.etag, BUNDLE_COMMIT: undefined, VERSION: 'v1' });
    }
    // The download is in the log, with its size, and the SDK did not complain on the terminal.
    const log = readFileSync(join(tmp.dir, 'log', 'codedeploy-local.log'), 'utf8');
    expect(log).toContain(`Downloading s3://${bucket}/${key} (version ${v1.versionId})`);
    expect(result.stderr).not.toMatch(/Warning|checksum/i);
  });

  it('without a version takes the current one; BUNDLE_VERSION and BUNDLE_ETAG are then unset, not empty', async () => {
    const before = readRecords(join(tmp.dir, 'records.txt')).length;
    const result = await deploy(['-l', `s3://${bucket}/${key}`, '-t', 'tgz', '-g', 'group-s3']);
    expect(result.exitCode, result.all).toBe(0);
    expect(readFileSync(join(tmp.dir, 'dest', 'index.html'), 'utf8')).toBe('version v2\n');
    const records = freshRecords(before);
    // ApplicationStop has no hook in the bundle; the four others ran from v2.
    expect(records.length).toBe(4);
    for (const record of records) {
      expect(record).toMatchObject({ BUNDLE_BUCKET: bucket, BUNDLE_KEY: key, BUNDLE_VERSION: undefined, BUNDLE_ETAG: undefined, VERSION: 'v2' });
    }
  });

  it('an ETag that does not match fails DownloadBundle with the anchor message and installs nothing', async () => {
    const before = readRecords(join(tmp.dir, 'records.txt')).length;
    const [v1, v2] = uploaded;
    const destination = join(tmp.dir, 'dest-mismatch');
    const result = await deploy(['-l', `s3://${bucket}/${key}?versionId=${encodeURIComponent(v2.versionId)}&etag=${v1.etag}`, '-t', 'tgz', '-g', 'group-mismatch']);
    expect(result.exitCode).toBe(1);
    expect(result.all).toContain(`Expected deployment artifact bundle etag ${v1.etag} but was actually ${v2.etag}`);
    expect(result.stdout).toMatch(/DownloadBundle: failed in .*/);
    expect(result.stdout).not.toContain('Local deployment successful');
    expect(freshRecords(before)).toEqual([]);
    expect(existsSync(destination)).toBe(false);
    const groupDir = join(tmp.dir, 'root', 'group-mismatch');
    for (const deployment of readdirSync(groupDir)) {
      const archive = join(groupDir, deployment, 'deployment-archive');
      expect(existsSync(archive) ? readdirSync(archive) : []).toEqual([]);
      expect(existsSync(join(groupDir, deployment, 'bundle.tar'))).toBe(false);
      expect(existsSync(join(groupDir, deployment, 'deployment-archive-staged'))).toBe(false);
    }
    expect(existsSync(join(tmp.dir, 'root', 'deployment-instructions', 'group-mismatch_last_successful_install'))).toBe(false);
  });

  it('a broken revision over a good one fails before the previous revision\'s ApplicationStop, with its position; so does a failed download', async () => {
    const records = join(tmp.dir, 'records.txt');
    const upload = async (name: string, hooks: string[]) => {
      const dir = makeRecordingBundle(join(tmp.dir, `bundle-${name}`), { version: name, destination: join(tmp.dir, 'dest-refused'), recordFile: records, hooks });
      await admin.send(new PutObjectCommand({ Bucket: bucket, Key: `apps/stop/${name}.tgz`, Body: tgzOf(dir, `${dir}.tgz`) }));
      return `s3://${bucket}/apps/stop/${name}.tgz`;
    };
    const good = await upload('good', ['ApplicationStop', 'AfterInstall']);
    const first = await deploy(['-l', good, '-g', 'group-refused']);
    expect(first.exitCode, first.all).toBe(0);

    const broken = await upload('broken', ['ApplicationStop', 'AfterInstal']);
    let before = readRecords(records).length;
    const refused = await deploy(['-l', broken, '-g', 'group-refused']);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`${broken}/appspec.yml:10:3: AfterInstal is not a CodeDeploy lifecycle event, so its scripts would never run (did you mean AfterInstall?`);
    expect(refused.stdout).toContain('ApplicationStop: skipped (DownloadBundle failed)');
    expect(freshRecords(before)).toEqual([]);

    const missing = await deploy(['-l', `s3://${bucket}/apps/stop/none.tgz`, '-g', 'group-refused']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain(`ERROR: DownloadBundle failed with UnknownError (error code 5): No object at s3://${bucket}/apps/stop/none.tgz`);
    expect(missing.stdout).toContain('ApplicationStop: skipped (DownloadBundle failed)');
    expect(freshRecords(before)).toEqual([]);

    // The stop hook was due all along: the next good revision runs it, from the first one.
    before = readRecords(records).length;
    const next = await deploy(['-l', good, '-g', 'group-refused']);
    expect(next.exitCode, next.all).toBe(0);
    expect(freshRecords(before).map((r) => `${r.LIFECYCLE_EVENT} ${r.VERSION}`)).toEqual(['ApplicationStop good', 'AfterInstall good']);
  });

  it('a missing object fails DownloadBundle with a message naming it', async () => {
    const result = await deploy(['-l', `s3://${bucket}/no/such/bundle.tgz`, '-t', 'tgz', '-g', 'group-missing']);
    expect(result.exitCode).toBe(1);
    expect(result.all).toContain(`No object at s3://${bucket}/no/such/bundle.tgz`);
  });

  it('without a region it says how to give one, before anything runs', async () => {
    const result = await deploy(['-l', `s3://${bucket}/${key}`, '-t', 'tgz', '-g', 'group-noregion'], { AWS_REGION: undefined });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/ERROR: .*region.*AWS_REGION/);
    expect(existsSync(join(tmp.dir, 'root', 'group-noregion'))).toBe(false);
  });

  it('on a host registered with an on-premises file, takes region and keys from it when the environment has none', async () => {
    const onPremises = join(tmp.dir, 'onprem.yml');
    writeFileSync(onPremises, ['iam_user_arn: arn:aws:iam::123456789012:user/onprem-host', 'aws_access_key_id: AKIAONPREMISES000001', 'aws_secret_access_key: onPremisesSecretKeyForTheE2eTest/0123', 'region: us-east-1', ''].join('\n'));
    const onPremConfig = join(tmp.dir, 'agent-onprem.yml');
    writeFileSync(onPremConfig, `${readFileSync(configFile, 'utf8')}:on_premises_config_file: ${onPremises}\n`);
    const result = await runCli(['deploy', '-c', onPremConfig, '-l', `s3://${bucket}/${key}`, '-t', 'tgz', '-g', 'group-onprem', '-b', 'OVERWRITE'], {
      extendEnv: false,
      env: agentEnv(tmp.dir),
    }, target);
    expect(result.exitCode, result.all).toBe(0);
    expect(readFileSync(join(tmp.dir, 'log', 'codedeploy-local.log'), 'utf8')).not.toContain('onPremisesSecretKeyForTheE2eTest');
  });

  it('on EC2, takes the region and the instance profile from instance metadata (the IMDS double)', async () => {
    const imds = await ImdsDouble.start({ region: 'us-east-1' });
    try {
      const result = await deploy(['-l', `s3://${bucket}/${key}`, '-t', 'tgz', '-g', 'group-ec2', '-b', 'OVERWRITE'], {
        AWS_REGION: undefined,
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
        AWS_EC2_METADATA_DISABLED: undefined,
        AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url,
      });
      expect(result.exitCode, result.all).toBe(0);
      const paths = imds.requests.map((r) => r.path);
      expect(paths).toContain('/latest/dynamic/instance-identity/document');
      expect(paths.some((p) => p.startsWith('/latest/meta-data/iam/security-credentials/'))).toBe(true);
    } finally {
      await imds.close();
    }
  });

  it('without any credentials it says where credentials come from', async () => {
    const result = await deploy(['-l', `s3://${bucket}/${key}`, '-t', 'tgz', '-g', 'group-nocreds'], { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`ERROR: DownloadBundle failed with UnknownError (error code 5): We were unable to download content from the Amazon S3 bucket due to missing or invalid credentials: none were found to read s3://${bucket}/${key}`);
    expect(result.stderr).toContain('AWS_ACCESS_KEY_ID');
  });

  it('without --type, the key\'s name gives the type (and the output says so); a key that does not say needs --type', async () => {
    const named = await deploy(['-l', `s3://${bucket}/${key}`, '-g', 'group-notype', '-b', 'OVERWRITE']);
    expect(named.stdout).toContain(`s3://${bucket}/${key} is a gzip-compressed tar (tgz) (by its name): deploying it as -t tgz`);
    expect(named.exitCode, named.all).toBe(0);
    const unnamed = await deploy(['-l', `s3://${bucket}/apps/web/bundle`, '-g', 'group-notype']);
    expect(unnamed.exitCode).toBe(1);
    expect(unnamed.stderr).toContain("the key's name does not say what kind of archive it is: give its --type (tgz, tar or zip)");
  });
});
