import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomInt } from 'node:crypto';
import { archiveTypeFromContents, archiveTypeFromName, describeArchiveType, givenTypeMismatch, type ArchiveType } from '../archive/bundle-type.js';
import { AgentError } from '../report/errors.js';
import type { BundleType, DeploymentSpec, Revision } from './spec-types.js';
import { allPossibleLocalEvents } from './lifecycle.js';
import { groupIdProblem } from './folder-names.js';

/** Flags of `codedeploy-local`, already parsed. */
export interface LocalDeployOptions {
  bundleLocation: string;
  /** `-t`; when absent, the type is read off the location (a folder, or an archive's contents or name). */
  type?: string;
  /** Told how the type was worked out when `-t` was not given, so the user sees what was assumed. */
  onNote?: (note: string) => void;
  fileExistsBehavior?: string;
  deploymentGroup: string;
  deploymentGroupName?: string;
  applicationName?: string;
  events?: string[];
  appspecFilename?: string;
  /** `Authorization: token` for a private GitHub repository (the 2.0 agent's `--github-token`). */
  githubToken?: string;
}

export class LocalDeployError extends AgentError {}

const VALID_TYPES = ['tgz', 'tar', 'zip', 'directory'];

/** `d-` + 9 characters from A-Z0-9 + `-local`, as codedeploy-local names its deployments. */
export function localDeploymentId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let id = '';
  for (let i = 0; i < 9; i++) id += alphabet[randomInt(alphabet.length)];
  return `d-${id}-local`;
}

/** Turns a bundle location into a revision, with AWS's validation messages where it has them. */
export function revisionFromLocation(location: string, type: string | undefined, appspecFilename?: string, onNote?: (note: string) => void): Revision {
  if (type !== undefined && !VALID_TYPES.includes(type)) {
    throw new LocalDeployError(`type ${type} is not a valid type. Must be one of ${VALID_TYPES.join(',')}`);
  }
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(location)?.[1]?.toLowerCase();
  if (scheme === 'http') {
    throw new LocalDeployError(`location ${location} cannot be http, only encrypted (https) url endpoints supported`);
  }
  if (scheme === 's3') return s3Revision(location, type, onNote);
  if (scheme === 'https') return gitHubRevision(location, type);
  if (scheme !== undefined && scheme !== 'file' && scheme.length > 1) {
    throw new LocalDeployError(`unknown location ${location} cannot be determined to be S3, Github, or a local file / directory`);
  }
  // file:// URLs are accepted (AWS's agent rejects them by accident).
  const path = resolve(scheme === 'file' ? decodedPath(location, `file location ${location} is not a valid file:// URL`) : location);
  if (!existsSync(path)) {
    throw new LocalDeployError(`location ${location} is specified as a file or directory which does not exist`);
  }
  if (type !== undefined) {
    const mismatch = givenTypeMismatch(location, path, type as ArchiveType | 'directory');
    if (mismatch) throw new LocalDeployError(mismatch);
  }
  if (statSync(path).isDirectory()) {
    checkAppSpecPresent(location, path, appspecFilename);
    return { type: 'Local Directory', location: path, bundleType: 'directory' };
  }
  if (type !== undefined) return { type: 'Local File', location: path, bundleType: type as ArchiveType };
  const fromContents = archiveTypeFromContents(path);
  const looksLike = fromContents ?? archiveTypeFromName(path);
  if (!looksLike) {
    throw new LocalDeployError(
      `cannot tell what kind of archive ${location} is (its name does not end in .tar, .tgz, .tar.gz or .zip, and its contents are none of these): give -t tar, tgz or zip`,
    );
  }
  onNote?.(`${location} is a ${describeArchiveType(looksLike)} (by its ${fromContents ? 'contents' : 'name'}): deploying it as -t ${looksLike}`);
  return { type: 'Local File', location: path, bundleType: looksLike };
}

function checkAppSpecPresent(location: string, dir: string, appspecFilename?: string): void {
  const hint = 'Please either run the CLI from within a directory containing the appspec file or specify a bundle location containing an appspec file in its root directory';
  if (appspecFilename) {
    if (!existsSync(join(dir, appspecFilename))) {
      throw new LocalDeployError(`Expecting appspec file at location ${location}/${appspecFilename} but it is not found there. ${hint}`);
    }
  } else if (!existsSync(join(dir, 'appspec.yml')) && !existsSync(join(dir, 'appspec.yaml'))) {
    throw new LocalDeployError(`Expecting appspec file at location ${location}/appspec.yml or ${location}/appspec.yaml but it is not found there. ${hint}`);
  }
}

