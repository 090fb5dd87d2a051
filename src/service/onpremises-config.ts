import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { ConfigError } from '../report/errors.js';
import { registerSecret } from '../log/redact.js';

/**
 * `codedeploy.onpremises.yml`, in either key style (`:region:` as AWS's docs
 * show, or `region:`), with AWS's validation messages. Nothing is exported into the process
 * environment: AWS's agent puts IAM-user keys into AWS_ACCESS_KEY/AWS_SECRET_KEY, from where every hook
 * inherits them; here they stay in memory and are handed to the credential provider.
 */

export interface IamUserOnPremisesConfig {
  kind: 'iam-user';
  path: string;
  region: string;
  iamUserArn: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface IamSessionOnPremisesConfig {
  kind: 'iam-session';
  path: string;
  region: string;
  iamSessionArn: string;
  /** A shared-credentials file an external process keeps fresh (re-read when it changes). */
  credentialsFile: string;
}

export type OnPremisesConfig = IamUserOnPremisesConfig | IamSessionOnPremisesConfig;

function invalidFormat(path: string): ConfigError {
  return new ConfigError(`The deployment failed because the format of the following on-premises configuration file is invalid: ${path}`);
}

function value(map: Record<string, unknown>, key: string): string | undefined {
  const raw = map[key];
  if (raw === null || raw === undefined) return undefined;
  const text = typeof raw === 'string' ? raw.trim() : String(raw);
  return text === '' ? undefined : text;
}

function required(map: Record<string, unknown>, key: string, arnKey: string): string {
  const found = value(map, key);
  if (found === undefined) throw new ConfigError(`'${key}' key is required when '${arnKey}' is provided.`);
  return found;
}

/**
 * Parses the file's text. Returns undefined when neither `iam_user_arn` nor `iam_session_arn` is set
 * (AWS's agent then ignores the file).
 */
export function parseOnPremisesConfig(text: string, path: string): OnPremisesConfig | undefined {
  let raw: unknown;
  try {
    const doc = parseDocument(text, { version: '1.1', uniqueKeys: false });
    if (doc.errors.length > 0) throw invalidFormat(path);
    raw = doc.toJS();
  } catch {
    throw invalidFormat(path);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidFormat(path);
  const map: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(raw as Record<string, unknown>)) {
    map[key.startsWith(':') ? key.slice(1) : key] = entry;
  }

  const iamUserArn = value(map, 'iam_user_arn');
  const iamSessionArn = value(map, 'iam_session_arn');
  if (iamUserArn && iamSessionArn) {
    throw new ConfigError("On Premises config cannot contain both 'iam_user_arn' and 'iam_session_arn' keys.");
  }
  if (iamUserArn) {
    const region = required(map, 'region', 'iam_user_arn');
    const accessKeyId = required(map, 'aws_access_key_id', 'iam_user_arn');
    const secretAccessKey = required(map, 'aws_secret_access_key', 'iam_user_arn');
    registerSecret(secretAccessKey);
    return { kind: 'iam-user', path, region, iamUserArn, accessKeyId, secretAccessKey };
  }
  if (iamSessionArn) {
    const region = required(map, 'region', 'iam_session_arn');
    const credentialsFile = required(map, 'aws_credentials_file', 'iam_session_arn');
    return { kind: 'iam-session', path, region, iamSessionArn, credentialsFile };
  }
  return undefined;
}

/** Reads the file; undefined when it is not readable (an EC2 host) or names no IAM identity. */
export function readOnPremisesConfig(path: string): OnPremisesConfig | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return parseOnPremisesConfig(text, path);
}

/** True when the file exists and can be read (AWS's "on-premises host" test for endpoint checks). */
export function isOnPremisesConfigReadable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
