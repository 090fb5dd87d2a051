/**
 * Who the daemon says it is and how it signs: both on-premises forms (IAM user keys; an IAM session with a
 * credentials file that is rotated while the agent runs) and an EC2 instance through IMDSv2 with IMDSv1
 * disabled. The double accepts only the credentials it is told to, so a request signed with anything
 * else is refused.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeSpec, type FakeDeployment } from '../doubles/commands-service.js';
import { IMDS_TEST_CREDENTIALS, ImdsDouble } from '../doubles/imds.js';
import type { SigV4Credentials } from '../doubles/sigv4-check.js';
import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
import { expectAllRequestsAuthenticated, expectCompletedOnce, localRevision, waitForDeployment } from './harness.js';

useDaemonWorld('identity');

/** The access key each request of the deployment was signed with. */
function signingKeysOf(deployment: FakeDeployment): string[] {
  const ids = new Set(deployment.commands.map((c) => c.hostCommandIdentifier));
  return service.requests
    .filter((r) => {
      const body = r.body as { HostCommandIdentifier?: string; DeploymentExecutionId?: string } | undefined;
      return (body?.HostCommandIdentifier && ids.has(body.HostCommandIdentifier)) || body?.DeploymentExecutionId === deployment.executionId;
    })
    .map((r) => /Credential=([^/]+)\//.exec(String(r.headers.authorization))?.[1] ?? '(none)');
}

function writeCredentialsFile(path: string, credentials: SigV4Credentials): void {
  // Replaced by rename, as a rotating tool would do.
  writeFileSync(`${path}.new`, [
    '[default]',
    `aws_access_key_id = ${credentials.accessKeyId}`,
    `aws_secret_access_key = ${credentials.secretAccessKey}`,
    `aws_session_token = ${credentials.sessionToken}`,
    '',
  ].join('\n'));
  renameSync(`${path}.new`, path);
}

describe('on-premises identity', () => {
  it('IAM user keys: signs with the user keys as the user ARN', async () => {
    const user: SigV4Credentials = { accessKeyId: 'AKIAONPREMUSER000001', secretAccessKey: 'onPremUserSecret/abcdefghijklmnopqrstuvwxyz01' };
    service.credentials = [user];
    newWorld({}, { iamUser: { arn: 'arn:aws:iam::123456789012:user/onprem-keys', credentials: user } });
    const bundle = world.makeBundle({ label: 'user', hooks: { BeforeInstall: { body: 'env > "$(dirname "$0")/../env.txt"' } } });
    const agent = world.start({ env: { AWS_ACCESS_KEY_ID: 'AKIASHOULDNOTLEAK000', AWS_SECRET_ACCESS_KEY: 'leak' } });
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['DownloadBundle', 'BeforeInstall'] });
    await waitForDeployment(service, deployment, agent);
    expect(deployment.status).toBe('Succeeded');
    expectCompletedOnce(deployment);
    expect(new Set(signingKeysOf(deployment))).toEqual(new Set([user.accessKeyId]));
    expect(service.requestsFor('PollHostCommand').some((r) => (r.body as { HostIdentifier: string }).HostIdentifier === world.hostIdentifier)).toBe(true);
    expect((await agent.stop()).exitCode).toBe(0);
    expectAllRequestsAuthenticated(service);
    // Hooks see neither the user's keys nor the scrubbed variables (§10.19).
    const { readFileSync } = await import('node:fs');
    const env = readFileSync(join(world.root, deployment.spec.DeploymentGroupId as string, deployment.deploymentId, 'deployment-archive', 'env.txt'), 'utf8');
    expect(env).not.toContain(user.secretAccessKey);
    expect(env).not.toContain('AKIASHOULDNOTLEAK000');
    for (const log of [agent.log, world.agentLog()]) expect(log).not.toContain(user.secretAccessKey);
  });

  it('IAM session: signs with the credentials file and picks up a rotated file without a restart', async () => {
    const first: SigV4Credentials = { accessKeyId: 'ASIASESSIONFIRST0001', secretAccessKey: 'sessionSecretFirst/0123456789abcdefghijklm', sessionToken: 'sessionTokenFirst0123456789' };
    const second: SigV4Credentials = { accessKeyId: 'ASIASESSIONSECOND002', secretAccessKey: 'sessionSecretSecond/0123456789abcdefghijkl', sessionToken: 'sessionTokenSecond0123456789' };
    service.credentials = [first];
    newWorld({}, { iamUser: false });
    const credentialsFile = join(world.dir, 'session-credentials');
    writeCredentialsFile(credentialsFile, first);
    world.useIamSession('arn:aws:sts::123456789012:assumed-role/CodeDeployOnPrem/host-1', credentialsFile);
    const bundle = world.makeBundle({ label: 'session', hooks: {} });
    const agent = world.start();

    const before = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['DownloadBundle', 'Install'] });
    await waitForDeployment(service, before, agent);
    expect(before.status).toBe('Succeeded');
    expect(new Set(signingKeysOf(before))).toEqual(new Set([first.accessKeyId]));

    // Rotate: the service now accepts only the new keys.
    writeCredentialsFile(credentialsFile, second);
    service.credentials = [second];
    const after = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['DownloadBundle', 'Install'] });
    await waitForDeployment(service, after, agent);
    expect(after.status).toBe('Succeeded');
    expectCompletedOnce(after);
    expect(new Set(signingKeysOf(after))).toEqual(new Set([second.accessKeyId]));
    expect((await agent.stop()).exitCode).toBe(0);
    for (const log of [agent.log, world.agentLog()]) {
      for (const secret of [first.secretAccessKey, first.sessionToken!, second.secretAccessKey, second.sessionToken!]) expect(log).not.toContain(secret);
    }
  });
});

