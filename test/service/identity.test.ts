import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { writeFileSync, utimesSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  memoizeCredentials,
  resolveIdentity,
  resolveLocalAccess,
  sessionFileCredentials,
  staticCredentials,
} from '../../src/service/identity.js';
import { createCommandsClient } from '../../src/service/commands-client.js';
import { ImdsClient } from '../../src/service/imds.js';
import { defaultConfig, type AgentConfig } from '../../src/config/agent-config.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { redact } from '../../src/log/redact.js';
import { ConfigError } from '../../src/report/errors.js';
import { ImdsDouble, IMDS_TEST_CREDENTIALS } from '../doubles/imds.js';
import { FakeCommandsService } from '../doubles/commands-service.js';
import { makeTempDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => void };
let imds: ImdsDouble;

/** An IMDS client that finds nothing (as on a host outside EC2). */
const noImds = () => new ImdsClient({ endpoint: 'http://127.0.0.1:9', timeoutMs: 200, attempts: 1 });

function config(overrides: Partial<AgentConfig> = {}): AgentConfig {
  return { ...defaultConfig(), on_premises_config_file: join(tmp.dir, 'codedeploy.onpremises.yml'), root_dir: join(tmp.dir, 'root'), ...overrides };
}

function writeCredentials(file: string, id: string, secret: string, token: string, profile = 'default'): void {
  writeFileSync(file, `[${profile}]\naws_access_key_id = ${id}\naws_secret_access_key = ${secret}\naws_session_token = ${token}\n`);
}

beforeAll(async () => {
  imds = await ImdsDouble.start({ region: 'ap-southeast-2', accountId: '444455556666', instanceId: 'i-0feed', domain: 'amazonaws.com' });
});

afterAll(async () => {
  await imds.close();
});

beforeEach(() => {
  tmp = makeTempDir();
});

afterEach(() => {
  tmp.cleanup();
});

