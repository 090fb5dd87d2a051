import { describe, expect, it } from 'vitest';
import { parseDeploymentId, parseDeploymentSpec, redactedSpecJson } from '../../src/deployment/spec.js';
import { DeploymentSpecError } from '../../src/report/errors.js';
import { redact } from '../../src/log/redact.js';

const s3 = { RevisionType: 'S3', S3Revision: { Bucket: 'b', Key: 'k.tgz', BundleType: 'tgz' } };

function spec(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    DeploymentId: 'd-ABCDEFGHI',
    DeploymentGroupId: 'group-id',
    DeploymentGroupName: 'group',
    ApplicationName: 'app',
    Revision: s3,
    ...overrides,
  });
}

function error(json: string): DeploymentSpecError {
  try {
    parseDeploymentSpec(json);
  } catch (e) {
    expect(e).toBeInstanceOf(DeploymentSpecError);
    return e as DeploymentSpecError;
  }
  throw new Error('expected a DeploymentSpecError');
}

describe('parseDeploymentSpec', () => {
  it('reads a minimal S3 spec with the defaults', () => {
    expect(parseDeploymentSpec(spec())).toEqual({
      deploymentId: 'd-ABCDEFGHI',
      deploymentGroupId: 'group-id',
      deploymentGroupName: 'group',
      applicationName: 'app',
      deploymentCreator: 'user',
      deploymentType: 'IN_PLACE',
      appSpecFilename: 'appspec.yml',
      revision: { type: 'S3', bucket: 'b', key: 'k.tgz', bundleType: 'tgz' },
      fileExistsBehavior: 'DISALLOW',
    });
  });

  it('reads every optional field', () => {
    const parsed = parseDeploymentSpec(spec({
      DeploymentId: 'arn:aws:codedeploy:us-east-1:123412341234:deployment/d-XYZ',
      DeploymentCreator: 'codeDeployRollback',
      DeploymentType: 'BLUE_GREEN',
      AppSpecFilename: 'custom.yml',
      AgentActionOverrides: { AgentOverrides: { FileExistsBehavior: 'overwrite' } },
      AllPossibleLifecycleEvents: ['ApplicationStop', 'BeforeInstall'],
      GitHubAccessToken: 'ghp_secretsecretsecretsecret1234',
      Revision: { RevisionType: 'S3', S3Revision: { Bucket: 'b', Key: 'k', BundleType: 'zip', Version: 'v1', ETag: '"abc"' } },
      TargetId: 'ignored',
    }));
    expect(parsed).toMatchObject({
      deploymentId: 'd-XYZ',
      deploymentCreator: 'codeDeployRollback',
      deploymentType: 'BLUE_GREEN',
      appSpecFilename: 'custom.yml',
      fileExistsBehavior: 'OVERWRITE',
      allPossibleLifecycleEvents: ['ApplicationStop', 'BeforeInstall'],
      gitHubAccessToken: 'ghp_secretsecretsecretsecret1234',
      revision: { type: 'S3', bucket: 'b', key: 'k', bundleType: 'zip', version: 'v1', etag: '"abc"' },
    });
    // The token was registered as a secret.
    expect(redact('token ghp_secretsecretsecretsecret1234 here')).not.toContain('ghp_secret');
  });

  it('empty AppSpecFilename falls back to appspec.yml', () => {
    expect(parseDeploymentSpec(spec({ AppSpecFilename: '' })).appSpecFilename).toBe('appspec.yml');
  });

  it('takes the id from a deployment ARN', () => {
    expect(parseDeploymentId('arn:aws:codedeploy:us-east-1:123412341234:deployment/d-123')).toBe('d-123');
    expect(parseDeploymentId('d-123')).toBe('d-123');
    expect(() => parseDeploymentId('arn:aws:codedeploy')).toThrow(DeploymentSpecError);
  });

  it.each([
    ['DeploymentId', 'Deployment Spec has no DeploymentId'],
    ['DeploymentGroupId', 'Deployment Spec has no DeploymentGroupId'],
    ['DeploymentGroupName', 'Deployment Spec has no DeploymentGroupName'],
    ['ApplicationName', 'Deployment Spec has no ApplicationName'],
  ])('missing, null or empty %s', (key, message) => {
    for (const value of [undefined, null, '']) {
      expect(error(spec({ [key]: value })).message).toBe(message);
    }
  });

  it('revision messages', () => {
    expect(error(spec({ Revision: null })).message).toBe('Must specify a revison');
    expect(error(spec({ Revision: { S3Revision: {} } })).message).toBe('Must specify a revision source');
    expect(error(spec({ Revision: { RevisionType: 'CodeCommit' } })).message).toBe('Exactly one of S3Revision, GitHubRevision, or LocalRevision must be specified');
  });

  it('S3 revision messages', () => {
    expect(error(spec({ Revision: { RevisionType: 'S3', S3Revision: { Bucket: 'b', Key: 'k' } } })).message)
      .toBe('S3Revision in Deployment Spec must specify Bucket, Key and BundleType');
    expect(error(spec({ Revision: { RevisionType: 'S3', S3Revision: { Bucket: null, Key: 'k', BundleType: 'tgz' } } })).message)
      .toBe('S3Revision in Deployment Spec must specify Bucket, Key and BundleType');
    expect(error(spec({ Revision: { RevisionType: 'S3', S3Revision: { Bucket: 'b', Key: 'k', BundleType: 'TGZ' } } })).message)
      .toBe('BundleType in S3Revision must be tar, tgz or zip');
    expect(error(spec({ Revision: { RevisionType: 'S3', S3Revision: { Bucket: 'b', Key: 'k', BundleType: null } } })).message)
      .toBe('BundleType in S3Revision must be tar, tgz or zip');
  });

  it('GitHub revisions', () => {
    const gh = (r: Record<string, unknown>) => spec({ Revision: { RevisionType: 'GitHub', GitHubRevision: r } });
    expect(parseDeploymentSpec(gh({ Account: 'a', Repository: 'r', CommitId: 'c' })).revision)
      .toEqual({ type: 'GitHub', account: 'a', repository: 'r', commitId: 'c' });
    expect(parseDeploymentSpec(gh({ Account: 'a', Repository: 'r', CommitId: 'c', BundleType: 'zip' })).revision)
      .toMatchObject({ bundleType: 'zip' });
    expect(parseDeploymentSpec(gh({ Account: 'a', Repository: 'r', CommitId: 'c', BundleType: null })).revision)
      .not.toHaveProperty('bundleType');
    const message = 'GitHubRevision in Deployment Spec must specify Account, Repository and CommitId';
    expect(error(gh({ Account: 'a', Repository: 'r' })).message).toBe(message);
    expect(error(gh({ Account: 'a', Repository: 'r', CommitId: 'c', Anonymous: false })).message).toBe(message);
    expect(parseDeploymentSpec(gh({ Account: 'a', Repository: 'r', CommitId: 'c', Anonymous: false, OAuthToken: null })).revision.type).toBe('GitHub');
    expect(parseDeploymentSpec(gh({ Account: 'a', Repository: 'r', CommitId: 'c', Anonymous: true })).revision.type).toBe('GitHub');
    expect(error(gh({ Account: 'a', Repository: 'r', CommitId: 'c', BundleType: 'tgz' })).message)
      .toBe('GitHub revision specified with bundle_type other than zip or tar [bundle_type=tgz');
  });

  it('local revisions', () => {
    const local = (type: string, r: Record<string, unknown>) => spec({ Revision: { RevisionType: type, LocalRevision: r } });
    expect(parseDeploymentSpec(local('Local File', { Location: '/tmp/b.tgz', BundleType: 'tgz' })).revision)
      .toEqual({ type: 'Local File', location: '/tmp/b.tgz', bundleType: 'tgz' });
    expect(parseDeploymentSpec(local('Local Directory', { Location: '/tmp/b', BundleType: 'directory' })).revision)
      .toEqual({ type: 'Local Directory', location: '/tmp/b', bundleType: 'directory' });
    expect(error(local('Local File', { Location: '/tmp/b.tgz' })).message).toBe('LocalRevision in Deployment Spec must specify Location and BundleType');
    expect(error(local('Local File', { Location: '/tmp/b.tgz', BundleType: 'rar' })).message).toBe('BundleType in LocalRevision must be tar, tgz, zip, or directory');
    expect(error(local('Local Directory', { Location: '/tmp/b', BundleType: 'tgz' })).message).toMatch(/Local Directory must have BundleType directory/);
    expect(error(local('Local File', { Location: '/tmp/b', BundleType: 'directory' })).message).toMatch(/Local File must have BundleType tar, tgz or zip/);
  });

  it.each([
    ['S3', 'S3Revision'],
    ['GitHub', 'GitHubRevision'],
    ['Local File', 'LocalRevision'],
    ['Local Directory', 'LocalRevision'],
  ])('rejects RevisionType %s without %s cleanly (AWS\'s agent crashed later)', (type, key) => {
    expect(error(spec({ Revision: { RevisionType: type } })).message).toBe(`Deployment Spec has RevisionType ${type} but no ${key}`);
    expect(error(spec({ Revision: { RevisionType: type, [key]: null } })).message).toBe(`Deployment Spec has RevisionType ${type} but no ${key}`);
  });

  it('refuses ids that would escape the deployment root', () => {
    expect(error(spec({ DeploymentGroupId: '../etc' })).message).toMatch(/DeploymentGroupId that cannot be used as a folder name/);
    expect(error(spec({ DeploymentId: '..' })).message).toMatch(/DeploymentId that cannot be used as a folder name/);
  });

  it('rejects non-JSON and non-objects', () => {
    expect(error('not json').message).toMatch(/^Deployment Spec is not valid JSON/);
    expect(error('[1]').message).toBe('Deployment Spec must be a JSON object');
  });

  it('redacts the GitHub token for the debug log', () => {
    const text = redactedSpecJson(spec({ GitHubAccessToken: 'tok-123456' }));
    expect(text).toContain('"GitHubAccessToken":"REDACTED"');
    expect(text).not.toContain('tok-123456');
    const withOAuth = redactedSpecJson(spec({ Revision: { RevisionType: 'GitHub', GitHubRevision: { Account: 'a', Repository: 'r', CommitId: 'c', Anonymous: false, OAuthToken: 'oauth-987654' } } }));
    expect(withOAuth).toContain('"OAuthToken":"REDACTED"');
    expect(withOAuth).not.toContain('oauth-987654');
  });
});

describe('parseDeploymentSpec: fields of the wrong JSON type (found by test/fuzz/deployment-spec.test.ts)', () => {
  it('an object or list where text belongs is refused with the field named, not a TypeError', () => {
    expect(error(spec({ DeploymentGroupName: { toString: 1 } })).message).toBe('Deployment Spec has a DeploymentGroupName that is not text: {"toString":1}');
    expect(error(spec({ DeploymentId: [{ toString: null }] })).message).toBe('Deployment Spec has a DeploymentId that is not text: [{"toString":null}]');
    expect(error(spec({ Revision: { ...s3, S3Revision: { ...s3.S3Revision, Key: ['a', 'b'] } } })).message)
      .toBe('Deployment Spec has a S3Revision.Key that is not text: ["a","b"]');
    expect(error(spec({ AllPossibleLifecycleEvents: ['BeforeInstall', {}] })).message).toBe('Deployment Spec has a AllPossibleLifecycleEvents entry that is not text: {}');
  });

  it('numbers and booleans still read as text, as Ruby to_s writes them', () => {
    expect(parseDeploymentSpec(spec({ DeploymentGroupId: 42, ApplicationName: true })).deploymentGroupId).toBe('42');
  });
});