/** The URL in `location`, or a LocalDeployError with `problem` when it is none. */
function parseUrl(location: string, problem: string): URL {
  try {
    return new URL(location);
  } catch {
    throw new LocalDeployError(problem);
  }
}

/** The percent-decoded path of the URL in `location`; a malformed URL or escape (`%E0%A4%A`) is a LocalDeployError. */
function decodedPath(location: string, problem: string, url = parseUrl(location, problem)): string {
  try {
    return decodeURIComponent(url.pathname);
  } catch {
    throw new LocalDeployError(`${problem}: its path has a malformed %-escape`);
  }
}

function s3Revision(location: string, given: string | undefined, onNote?: (note: string) => void): Revision {
  const problem = `s3 location ${location} not in the expected format of 's3://bucket/key'`;
  const url = parseUrl(location, problem);
  const key = decodedPath(location, problem, url);
  if (!url.hostname || !key.startsWith('/') || key.length < 2) throw new LocalDeployError(problem);
  if (given === 'directory') {
    throw new LocalDeployError(`location ${location} is an S3 object: give its --type (tgz, tar or zip)`);
  }
  const named = archiveTypeFromName(key);
  if (given === undefined && named === undefined) {
    throw new LocalDeployError(`location ${location}: the key's name does not say what kind of archive it is: give its --type (tgz, tar or zip)`);
  }
  if (given === undefined) onNote?.(`${location} is a ${describeArchiveType(named as ArchiveType)} (by its name): deploying it as -t ${named}`);
  const type = given ?? named;
  const version = url.searchParams.get('versionId') ?? url.searchParams.get('version') ?? undefined;
  const etag = url.searchParams.get('etag') ?? undefined;
  return {
    type: 'S3',
    bucket: url.hostname,
    key: key.slice(1),
    bundleType: type as 'tar' | 'tgz' | 'zip',
    ...(version ? { version } : {}),
    ...(etag ? { etag } : {}),
  };
}

function gitHubRevision(location: string, type: string | undefined): Revision {
  const bundleType: 'tar' | 'zip' = type === 'tar' || type === 'zip' ? type : 'zip';
  const formatError = () =>
    new LocalDeployError(
      `github location ${location} not in the expected format of 'https://github.com/<account>/<repository>' or 'https://api.github.com/repos/<account>/<repository>/<tarball|zipball>/<commit>'`,
    );
  const url = parseUrl(location, formatError().message);
  if (!url.hostname.endsWith('github.com')) {
    throw new LocalDeployError(`unknown location ${location} cannot be determined to be S3, Github, or a local file / directory`);
  }
  // Segments as GitHub means them (`my%20repo` is `my repo`); the archive URL encodes them again.
  const parts = url.pathname.split('/').filter((p) => p.length > 0).map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw formatError();
    }
  });
  const revision = (account: string, repository: string, commitId: string): Revision => {
    if (account === '' || repository === '' || commitId === '') throw formatError();
    return { type: 'GitHub', account, repository, commitId, bundleType };
  };
  if (parts[0] === 'repos') {
    if (parts.length < 5) throw formatError();
    return revision(parts[1], parts[2], parts[parts.length - 1]);
  }
  if (parts.length < 2) throw formatError();
  return revision(parts[0], parts.slice(1).join('/').replace(/\.git$/, ''), 'HEAD');
}

/** The deployment specification codedeploy-local simulates (§8.3). */
export function buildLocalSpec(options: LocalDeployOptions, deploymentId = localDeploymentId()): DeploymentSpec {
  // The group id becomes a folder under the deployment root that retention empties: the daemon's rule.
  const groupProblem = groupIdProblem(options.deploymentGroup);
  if (groupProblem !== undefined) {
    throw new LocalDeployError(`-g ${JSON.stringify(options.deploymentGroup)} cannot be a deployment group: ${groupProblem}. Give one folder name, such as my-app`);
  }
  const revision = revisionFromLocation(options.bundleLocation, options.type, options.appspecFilename, options.onNote);
  return {
    deploymentId,
    deploymentGroupId: options.deploymentGroup,
    deploymentGroupName: options.deploymentGroupName ?? 'LocalFleet',
    applicationName: options.applicationName ?? options.bundleLocation,
    deploymentCreator: 'user',
    deploymentType: 'IN_PLACE',
    appSpecFilename: options.appspecFilename ?? 'appspec.yml',
    revision,
    fileExistsBehavior: (options.fileExistsBehavior ?? 'DISALLOW').toUpperCase(),
    allPossibleLifecycleEvents: allPossibleLocalEvents(options.events),
    ...(options.githubToken ? { gitHubAccessToken: options.githubToken } : {}),
  };
}

export function bundleTypeOf(revision: Revision): BundleType {
  return revision.bundleType ?? 'tar';
}