describe('EC2 identity', () => {
  let imds: ImdsDouble;
  afterEach(async () => {
    await imds?.close();
  });

  it('IMDSv2 only (v1 disabled): host id from the identity document, instance-profile credentials', async () => {
    imds = await ImdsDouble.start({ region: 'us-east-1', requireToken: true, accountId: '210987654321', instanceId: 'i-0fedcba9876543210' });
    service.credentials = [{ accessKeyId: IMDS_TEST_CREDENTIALS.accessKeyId, secretAccessKey: IMDS_TEST_CREDENTIALS.secretAccessKey, sessionToken: IMDS_TEST_CREDENTIALS.token }];
    // No on-premises file: an EC2 host.
    newWorld({ disable_imds_v1: true }, { iamUser: false });
    const bundle = world.makeBundle({ label: 'ec2', hooks: {} });
    const agent = world.start({ env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url }, unsetEnv: ['AWS_EC2_METADATA_DISABLED'] });
    const hostIdentifier = 'arn:aws:ec2:us-east-1:210987654321:instance/i-0fedcba9876543210';
    expect(imds.hostIdentifier).toBe(hostIdentifier);
    const deployment = service.addDeployment({ hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['DownloadBundle', 'Install'] });
    await waitForDeployment(service, deployment, agent);
    expect(deployment.status).toBe('Succeeded');
    expectCompletedOnce(deployment);
    expect(new Set(signingKeysOf(deployment))).toEqual(new Set([IMDS_TEST_CREDENTIALS.accessKeyId]));
    expect((await agent.stop()).exitCode).toBe(0);
    expect(agent.log).toContain(`Host identifier ${hostIdentifier}, region us-east-1`);
    expect(imds.requestsFor('/latest/api/token', 'PUT').length).toBeGreaterThan(0);
    // Never a token-less (IMDSv1) request.
    expect(imds.requests.filter((r) => r.method === 'GET' && !r.token).map((r) => r.path)).toEqual([]);
    expect(imds.requests.filter((r) => r.status === 401)).toEqual([]);
    expectAllRequestsAuthenticated(service);
    // Neither the instance-profile credentials nor the IMDS session token reach a log line (verbose logging is on).
    const tokens = [...new Set(imds.requests.map((r) => r.token).filter((t): t is string => Boolean(t)))];
    expect(tokens.length).toBeGreaterThan(0);
    for (const log of [agent.log, world.agentLog()]) {
      for (const secret of [IMDS_TEST_CREDENTIALS.secretAccessKey, IMDS_TEST_CREDENTIALS.token, ...tokens]) expect(log).not.toContain(secret);
    }
  });
});
