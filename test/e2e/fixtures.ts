/**
 * Shared pieces of the end-to-end revision tests: a bundle whose hooks record what they saw, archives of
 * it (optionally wrapped in one top folder as GitHub does), an S3 admin client for moto, and the
 * environment every agent child process gets (no network but loopback, nothing read from ~/.aws).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';

/** What the moto S3 and the downloader accept; moto ignores the values. */
export const S3_TEST_CREDENTIALS = { accessKeyId: 'AKIAMOTOTESTKEY00001', secretAccessKey: 'motoSecretAccessKeyForTests/0123456789' };

/** The variables a recording hook writes, in this order, `-` for "not set". */
export const RECORDED_VARIABLES = [
  'LIFECYCLE_EVENT',
  'DEPLOYMENT_ID',
  'BUNDLE_BUCKET',
  'BUNDLE_KEY',
  'BUNDLE_VERSION',
  'BUNDLE_ETAG',
  'BUNDLE_COMMIT',
] as const;

export type Recorded = Record<(typeof RECORDED_VARIABLES)[number], string | undefined> & { VERSION: string };

/**
 * A bundle folder: `content/index.html` (says `version`) installed to `destination`, and a hook for
 * each event in `hooks` that appends the variables it saw to `recordFile`.
 */
export function makeRecordingBundle(dir: string, options: { version: string; destination: string; recordFile: string; hooks?: string[] }): string {
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  mkdirSync(join(dir, 'content'), { recursive: true });
  writeFileSync(join(dir, 'content', 'index.html'), `version ${options.version}\n`);
  const fields = RECORDED_VARIABLES.map((name) => `\${${name}-"-"}`).join('|');
  writeFileSync(
    join(dir, 'scripts', 'record.sh'),
    // The whole environment goes into the deployment folder too, so tests can look for secrets in it.
    `#!/bin/sh\necho "${fields}|${options.version}" >> '${options.recordFile}'\nenv > "$(dirname "$0")/../../hook-env-$LIFECYCLE_EVENT.txt"\necho "hook $LIFECYCLE_EVENT ran"\n`,
  );
  chmodSync(join(dir, 'scripts', 'record.sh'), 0o755);
  const hooks = options.hooks ?? ['BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService'];
  const hookYaml = hooks.map((event) => `  ${event}:\n    - location: scripts/record.sh\n      timeout: 30\n`).join('');
  writeFileSync(
    join(dir, 'appspec.yml'),
    `version: 0.0\nos: linux\nfiles:\n  - source: content\n    destination: ${options.destination}\nhooks:\n${hookYaml}`,
  );
  return dir;
}

/** `tar -czf` of the folder's contents, or of the folder itself under `topFolder` (GitHub's `<owner>-<repo>-<sha>/`). */
export function tgzOf(dir: string, file: string, topFolder?: string): Buffer {
  if (topFolder) {
    const parent = `${dir}.wrap`;
    mkdirSync(parent, { recursive: true });
    execFileSync('cp', ['-a', dir, join(parent, topFolder)]);
    execFileSync('tar', ['-czf', file, '-C', parent, topFolder]);
  } else {
    execFileSync('tar', ['-czf', file, '-C', dir, '.']);
  }
  return readFileSync(file);
}

/** `zip -r` of the folder under `topFolder`, as GitHub's zipball. */
export function zipOf(dir: string, file: string, topFolder: string): Buffer {
  const parent = `${dir}.zipwrap`;
  mkdirSync(parent, { recursive: true });
  execFileSync('cp', ['-a', dir, join(parent, topFolder)]);
  execFileSync('zip', ['-qr', file, topFolder], { cwd: parent });
  return readFileSync(file);
}

export function readRecords(file: string): Recorded[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const values = line.split('|');
      const record = { VERSION: values[RECORDED_VARIABLES.length] } as Recorded;
      RECORDED_VARIABLES.forEach((name, i) => {
        record[name] = values[i] === '-' ? undefined : values[i];
      });
      return record;
    });
}

export function motoAdmin(endpoint: string): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: S3_TEST_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/**
 * The environment of an agent child process: only loopback is reachable (IMDS off), the SDK reads no
 * shared files of the machine (HOME is the test folder), and the checksum settings moto needs come from
 * the variables the SDK itself honours.
 */
export function agentEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    LANG: 'C.UTF-8',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(home, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-aws-credentials'),
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    ...extra,
  };
}

/** Every file under `dir` whose contents include `needle` (logs, markers, scripts.log, …). */
export function filesContaining(dir: string, needle: string): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  const walk = (path: string): void => {
    const stat = statSync(path, { throwIfNoEntry: false });
    if (!stat) return;
    if (stat.isDirectory()) {
      for (const name of readdirSync(path)) walk(join(path, name));
    } else if (stat.isFile() && readFileSync(path).includes(needle)) {
      found.push(path);
    }
  };
  walk(dir);
  return found;
}
