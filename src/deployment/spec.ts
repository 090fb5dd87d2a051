import { DeploymentSpecError } from '../report/errors.js';
import { registerSecret } from '../log/redact.js';
import type { DeploymentSpec, Revision } from './spec-types.js';
import { groupIdProblem, pathSegmentProblem } from './folder-names.js';

/**
 * The deployment specification's JSON payload (agent-spec §2.2), with the anchor's messages. Two
 * deliberate departures, both for specs the anchor would crash on later anyway:
 * - a RevisionType whose sub-object (S3Revision, GitHubRevision, LocalRevision) is missing or null is
 *   rejected here with a message naming it (the anchor lets it through to a Ruby NoMethodError, §10.9);
 * - identifiers that become folder names (DeploymentId, DeploymentGroupId) must be one path segment.
 */

export const DEFAULT_APPSPEC_FILENAME = 'appspec.yml';
export const DEFAULT_FILE_EXISTS_BEHAVIOR = 'DISALLOW';

type Json = Record<string, unknown>;

function fail(message: string): never {
  throw new DeploymentSpecError(message);
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The anchor's `property_set?`: the key exists, is not null, and strings/arrays/objects are not empty. */
function isPresent(data: Json, key: string): boolean {
  if (!Object.hasOwn(data, key)) return false;
  const value = data[key];
  if (value === null || value === undefined) return false;
  if (typeof value === 'string' || Array.isArray(value)) return value.length > 0;
  if (isObject(value)) return Object.keys(value).length > 0;
  return true;
}

/** Ruby truthiness: everything except nil and false. */
function isTruthy(value: unknown): boolean {
  return value !== null && value !== undefined && value !== false;
}

/**
 * A field as text: numbers and booleans as Ruby's `to_s` writes them; a list or object is refused
 * (String() of one is "[object Object]", or a TypeError for `{"toString": 1}`).
 */
function text(value: unknown, field: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const shown = JSON.stringify(value) ?? String(typeof value);
  return fail(`Deployment Spec has a ${field} that is not text: ${shown.length > 100 ? `${shown.slice(0, 100)}…` : shown}`);
}

function optionalText(value: unknown, field: string): string | undefined {
  return value === null || value === undefined ? undefined : text(value, field);
}

function hasKeys(value: Json, keys: string[]): boolean {
  return keys.every((key) => Object.hasOwn(value, key));
}

/** Keys the anchor only tests for presence; a null value would fail later at download, so say so now. */
function requireStrings(value: Json, keys: string[], message: string): void {
  for (const key of keys) {
    if (value[key] === null || value[key] === undefined || value[key] === '') fail(message);
  }
}

/**
 * `arn:aws:codedeploy:us-east-1:123412341234:deployment/d-ABC` → `d-ABC`; a plain id is kept as it is.
 */
export function parseDeploymentId(raw: string): string {
  if (!raw.startsWith('arn:')) return raw;
  const resource = raw.split(':')[5];
  const slash = resource?.indexOf('/') ?? -1;
  if (resource === undefined || slash < 0 || slash === resource.length - 1) {
    fail(`Deployment Spec has a DeploymentId that is not a deployment ARN: ${raw}`);
  }
  return resource.slice(slash + 1);
}

/** DeploymentGroupId and DeploymentId name folders under the deployment root: one safe segment each. */
function checkFolderName(field: string, value: string, problem: string | undefined): void {
  if (problem !== undefined) fail(`Deployment Spec has a ${field} that cannot be used as a folder name: ${JSON.stringify(value)} (${problem})`);
}

function subRevision(revision: Json, key: string, revisionType: string): Json {
  const value = revision[key];
  if (value === null || value === undefined) {
    fail(`Deployment Spec has RevisionType ${revisionType} but no ${key}`);
  }
  if (!isObject(value)) fail(`${key} in Deployment Spec must be an object`);
  return value;
}

function parseRevision(revision: Json): Revision {
  const revisionType: unknown = revision.RevisionType;
  if (!isTruthy(revisionType)) fail('Must specify a revision source');
  switch (revisionType) {
    case 'S3': {
      const s3 = subRevision(revision, 'S3Revision', 'S3');
      const message = 'S3Revision in Deployment Spec must specify Bucket, Key and BundleType';
      if (!hasKeys(s3, ['Bucket', 'Key', 'BundleType'])) fail(message);
      requireStrings(s3, ['Bucket', 'Key'], message);
      const bundleType = s3.BundleType;
      if (bundleType !== 'tar' && bundleType !== 'tgz' && bundleType !== 'zip') fail('BundleType in S3Revision must be tar, tgz or zip');
      const result: Revision = { type: 'S3', bucket: text(s3.Bucket, 'S3Revision.Bucket'), key: text(s3.Key, 'S3Revision.Key'), bundleType };
      const version = optionalText(s3.Version, 'S3Revision.Version');
      const etag = optionalText(s3.ETag, 'S3Revision.ETag');
      if (version) result.version = version;
      if (etag) result.etag = etag;
      return result;
    }
    case 'GitHub': {
      const gh = subRevision(revision, 'GitHubRevision', 'GitHub');
      // Only its presence is checked (the top-level GitHubAccessToken is what is used), but it is a token all the same.
      if (typeof gh.OAuthToken === 'string') registerSecret(gh.OAuthToken);
      const required = ['Account', 'Repository', 'CommitId'];
      if (Object.hasOwn(gh, 'Anonymous') && gh.Anonymous === false) required.push('OAuthToken');
      const message = 'GitHubRevision in Deployment Spec must specify Account, Repository and CommitId';
      if (!hasKeys(gh, required)) fail(message);
      requireStrings(gh, ['Account', 'Repository', 'CommitId'], message);
      const result: Revision = { type: 'GitHub', account: text(gh.Account, 'GitHubRevision.Account'), repository: text(gh.Repository, 'GitHubRevision.Repository'), commitId: text(gh.CommitId, 'GitHubRevision.CommitId') };
      const bundleType = optionalText(gh.BundleType, 'GitHubRevision.BundleType');
      if (bundleType !== undefined) {
        // The anchor checks this at download time with this very text (unbalanced bracket included).
        if (bundleType !== 'tar' && bundleType !== 'zip') fail(`GitHub revision specified with bundle_type other than zip or tar [bundle_type=${bundleType}`);
        result.bundleType = bundleType;
      }
      return result;
    }
    case 'Local File':
    case 'Local Directory': {
      const local = subRevision(revision, 'LocalRevision', revisionType);
      const message = 'LocalRevision in Deployment Spec must specify Location and BundleType';
      if (!hasKeys(local, ['Location', 'BundleType'])) fail(message);
      requireStrings(local, ['Location'], message);
      const bundleType = local.BundleType;
      if (bundleType !== 'tar' && bundleType !== 'tgz' && bundleType !== 'zip' && bundleType !== 'directory') {
        fail('BundleType in LocalRevision must be tar, tgz, zip, or directory');
      }
      const location = text(local.Location, 'LocalRevision.Location');
      if (revisionType === 'Local Directory') {
        if (bundleType !== 'directory') fail(`LocalRevision with RevisionType Local Directory must have BundleType directory, not ${bundleType}`);
        return { type: 'Local Directory', location, bundleType };
      }
      if (bundleType === 'directory') fail('LocalRevision with RevisionType Local File must have BundleType tar, tgz or zip, not directory');
      return { type: 'Local File', location, bundleType };
    }
    default:
      return fail('Exactly one of S3Revision, GitHubRevision, or LocalRevision must be specified');
  }
}

/** Parses and validates the JSON payload of a deployment specification. */
export function parseDeploymentSpec(json: string): DeploymentSpec {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (error) {
    fail(`Deployment Spec is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(data)) fail('Deployment Spec must be a JSON object');

  if (!isPresent(data, 'DeploymentId')) fail('Deployment Spec has no DeploymentId');
  if (!isPresent(data, 'DeploymentGroupId')) fail('Deployment Spec has no DeploymentGroupId');
  if (!isPresent(data, 'DeploymentGroupName')) fail('Deployment Spec has no DeploymentGroupName');
  if (!isPresent(data, 'ApplicationName')) fail('Deployment Spec has no ApplicationName');

  // A top-level GitHub token must never reach a log line, whatever happens next.
  const gitHubAccessToken = optionalText(data.GitHubAccessToken, 'GitHubAccessToken');
  registerSecret(gitHubAccessToken);

  const deploymentId = parseDeploymentId(text(data.DeploymentId, 'DeploymentId'));
  const deploymentGroupId = text(data.DeploymentGroupId, 'DeploymentGroupId');
  checkFolderName('DeploymentId', deploymentId, pathSegmentProblem(deploymentId));
  checkFolderName('DeploymentGroupId', deploymentGroupId, groupIdProblem(deploymentGroupId));

  if (!isTruthy(data.Revision)) fail('Must specify a revison');
  if (!isObject(data.Revision)) fail('Revision in Deployment Spec must be an object');
  const revision = parseRevision(data.Revision);

  const spec: DeploymentSpec = {
    deploymentId,
    deploymentGroupId,
    deploymentGroupName: text(data.DeploymentGroupName, 'DeploymentGroupName'),
    applicationName: text(data.ApplicationName, 'ApplicationName'),
    deploymentCreator: isTruthy(data.DeploymentCreator) ? text(data.DeploymentCreator, 'DeploymentCreator') : 'user',
    deploymentType: isTruthy(data.DeploymentType) ? text(data.DeploymentType, 'DeploymentType') : 'IN_PLACE',
    appSpecFilename: isPresent(data, 'AppSpecFilename') ? text(data.AppSpecFilename, 'AppSpecFilename') : DEFAULT_APPSPEC_FILENAME,
    revision,
    fileExistsBehavior: fileExistsBehavior(data.AgentActionOverrides),
  };
  if (isPresent(data, 'AllPossibleLifecycleEvents') && Array.isArray(data.AllPossibleLifecycleEvents)) {
    spec.allPossibleLifecycleEvents = data.AllPossibleLifecycleEvents.map((event) => text(event, 'AllPossibleLifecycleEvents entry'));
  }
  if (gitHubAccessToken) spec.gitHubAccessToken = gitHubAccessToken;
  return spec;
}

/** `AgentActionOverrides.AgentOverrides.FileExistsBehavior`, upper-cased; not validated here (the appspec's value wins, §4.7). */
function fileExistsBehavior(overrides: unknown): string {
  if (isObject(overrides) && isObject(overrides.AgentOverrides)) {
    const value = overrides.AgentOverrides.FileExistsBehavior;
    if (isTruthy(value)) return text(value, 'AgentActionOverrides.AgentOverrides.FileExistsBehavior').toUpperCase();
  }
  return DEFAULT_FILE_EXISTS_BEHAVIOR;
}

/** The parsed JSON with the GitHub tokens masked, for the debug log line the anchor writes. */
export function redactedSpecJson(json: string): string {
  try {
    const data: unknown = JSON.parse(json);
    if (isObject(data) && isTruthy(data.GitHubAccessToken)) data.GitHubAccessToken = 'REDACTED';
    const gitHub = isObject(data) && isObject(data.Revision) ? data.Revision.GitHubRevision : undefined;
    if (isObject(gitHub) && isTruthy(gitHub.OAuthToken)) gitHub.OAuthToken = 'REDACTED';
    return JSON.stringify(data);
  } catch {
    return '(unparseable deployment specification)';
  }
}
