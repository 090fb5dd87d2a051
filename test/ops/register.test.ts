import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseTags, renderOnPremisesConfig } from '../../src/cli/register.js';
import { readOnPremisesConfig } from '../../src/service/onpremises-config.js';
import { operatorEnv, startControlPlaneDouble, TEST_CREDENTIALS, type ControlPlaneDouble } from '../doubles/codedeploy-control.js';
import { runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';

const USER_ARN = 'arn:aws:iam::111122223333:user/CodeDeployUser-OnPrem';
const SESSION_ARN = 'arn:aws:sts::111122223333:assumed-role/CodeDeployInstanceRole/host-1';
const INSTANCE_KEY = { id: 'AKIAINSTANCEKEY00001', secret: 'instance/secret+key/0000000000000000000001' };

let double: ControlPlaneDouble;
let tmp: { dir: string; cleanup: () => void };
let out: string;

beforeEach(async () => {
  double = await startControlPlaneDouble();
  tmp = makeTempDir('cda-register-');
  out = join(tmp.dir, 'conf', 'codedeploy.onpremises.yml');
});
afterEach(async () => {
  await double.close();
  tmp.cleanup();
});

/** Runs the CLI against the double, signing with the known test credentials (the operator's). */
function cli(args: string[], env: Record<string, string> = {}) {
  return runCli([...args, '--region', double.region, '--endpoint', double.endpoint, '--config-file-out', out], {
    env: operatorEnv(tmp.dir, env),
    extendEnv: true,
  });
}

const text = (value: unknown) => String(value);

describe('codedeploy-agent register', () => {
  it('registers with an IAM user, tags the instance and writes the user form 0600', async () => {
    const result = await cli(['register', '--instance-name', 'web-1', '--iam-user-arn', USER_ARN, '--tags', 'env=prod, role=web,empty=',
      '--access-key-id', INSTANCE_KEY.id, '--secret-access-key', INSTANCE_KEY.secret]);
    expect(result.exitCode, text(result.all)).toBe(0);
    expect(double.requests.map((r) => r.operation)).toEqual(['RegisterOnPremisesInstance', 'AddTagsToOnPremisesInstances']);
    expect(double.requests[0].body).toEqual({ instanceName: 'web-1', iamUserArn: USER_ARN });
    expect(double.requests[0].headers['x-amz-target']).toBe('CodeDeploy_20141006.RegisterOnPremisesInstance');
    expect(double.instances.get('web-1')).toMatchObject({ iamUserArn: USER_ARN, tags: [{ Key: 'env', Value: 'prod' }, { Key: 'role', Value: 'web' }, { Key: 'empty', Value: '' }] });

    expect(statSync(out).mode & 0o777).toBe(0o600);
    const written = parse(readFileSync(out, 'utf8'));
    expect(written).toEqual({ aws_access_key_id: INSTANCE_KEY.id, aws_secret_access_key: INSTANCE_KEY.secret, iam_user_arn: USER_ARN, region: 'us-east-1' });
    // What the agent itself reads from it.
    expect(readOnPremisesConfig(out)).toMatchObject({ kind: 'iam-user', region: 'us-east-1', iamUserArn: USER_ARN, accessKeyId: INSTANCE_KEY.id, secretAccessKey: INSTANCE_KEY.secret });
    expect(text(result.stdout)).toContain('Registered on-premises instance "web-1"');
    expect(text(result.stdout)).toContain(`Wrote ${out} (mode 0600)`);
    expect(text(result.all)).not.toContain(INSTANCE_KEY.secret);
  });

  it('takes the IAM user\'s key from the environment when no flags are given', async () => {
    const result = await cli(['register', '--instance-name', 'web-2', '--iam-user-arn', USER_ARN]);
    expect(result.exitCode, text(result.all)).toBe(0);
    expect(parse(readFileSync(out, 'utf8'))).toMatchObject({ aws_access_key_id: TEST_CREDENTIALS.accessKeyId, aws_secret_access_key: TEST_CREDENTIALS.secretAccessKey });
    expect(double.requests.map((r) => r.operation)).toEqual(['RegisterOnPremisesInstance']);
  });

  it('registers with an IAM session and writes the session form', async () => {
    const result = await cli(['register', '--instance-name', 'db-1', '--iam-session-arn', SESSION_ARN, '--credentials-file', '/etc/codedeploy-agent/conf/session-credentials']);
    expect(result.exitCode, text(result.all)).toBe(0);
    expect(double.requests[0].body).toEqual({ instanceName: 'db-1', iamSessionArn: SESSION_ARN });
    expect(parse(readFileSync(out, 'utf8'))).toEqual({ iam_session_arn: SESSION_ARN, aws_credentials_file: '/etc/codedeploy-agent/conf/session-credentials', region: 'us-east-1' });
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readOnPremisesConfig(out)).toMatchObject({ kind: 'iam-session', region: 'us-east-1', iamSessionArn: SESSION_ARN, credentialsFile: '/etc/codedeploy-agent/conf/session-credentials' });
    expect(text(result.stdout)).toContain('does not exist yet');
  });

  it('explains each refusal of the service and writes nothing', async () => {
    expect((await cli(['register', '--instance-name', 'web-1', '--iam-user-arn', USER_ARN])).exitCode).toBe(0);
    const other = join(tmp.dir, 'other.yml');
    const again = await runCli(['register', '--instance-name', 'web-1', '--iam-session-arn', SESSION_ARN, '--credentials-file', '/c',
      '--region', double.region, '--endpoint', double.endpoint, '--config-file-out', other], {
      env: { AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey, AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' },
    });
    expect(again.exitCode).toBe(1);
    expect(text(again.stderr)).toContain('The instance name "web-1" is already registered with CodeDeploy in us-east-1');
    expect(text(again.stderr)).toContain('codedeploy-agent deregister --instance-name web-1 --region us-east-1');
    expect(existsSync(other)).toBe(false);

    const cases: [string[], string][] = [
      [['--iam-user-arn', 'arn:aws:iam::111122223333:role/not-a-user'], 'is not a valid IAM user ARN; it looks like arn:aws:iam::111122223333:user/'],
      [['--iam-session-arn', 'arn:aws:iam::111122223333:user/x', '--credentials-file', '/c'], 'is not a valid IAM session ARN'],
    ];
    for (const [args, expected] of cases) {
      const result = await cli(['register', '--instance-name', 'web-9', '--force', ...args]);
      expect(result.exitCode).toBe(1);
      expect(text(result.stderr)).toContain(expected);
    }

    double.deny('RegisterOnPremisesInstance');
    const denied = await cli(['register', '--instance-name', 'web-10', '--force', '--iam-user-arn', 'arn:aws:iam::111122223333:user/other']);
    expect(denied.exitCode).toBe(1);
    expect(text(denied.stderr)).toContain('Access denied: the AWS credentials used here may not call codedeploy:RegisterOnPremisesInstance in us-east-1');
    expect(text(denied.stderr)).toContain('is not authorized to perform');
  });

  it('reports IamArnRequiredException clearly when the service sees no ARN', async () => {
    const { describeControlError } = await import('../../src/service/codedeploy-control.js');
    const error = describeControlError(Object.assign(new Error('No IAM ARN was included in the request.'), { name: 'IamArnRequiredException' }), { operation: 'RegisterOnPremisesInstance', region: 'us-east-1' });
    expect(error.message).toBe('CodeDeploy needs the IAM identity of the instance: pass --iam-user-arn or --iam-session-arn.');
    expect(error.errorType).toBe('IamArnRequiredException');
  });

  it.each([
    ['ECONNREFUSED', { code: 'ECONNREFUSED' }],
    ['a DNS failure the SDK wraps', { cause: { code: 'EAI_AGAIN' } }],
    ['a timeout', { name: 'TimeoutError' }],
  ])('names the endpoint it cannot reach (%s)', async (_label, fields) => {
    const { describeControlError } = await import('../../src/service/codedeploy-control.js');
    const error = describeControlError(Object.assign(new Error('connect failed'), fields), { operation: 'RegisterOnPremisesInstance', region: 'eu-west-1', endpoint: 'https://127.0.0.1:9' });
    expect(error.message).toBe('Cannot reach CodeDeploy in eu-west-1 (https://127.0.0.1:9): connect failed');
  });

  it('refuses bad usage before calling the service', async () => {
    let result = await cli(['register', '--instance-name', 'x']);
    expect(result.exitCode).toBe(1);
    expect(text(result.stderr)).toContain('Pass exactly one of --iam-user-arn');
    result = await cli(['register', '--instance-name', 'x', '--iam-user-arn', USER_ARN, '--iam-session-arn', SESSION_ARN]);
    expect(text(result.stderr)).toContain('Pass exactly one of --iam-user-arn');
    result = await cli(['register', '--instance-name', 'x', '--iam-session-arn', SESSION_ARN]);
    expect(text(result.stderr)).toContain('--iam-session-arn needs --credentials-file PATH');
    result = await cli(['register', '--instance-name', 'x', '--iam-user-arn', USER_ARN], { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' });
    expect(text(result.stderr)).toContain('--iam-user-arn needs the IAM user\'s access key');
    writeFileSync(join(tmp.dir, 'existing.yml'), 'region: x\n');
    out = join(tmp.dir, 'existing.yml');
    result = await cli(['register', '--instance-name', 'x', '--iam-user-arn', USER_ARN]);
    expect(text(result.stderr)).toContain('already exists (this host is registered already?)');
    result = await cli(['register', '--instance-name', 'x', '--iam-user-arn', USER_ARN, '--tags', '=v']);
    expect(text(result.stderr)).toContain('--tags: "=v" has no key');
    expect(double.requests).toEqual([]);
  });

  it('rejects requests signed with the wrong secret', async () => {
    const result = await cli(['register', '--instance-name', 'web-1', '--iam-user-arn', USER_ARN], { AWS_SECRET_ACCESS_KEY: 'wrong-secret-wrong-secret-wrong-secret-00', AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId });
    expect(result.exitCode).toBe(1);
    expect(text(result.stderr)).toContain('CodeDeploy rejected the request signature (InvalidSignatureException)');
    expect(double.instances.size).toBe(0);
    const unknownKey = await cli(['register', '--instance-name', 'web-1', '--iam-user-arn', USER_ARN], { AWS_ACCESS_KEY_ID: 'AKIDUNKNOWN000000000' });
    expect(text(unknownKey.stderr)).toContain('The AWS access key used here is not valid (UnrecognizedClientException)');
  });
});

describe('codedeploy-agent deregister', () => {
  it('removes the tags, deregisters and removes the on-premises file', async () => {
    expect((await cli(['register', '--instance-name', 'web-1', '--iam-user-arn', USER_ARN, '--tags', 'env=prod,role=web'])).exitCode).toBe(0);
    double.requests.length = 0;
    const result = await cli(['deregister', '--instance-name', 'web-1']);
    expect(result.exitCode, text(result.all)).toBe(0);
    expect(double.requests.map((r) => r.operation)).toEqual(['GetOnPremisesInstance', 'RemoveTagsFromOnPremisesInstances', 'DeregisterOnPremisesInstance']);
    expect(double.requests[1].body).toEqual({ instanceNames: ['web-1'], tags: [{ Key: 'env', Value: 'prod' }, { Key: 'role', Value: 'web' }] });
    expect(double.instances.get('web-1')!.deregisterTime).toBeDefined();
    expect(double.instances.get('web-1')!.tags).toEqual([]);
    expect(existsSync(out)).toBe(false);
    expect(text(result.stdout)).toContain('Deregistered on-premises instance "web-1"');

    // The name is free again.
    expect((await cli(['register', '--instance-name', 'web-1', '--iam-user-arn', USER_ARN])).exitCode).toBe(0);
  });

  it('deregisters an untagged instance without RemoveTags, and explains an unknown name', async () => {
    expect((await cli(['register', '--instance-name', 'db-1', '--iam-session-arn', SESSION_ARN, '--credentials-file', '/c'])).exitCode).toBe(0);
    double.requests.length = 0;
    expect((await cli(['deregister', '--instance-name', 'db-1'])).exitCode).toBe(0);
    expect(double.requests.map((r) => r.operation)).toEqual(['GetOnPremisesInstance', 'DeregisterOnPremisesInstance']);

    writeFileSync(out, 'keep me');
    const unknown = await cli(['deregister', '--instance-name', 'nope']);
    expect(unknown.exitCode).toBe(1);
    expect(text(unknown.stderr)).toContain('No on-premises instance named "nope" is registered with CodeDeploy in us-east-1');
    expect(existsSync(out)).toBe(true);

    double.deny('DeregisterOnPremisesInstance');
    expect((await cli(['register', '--instance-name', 'db-2', '--force', '--iam-session-arn', 'arn:aws:sts::111122223333:assumed-role/R/h2', '--credentials-file', '/c'])).exitCode).toBe(0);
    const denied = await cli(['deregister', '--instance-name', 'db-2']);
    expect(denied.exitCode).toBe(1);
    expect(text(denied.stderr)).toContain('may not call codedeploy:DeregisterOnPremisesInstance');
    expect(existsSync(out)).toBe(true);
  });
});

describe('register helpers', () => {
  it('parses tags and renders both on-premises forms', () => {
    expect(parseTags('a=1,b=two=2, c')).toEqual([{ Key: 'a', Value: '1' }, { Key: 'b', Value: 'two=2' }, { Key: 'c', Value: '' }]);
    expect(parseTags(undefined)).toEqual([]);
    const user = renderOnPremisesConfig({ region: 'eu-west-1', iamUserArn: USER_ARN, accessKeyId: 'AKIA', secretAccessKey: 'yes' }, 'header');
    expect(user.startsWith('---\n# header\n')).toBe(true);
    // YAML 1.1 readers (the Ruby agent's Psych) must not see `yes` as a boolean.
    expect(parse(user, { version: '1.1' })).toEqual({ aws_access_key_id: 'AKIA', aws_secret_access_key: 'yes', iam_user_arn: USER_ARN, region: 'eu-west-1' });
  });
});
