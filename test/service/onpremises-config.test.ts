import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isOnPremisesConfigReadable, parseOnPremisesConfig, readOnPremisesConfig } from '../../src/service/onpremises-config.js';
import { ConfigError } from '../../src/report/errors.js';
import { redact } from '../../src/log/redact.js';
import { makeTempDir } from '../helpers/tmp.js';

const PATH = '/etc/codedeploy-agent/conf/codedeploy.onpremises.yml';

function messageOf(text: string): string {
  try {
    parseOnPremisesConfig(text, PATH);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('on-premises config', () => {
  it('reads the IAM-user form with Ruby-symbol keys', () => {
    const text = [
      '---',
      ':aws_access_key_id: AKIAONPREM00000001',
      ':aws_secret_access_key: onPremSecretKey/abcdefghijklmnop',
      ':iam_user_arn: arn:aws:iam::123456789012:user/onprem',
      ':region: us-west-2',
    ].join('\n');
    expect(parseOnPremisesConfig(text, PATH)).toEqual({
      kind: 'iam-user',
      path: PATH,
      region: 'us-west-2',
      iamUserArn: 'arn:aws:iam::123456789012:user/onprem',
      accessKeyId: 'AKIAONPREM00000001',
      secretAccessKey: 'onPremSecretKey/abcdefghijklmnop',
    });
    // The secret is registered for redaction and not put into the environment (where hooks would inherit it).
    expect(redact('x onPremSecretKey/abcdefghijklmnop y')).toBe('x [REDACTED] y');
    expect(process.env.AWS_SECRET_KEY).toBeUndefined();
    expect(process.env.AWS_ACCESS_KEY).toBeUndefined();
  });

  it('reads the IAM-session form with plain keys', () => {
    const text = [
      'region: eu-central-1',
      'iam_session_arn: arn:aws:sts::123456789012:assumed-role/role/session',
      'aws_credentials_file: /etc/codedeploy-agent/conf/credentials',
    ].join('\n');
    expect(parseOnPremisesConfig(text, PATH)).toEqual({
      kind: 'iam-session',
      path: PATH,
      region: 'eu-central-1',
      iamSessionArn: 'arn:aws:sts::123456789012:assumed-role/role/session',
      credentialsFile: '/etc/codedeploy-agent/conf/credentials',
    });
  });

  it('ignores a file that names neither ARN', () => {
    expect(parseOnPremisesConfig('region: us-east-1\n', PATH)).toBeUndefined();
  });

  it('rejects unparseable and non-map files', () => {
    const message = `The deployment failed because the format of the following on-premises configuration file is invalid: ${PATH}`;
    expect(messageOf('region: [unclosed')).toBe(message);
    expect(messageOf('- a\n- b\n')).toBe(message);
    expect(messageOf('just a string')).toBe(message);
    expect(messageOf('')).toBe(message);
  });

  it('rejects both ARNs', () => {
    expect(messageOf('iam_user_arn: a\niam_session_arn: b\nregion: r\n')).toBe("On Premises config cannot contain both 'iam_user_arn' and 'iam_session_arn' keys.");
  });

  it.each([
    ['region', 'aws_access_key_id: k\naws_secret_access_key: s\n'],
    ['aws_access_key_id', 'region: r\naws_secret_access_key: s\n'],
    ['aws_secret_access_key', 'region: r\naws_access_key_id: k\n'],
  ])("requires '%s' with iam_user_arn", (field, rest) => {
    expect(messageOf(`iam_user_arn: arn:aws:iam::1:user/u\n${rest}`)).toBe(`'${field}' key is required when 'iam_user_arn' is provided.`);
  });

  it.each([
    ['region', 'aws_credentials_file: /c\n'],
    ['aws_credentials_file', 'region: r\n'],
  ])("requires '%s' with iam_session_arn", (field, rest) => {
    expect(messageOf(`:iam_session_arn: arn:aws:sts::1:assumed-role/r/s\n${rest}`)).toBe(`'${field}' key is required when 'iam_session_arn' is provided.`);
  });

  it('treats empty values as missing', () => {
    expect(messageOf("iam_user_arn: a\nregion: ''\naws_access_key_id: k\naws_secret_access_key: s\n")).toBe("'region' key is required when 'iam_user_arn' is provided.");
  });

  it('an unreadable file is not an on-premises host', () => {
    const { dir, cleanup } = makeTempDir();
    try {
      expect(readOnPremisesConfig(join(dir, 'missing.yml'))).toBeUndefined();
      expect(isOnPremisesConfigReadable(join(dir, 'missing.yml'))).toBe(false);
      expect(isOnPremisesConfigReadable(dir)).toBe(false);
      const file = join(dir, 'onprem.yml');
      writeFileSync(file, 'iam_session_arn: arn\nregion: r\naws_credentials_file: /c\n');
      expect(isOnPremisesConfigReadable(file)).toBe(true);
      expect(readOnPremisesConfig(file)).toMatchObject({ kind: 'iam-session', path: file });
    } finally {
      cleanup();
    }
  });
});
