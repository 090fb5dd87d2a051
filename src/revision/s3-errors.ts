/**
 * What a user reads when an S3 download fails: each message names the object and what to check. The
 * download (./s3.ts) and the clients (./s3-clients.ts) throw what the SDK gives them; it becomes a
 * RevisionError here, once.
 */
import { redact } from '../log/redact.js';
import { RevisionError } from '../report/errors.js';
import { errorCode, isUnreachable } from '../util/network-errors.js';
import type { S3Revision } from './s3.js';

/** `s3://bucket/key` and the version the spec named, as every S3 message names the object. */
export function describeS3Object(revision: S3Revision): string {
  return `s3://${revision.bucket}/${revision.key}${revision.version ? ` (version ${revision.version})` : ''}`;
}

export function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/** `NoSuchKey HTTP 404: message`: the name, Node code and status of a failure, each once. */
export function errorSummary(error: unknown): string {
  const err = error as { name?: string; message?: string; code?: string } | undefined;
  const status = statusOf(error);
  const parts = [err?.name, errorCode(error), status !== undefined ? `HTTP ${status}` : undefined].filter(
    (part, i, all) => part && all.indexOf(part) === i,
  );
  return `${parts.join(' ')}${err?.message ? `: ${err.message}` : ''}`;
}

/** A ranged GET answered 412: the object under the key is no longer the one the HEAD saw. */
export class ObjectChangedError extends Error {
  override readonly name = 'ObjectChangedError';
  constructor(cause: unknown) {
    super('the object changed while it was being downloaded (If-Match failed)', { cause });
  }
}

export function bucketNameError(bucket: string): RevisionError {
  return new RevisionError(`The revision's bucket ${JSON.stringify(bucket)} is not an S3 bucket name (letters, digits, '.', '-' and '_'). Check the Bucket of the revision.`);
}

export function etagMismatchError(expected: string, actual: string | undefined): RevisionError {
  return new RevisionError(`Expected deployment artifact bundle etag ${expected} but was actually ${actual ?? '(none)'}`);
}

/** The key answers a HEAD without the version, but not with it. */
export function versionMissingError(revision: S3Revision, cause: unknown): RevisionError {
  return new RevisionError(
    `Version ${revision.version} of s3://${revision.bucket}/${revision.key} does not exist (the key exists, but not that version). ` +
      'Check the Version of the revision; it may have been deleted by a lifecycle rule, or the bucket was not versioned when it was uploaded.',
    undefined,
    { cause },
  );
}

/** Where the download was talking to when it failed, for the messages. */
export interface S3FailureContext {
  region: string;
  endpoint: string;
  /** As the Ruby agent, the connection hint names FIPS whenever FIPS mode is on. */
  fipsMode: boolean;
  cancelled: boolean;
}

/** Turns whatever went wrong into a message that names the object and what to check. */
export function toRevisionError(error: unknown, revision: S3Revision, context: S3FailureContext): RevisionError {
  if (error instanceof RevisionError) return error;
  const where = describeS3Object(revision);
  const status = statusOf(error);
  const name = (error as { name?: string } | undefined)?.name;
  const wrap = (message: string): RevisionError => new RevisionError(redact(message), undefined, { cause: error });

  if (error instanceof ObjectChangedError) {
    return wrap(`${where} changed while it was being downloaded (its ETag no longer matched); deploy again, or pin the revision's Version or ETag`);
  }
  if (name === 'AbortError' || context.cancelled) {
    return wrap(`Download of ${where} was cancelled`);
  }
  if (name === 'CredentialsProviderError' || name === 'CredentialsError') {
    // The first words are AWS's codedeploy-local's; the rest says where credentials come from.
    return wrap(
      `We were unable to download content from the Amazon S3 bucket due to missing or invalid credentials: none were found to read ${where} ` +
        `(${(error as Error).message}). The agent uses the host's instance profile on EC2, or the keys or session file of its on-premises ` +
        'configuration file; `codedeploy-agent deploy` also takes AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials.',
    );
  }
  if (name === 'NoSuchBucket') {
    return wrap(`The bucket ${revision.bucket} does not exist (looked in region ${context.region}). Check the Bucket of the revision.`);
  }
  if (name === 'NoSuchVersion' || (revision.version !== undefined && status === 400 && (name === 'InvalidArgument' || name === 'BadRequest' || name === '400'))) {
    return wrap(`Version ${revision.version} of s3://${revision.bucket}/${revision.key} does not exist or is not a valid version id. Check the Version of the revision.`);
  }
  if (status === 404 || name === 'NoSuchKey' || name === 'NotFound') {
    return wrap(
      `No object at ${where} (region ${context.region}): it was never uploaded, was deleted, or the Bucket/Key are misspelled (keys are case-sensitive). ` +
        'Check the revision registered for the deployment.',
    );
  }
  if (status === 403 || name === 'AccessDenied' || name === 'Forbidden') {
    return wrap(
      `Access denied reading ${where} (region ${context.region}). Check that the agent's credentials (instance profile, or the on-premises IAM user/session) ` +
        `allow s3:GetObject${revision.version ? ' and s3:GetObjectVersion' : ''} on arn:aws:s3:::${revision.bucket}/${revision.key}, ` +
        'that no bucket policy or VPC endpoint policy denies it, and for SSE-KMS objects kms:Decrypt on the key. ' +
        'Without s3:ListBucket, S3 also answers 403 for a key that does not exist.',
    );
  }
  if (isUnreachable(error)) {
    const hint = context.fipsMode
      ? `. Check that Fips exists in ${context.region}. Or, try using s3 endpoint override.`
      : '. Try using s3 endpoint override.';
    return wrap(`Unable to connect to ${context.endpoint} to download ${where}: ${errorSummary(error)}${hint}`);
  }
  return wrap(`Could not download ${where}: ${errorSummary(error)}`);
}