describe('resolveIdentity (agent-spec §7.6)', () => {
  it('on-premises IAM user: region, ARN and static keys from the file, nothing exported', async () => {
    writeFileSync(join(tmp.dir, 'codedeploy.onpremises.yml'), [
      ':aws_access_key_id: AKIAONPREMUSER0001',
      ':aws_secret_access_key: onPremUserSecret/0123456789',
      ':iam_user_arn: arn:aws:iam::123456789012:user/host-1',
      ':region: us-west-2',
    ].join('\n'));
    const env: NodeJS.ProcessEnv = { AWS_REGION: 'ignored-region', AWS_HOST_IDENTIFIER: 'ignored' };
    const identity = await resolveIdentity(config(), { env, imds: noImds() });
    expect(identity).toMatchObject({ region: 'us-west-2', hostIdentifier: 'arn:aws:iam::123456789012:user/host-1', onPremises: true, onPremisesConfigReadable: true });
    expect(identity.domain).toBeUndefined();
    expect(await identity.credentials()).toEqual({ accessKeyId: 'AKIAONPREMUSER0001', secretAccessKey: 'onPremUserSecret/0123456789' });
    expect(env).toEqual({ AWS_REGION: 'ignored-region', AWS_HOST_IDENTIFIER: 'ignored' });
    expect(process.env.AWS_ACCESS_KEY).toBeUndefined();
    expect(redact('onPremUserSecret/0123456789')).toBe('[REDACTED]');
  });

  it('on-premises IAM session: the credentials file is re-read when it changes', async () => {
    const credentialsFile = join(tmp.dir, 'credentials');
    writeCredentials(credentialsFile, 'ASIASESSION1', 'session-secret-1', 'session-token-1');
    writeFileSync(join(tmp.dir, 'codedeploy.onpremises.yml'), [
      'iam_session_arn: arn:aws:sts::123456789012:assumed-role/CodeDeploy/host-2',
      'region: eu-west-1',
      `aws_credentials_file: ${credentialsFile}`,
    ].join('\n'));
    const identity = await resolveIdentity(config(), { env: {}, imds: noImds() });
    expect(identity).toMatchObject({ region: 'eu-west-1', hostIdentifier: 'arn:aws:sts::123456789012:assumed-role/CodeDeploy/host-2', onPremises: true });
    const first = await identity.credentials();
    expect(first).toMatchObject({ accessKeyId: 'ASIASESSION1', secretAccessKey: 'session-secret-1', sessionToken: 'session-token-1' });
    // An expiration is advertised so SDK clients (S3) come back for fresh credentials within minutes.
    expect(first.expiration!.getTime() - Date.now()).toBeLessThanOrEqual(6 * 60_000);
    expect((await identity.credentials()).accessKeyId).toBe('ASIASESSION1');

    writeCredentials(credentialsFile, 'ASIASESSION2', 'session-secret-2', 'session-token-2-longer');
    expect(await identity.credentials()).toMatchObject({ accessKeyId: 'ASIASESSION2', sessionToken: 'session-token-2-longer' });
    expect(redact('session-secret-2 session-token-2-longer')).toBe('[REDACTED] [REDACTED]');
  });

  it('session credentials: same size rewrite is noticed by mtime, AWS_PROFILE picks the profile, a missing file fails with the anchor message', async () => {
    const file = join(tmp.dir, 'creds');
    writeCredentials(file, 'ASIAAAAAAAA1', 'secret-aaaa', 'token-aaaa', 'agent');
    const provider = sessionFileCredentials(file, { profile: 'agent' });
    expect((await provider()).accessKeyId).toBe('ASIAAAAAAAA1');
    writeCredentials(file, 'ASIAAAAAAAA2', 'secret-bbbb', 'token-bbbb', 'agent');
    const later = new Date(Date.now() + 5_000);
    utimesSync(file, later, later);
    expect((await provider()).accessKeyId).toBe('ASIAAAAAAAA2');
    rmSync(file);
    await expect(provider()).rejects.toThrow(`Failed to load credentials from path ${file}: the file does not exist`);
    writeCredentials(file, 'ASIAAAAAAAA3', 'secret-cccc', 'token-cccc', 'other');
    await expect(provider()).rejects.toThrow(`Failed to load credentials from path ${file}: it has no [agent] profile with aws_access_key_id and aws_secret_access_key`);
  });

  it('session credentials drive the commands client, which signs with the rotated keys', async () => {
    const service = await FakeCommandsService.start({ longPollMs: 10 });
    const credentialsFile = join(tmp.dir, 'credentials');
    const first = { accessKeyId: 'ASIAROTATE01', secretAccessKey: 'rotate-secret-01', sessionToken: 'rotate-token-01' };
    const second = { accessKeyId: 'ASIAROTATE02', secretAccessKey: 'rotate-secret-02', sessionToken: 'rotate-token-02-x' };
    service.credentials = [first, second];
    writeCredentials(credentialsFile, first.accessKeyId, first.secretAccessKey, first.sessionToken);
    writeFileSync(join(tmp.dir, 'codedeploy.onpremises.yml'), `iam_session_arn: arn:aws:sts::1:assumed-role/r/h\nregion: us-east-1\naws_credentials_file: ${credentialsFile}\n`);
    const cfg = config({ deploy_control_endpoint: service.url });
    const identity = await resolveIdentity(cfg, { env: {}, imds: noImds() });
    const client = createCommandsClient(cfg, identity, { env: {} });
    try {
      await client.pollHostCommand(identity.hostIdentifier);
      writeCredentials(credentialsFile, second.accessKeyId, second.secretAccessKey, second.sessionToken);
      await client.pollHostCommand(identity.hostIdentifier);
      expect(service.requests.map((r) => [r.status, r.headers['x-amz-security-token']])).toEqual([[200, 'rotate-token-01'], [200, 'rotate-token-02-x']]);
    } finally {
      client.close();
      await service.close();
    }
  });

  it('EC2: region, host identifier and domain from IMDS, instance-profile credentials', async () => {
    const previous = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = imds.url; // the SDK provider reads the process environment
    try {
      const env = { AWS_SHARED_CREDENTIALS_FILE: join(tmp.dir, 'none'), AWS_CONFIG_FILE: join(tmp.dir, 'none') };
      const identity = await resolveIdentity(config(), { env, imds: new ImdsClient({ endpoint: imds.url, timeoutMs: 500 }) });
      expect(identity).toMatchObject({
        region: 'ap-southeast-2',
        hostIdentifier: 'arn:aws:ec2:ap-southeast-2:444455556666:instance/i-0feed',
        onPremises: false,
        onPremisesConfigReadable: false,
        domain: 'amazonaws.com',
      });
      const credentials = await identity.credentials();
      expect(credentials).toMatchObject({
        accessKeyId: IMDS_TEST_CREDENTIALS.accessKeyId,
        secretAccessKey: IMDS_TEST_CREDENTIALS.secretAccessKey,
        sessionToken: IMDS_TEST_CREDENTIALS.token,
      });
      const reads = imds.requestsFor('/latest/meta-data/iam/security-credentials/').length;
      await identity.credentials();
      expect(imds.requestsFor('/latest/meta-data/iam/security-credentials/').length).toBe(reads); // memoized
      expect(redact(IMDS_TEST_CREDENTIALS.token)).toBe('[REDACTED]');
    } finally {
      if (previous === undefined) delete process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
      else process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = previous;
    }
  });

  it('AWS_REGION and AWS_HOST_IDENTIFIER stand in for IMDS', async () => {
    const identity = await resolveIdentity(config(), {
      env: { AWS_REGION: 'us-east-2', AWS_HOST_IDENTIFIER: 'arn:aws:ec2:us-east-2:1:instance/i-env' },
      imds: noImds(),
    });
    expect(identity).toMatchObject({ region: 'us-east-2', hostIdentifier: 'arn:aws:ec2:us-east-2:1:instance/i-env', onPremises: false });
  });

  it('fails clearly without a region or host identifier', async () => {
    await expect(resolveIdentity(config(), { env: {}, imds: noImds() })).rejects.toThrow(ConfigError);
    await expect(resolveIdentity(config(), { env: {}, imds: noImds() })).rejects.toThrow(/Cannot determine the region/);
    await expect(resolveIdentity(config(), { env: { AWS_REGION: 'us-east-1' }, imds: noImds() })).rejects.toThrow(/Cannot determine the host identifier/);
  });

  it('says what it checked: metadata turned off by AWS_EC2_METADATA_DISABLED, and the on-premises file it looked for', async () => {
    const cfg = config({ on_premises_config_file: join(tmp.dir, 'no-such-onpremises.yml') });
    const env = { AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };
    await expect(resolveIdentity(cfg, { env, imds: noImds() })).rejects.toThrow(
      `Cannot determine the host identifier: instance metadata is turned off by AWS_EC2_METADATA_DISABLED=true, and there is no on-premises file at ${cfg.on_premises_config_file}.`,
    );
    await expect(resolveIdentity(cfg, { env: { AWS_EC2_METADATA_DISABLED: 'true' }, imds: noImds() })).rejects.toThrow(
      `Cannot determine the region: AWS_REGION is not set, there is no on-premises file at ${cfg.on_premises_config_file}, and instance metadata is turned off by AWS_EC2_METADATA_DISABLED=true.`,
    );
    await expect(resolveIdentity(cfg, { env: { AWS_REGION: 'us-east-1' }, imds: noImds() })).rejects.toThrow(/host identifier: instance metadata is not reachable, and there is no on-premises file/);
  });

  it('EC2 without an instance profile: the anchor message, credentials never logged', async () => {
    const previous = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = 'http://127.0.0.1:9';
    try {
      const logger = new MemoryLogger();
      const identity = await resolveIdentity(config(), {
        env: { AWS_REGION: 'us-east-1', AWS_HOST_IDENTIFIER: 'h', AWS_SHARED_CREDENTIALS_FILE: join(tmp.dir, 'none'), AWS_CONFIG_FILE: join(tmp.dir, 'none') },
        imds: noImds(),
        logger,
      });
      await expect(identity.credentials()).rejects.toThrow('Missing credentials - please check if this instance was started with an IAM instance profile');
    } finally {
      if (previous === undefined) delete process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
      else process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = previous;
    }
  });
});

describe('the region rule, shared by the daemon and deploy', () => {
  const onPremisesIn = (region: string) =>
    writeFileSync(join(tmp.dir, 'codedeploy.onpremises.yml'), `iam_user_arn: arn:aws:iam::1:user/h\naws_access_key_id: AKIAREGIONRULE000001\naws_secret_access_key: regionRuleSecret/0123456789\nregion: ${region}\n`);
  const withImds = () => new ImdsClient({ endpoint: imds.url, timeoutMs: 500 });
  // With an endpoint in the config, as on an on-premises host: the region is all IMDS could be asked for.
  const daemonRegion = async (env: NodeJS.ProcessEnv, client: ImdsClient) =>
    (await resolveIdentity(config({ deploy_control_endpoint: 'https://127.0.0.1:9' }), { env: { AWS_HOST_IDENTIFIER: 'h', ...env }, imds: client }).catch((error: Error) => ({ region: error.message }))).region;
  const deployRegion = async (env: NodeJS.ProcessEnv, client: ImdsClient) => (await resolveLocalAccess(config(), { env, imds: client })).region;

  it.each([
    { command: 'daemon', resolve: daemonRegion },
    { command: 'deploy', resolve: deployRegion },
  ])('$command: the on-premises file wins over AWS_REGION, which wins over instance metadata', async ({ resolve }) => {
    expect(await resolve({ AWS_REGION: 'eu-north-1' }, withImds())).toBe('eu-north-1');
    const probes = imds.requests.length;
    expect(await resolve({}, withImds())).toBe('ap-southeast-2');
    expect(imds.requests.length).toBeGreaterThan(probes);
    onPremisesIn('us-west-1');
    const before = imds.requests.length;
    expect(await resolve({ AWS_REGION: 'eu-north-1' }, withImds())).toBe('us-west-1');
    expect(imds.requests.length, 'instance metadata is not asked when nothing needs it').toBe(before);
  });

  it.each([
    { command: 'daemon', resolve: daemonRegion },
    { command: 'deploy', resolve: deployRegion },
  ])('$command: AWS_EC2_METADATA_DISABLED leaves instance metadata alone', async ({ resolve }) => {
    const before = imds.requests.length;
    expect(String(await resolve({ AWS_EC2_METADATA_DISABLED: ' TRUE ' }, withImds()))).toMatch(/^Cannot determine the region|^undefined$/);
    expect(imds.requests.length).toBe(before);
  });

  it('only deploy also reads AWS_DEFAULT_REGION (the AWS CLI variable), after AWS_REGION', async () => {
    expect(await deployRegion({ AWS_DEFAULT_REGION: 'sa-east-1' }, noImds())).toBe('sa-east-1');
    expect(await deployRegion({ AWS_REGION: 'eu-north-1', AWS_DEFAULT_REGION: 'sa-east-1' }, noImds())).toBe('eu-north-1');
    expect(await daemonRegion({ AWS_DEFAULT_REGION: 'sa-east-1' }, noImds())).toMatch(/Cannot determine the region/);
  });

  it('deploy: an on-premises host\'s keys only when the environment has none', async () => {
    onPremisesIn('us-west-1');
    const fromFile = await resolveLocalAccess(config(), { env: {}, imds: noImds() });
    expect(await fromFile.credentials?.()).toMatchObject({ accessKeyId: 'AKIAREGIONRULE000001' });
    // The SDK's chain reads the process environment, where it finds the keys first (no network).
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAFROMENVIRONMENT1');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'fromEnvironmentSecret/0123456789');
    try {
      const fromEnvironment = await resolveLocalAccess(config(), { env: { AWS_ACCESS_KEY_ID: 'AKIAFROMENVIRONMENT1' }, imds: noImds() });
      expect(fromEnvironment.region).toBe('us-west-1');
      expect(await fromEnvironment.credentials()).toMatchObject({ accessKeyId: 'AKIAFROMENVIRONMENT1' });
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('memoizeCredentials', () => {
  it('refreshes five minutes before expiry and shares one fetch', async () => {
    let now = 1_000_000;
    let calls = 0;
    const provider = memoizeCredentials(async () => {
      calls++;
      return { accessKeyId: `id-${calls}`, secretAccessKey: 's', expiration: new Date(now + 10 * 60_000) };
    }, () => now);
    const [a, b] = await Promise.all([provider(), provider()]);
    expect(a.accessKeyId).toBe('id-1');
    expect(b.accessKeyId).toBe('id-1');
    now += 4 * 60_000;
    expect((await provider()).accessKeyId).toBe('id-1');
    now += 2 * 60_000; // 4 minutes left: inside the window
    expect((await provider()).accessKeyId).toBe('id-2');
    expect((await provider({ forceRefresh: true })).accessKeyId).toBe('id-3');
  });

  it('static credentials never expire', async () => {
    const provider = staticCredentials('AKIA', 'static-secret-value');
    expect(await provider()).toEqual({ accessKeyId: 'AKIA', secretAccessKey: 'static-secret-value' });
    expect(redact('static-secret-value')).toBe('[REDACTED]');
  });
});
