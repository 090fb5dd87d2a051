import { readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { isMap, isScalar, parseDocument, type Document } from 'yaml';
import { ConfigError } from '../report/errors.js';
import { parseListenAddress } from './listen-address.js';

/** Defaults of the bundle limits (archive/bundle-limits.ts says why these numbers). */
export const DEFAULT_MAX_BUNDLE_UNPACKED_MB = 32 * 1024;
export const DEFAULT_MAX_BUNDLE_COMPRESSION_RATIO = 500;

export const DEFAULT_CONFIG_FILE = '/etc/codedeploy-agent/conf/codedeployagent.yml';

/** About how long the commands service holds a PollHostCommand open (≈45 s observed, aws-codedeploy-agent #402). */
export const LONG_POLL_HOLD_SECONDS = 60;

/**
 * The agent configuration, normalised once from `codedeployagent.yml` (agent-spec §7.5).
 * Keys keep the anchor's snake_case names so operators can grep their config for them.
 */
export interface AgentConfig {
  /** Where this config was read from (undefined when built from defaults only). */
  config_file?: string;
  program_name: string;
  log_dir: string;
  pid_dir: string;
  root_dir: string;
  verbose: boolean;
  log_aws_wire: boolean;
  wait_between_runs: number;
  proxy_uri?: string;
  max_revisions: number;
  disable_imds_v1: boolean;
  children: number;
  wait_between_spawning_children: number;
  max_runs_per_worker: number;
  wait_after_throttle_error: number;
  wait_after_connection_problem: number;
  wait_after_error: number;
  http_read_timeout: number;
  kill_agent_max_wait_time_seconds: number;
  ongoing_deployment_tracking: string;
  on_premises_config_file: string;
  enable_deployments_log: boolean;
  use_fips_mode: boolean;
  deploy_control_endpoint?: string;
  s3_endpoint_override?: string;
  enable_auth_policy: boolean;
  codedeploy_test_profile: string;
  user?: string;
  group?: string;

  // ---- keys this agent adds (the anchor ignores unknown keys, so they are safe to share) ----
  /** Seconds between SIGTERM and SIGKILL when a hook times out or the agent shuts down. */
  hook_kill_grace_seconds: number;
  /** Seconds to keep reading a hook's stdout/stderr after it exited while a background child holds them. */
  hook_output_grace_seconds: number;
  /** Commands of different deployment groups that may run at once. */
  max_concurrent_commands: number;
  /** Upper bound of the random delay before the first poll, so a fleet rebooting together does not poll in lockstep. */
  startup_splay_seconds: number;
  /** Longest wait after consecutive poll errors (the anchor's table tops out at 90 s after ten errors; the table scales with it). */
  max_poll_backoff_seconds: number;
  /** Refuse a deployment specification whose PKCS7 signature does not verify. */
  enforce_deployment_spec_signature: boolean;
  /** Part size (MiB) and parallel parts for ranged S3 downloads. */
  s3_download_part_size_mb: number;
  s3_download_concurrency: number;
  /** Base URL of the GitHub API (GitHub Enterprise, tests). */
  github_api_base: string;
  /** `text` (anchor layout) or `json` (one object a line, for log shippers). */
  log_format: 'text' | 'json';
  /** Size rotation of each deployment's scripts.log. */
  scripts_log_max_bytes: number;
  scripts_log_max_files: number;
  /** Days of daily-rotated agent logs to keep. */
  log_retention_days: number;
  /** Where the daemon serves /healthz and /metrics (`9126` = loopback, or `ip:port`); off when unset. */
  metrics_listen?: string;
  /** Seconds polls may keep failing before /healthz and `status` call the agent unhealthy. */
  health_poll_failure_seconds: number;
  /** The operator hooks folder (`pre-deployment`, `post-event`, `pre-event.d/`…); none run while it does not exist. */
  operator_hooks_dir: string;
  /** Timeout of each operator hook (then SIGTERM, hook_kill_grace_seconds, SIGKILL, as for bundle hooks). */
  operator_hook_timeout_seconds: number;
  /** Most a bundle may unpack to, in MiB (archive/bundle-limits.ts). */
  max_bundle_unpacked_mb: number;
  /** Most a bundle may unpack to, as a multiple of its own size (a compression bomb goes past it at once). */
  max_bundle_compression_ratio: number;
}

export interface LoadedConfig {
  config: AgentConfig;
  warnings: string[];
  /** The file sets no key at all (empty, or only comments). */
  empty?: boolean;
}

type Kind = 'string' | 'optional-string' | 'boolean' | 'integer' | 'number' | 'log-format' | 'listen-address';

const SCHEMA: Record<keyof Omit<AgentConfig, 'config_file'>, { kind: Kind; default: unknown }> = {
  program_name: { kind: 'string', default: 'codedeploy-agent' },
  log_dir: { kind: 'string', default: '/var/log/aws/codedeploy-agent/' },
  pid_dir: { kind: 'string', default: '/opt/codedeploy-agent/state/.pid/' },
  root_dir: { kind: 'string', default: '/opt/codedeploy-agent/deployment-root' },
  verbose: { kind: 'boolean', default: false },
  log_aws_wire: { kind: 'boolean', default: false },
  wait_between_runs: { kind: 'number', default: 30 },
  proxy_uri: { kind: 'optional-string', default: undefined },
  max_revisions: { kind: 'integer', default: 5 },
  disable_imds_v1: { kind: 'boolean', default: false },
  children: { kind: 'integer', default: 1 },
  wait_between_spawning_children: { kind: 'number', default: 1 },
  max_runs_per_worker: { kind: 'integer', default: 0 },
  wait_after_throttle_error: { kind: 'number', default: 60 },
  wait_after_connection_problem: { kind: 'number', default: 5 },
  wait_after_error: { kind: 'number', default: 30 },
  http_read_timeout: { kind: 'number', default: 80 },
  kill_agent_max_wait_time_seconds: { kind: 'number', default: 7200 },
  ongoing_deployment_tracking: { kind: 'string', default: 'ongoing-deployment' },
  on_premises_config_file: { kind: 'string', default: '/etc/codedeploy-agent/conf/codedeploy.onpremises.yml' },
  enable_deployments_log: { kind: 'boolean', default: true },
  use_fips_mode: { kind: 'boolean', default: false },
  deploy_control_endpoint: { kind: 'optional-string', default: undefined },
  s3_endpoint_override: { kind: 'optional-string', default: undefined },
  enable_auth_policy: { kind: 'boolean', default: false },
  codedeploy_test_profile: { kind: 'string', default: 'prod' },
  user: { kind: 'optional-string', default: undefined },
  group: { kind: 'optional-string', default: undefined },
  hook_kill_grace_seconds: { kind: 'number', default: 5 },
  hook_output_grace_seconds: { kind: 'number', default: 5 },
  max_concurrent_commands: { kind: 'integer', default: 16 },
  startup_splay_seconds: { kind: 'number', default: 3 },
  max_poll_backoff_seconds: { kind: 'number', default: 90 },
  enforce_deployment_spec_signature: { kind: 'boolean', default: false },
  s3_download_part_size_mb: { kind: 'integer', default: 16 },
  s3_download_concurrency: { kind: 'integer', default: 8 },
  github_api_base: { kind: 'string', default: 'https://api.github.com' },
  log_format: { kind: 'log-format', default: 'text' },
  scripts_log_max_bytes: { kind: 'integer', default: 64 * 1024 * 1024 },
  scripts_log_max_files: { kind: 'integer', default: 8 },
  log_retention_days: { kind: 'integer', default: 7 },
  metrics_listen: { kind: 'listen-address', default: undefined },
  health_poll_failure_seconds: { kind: 'number', default: 300 },
  operator_hooks_dir: { kind: 'string', default: '/etc/codedeploy-agent/hooks.d' },
  operator_hook_timeout_seconds: { kind: 'number', default: 300 },
  max_bundle_unpacked_mb: { kind: 'integer', default: DEFAULT_MAX_BUNDLE_UNPACKED_MB },
  max_bundle_compression_ratio: { kind: 'number', default: DEFAULT_MAX_BUNDLE_COMPRESSION_RATIO },
};

/** Keys the anchor reads (or used to) that this agent accepts without using them. */
const LEGACY_KEYS = new Set([
  'use_mock_command_service',
  'plugins',
  'shared_dir',
  'instance_service_region',
  'instance_service_endpoint',
  'instance_service_port',
  'config_file',
]);

export function defaultConfig(): AgentConfig {
  const config: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SCHEMA)) config[key] = spec.default;
  return config as unknown as AgentConfig;
}

/** `:root_dir:` (Ruby symbol, as the anchor ships it) and `root_dir` name the same key. */
export function normaliseKey(key: string): string {
  return key.startsWith(':') ? key.slice(1) : key;
}

function coerce(key: string, kind: Kind, value: unknown, file: string): unknown {
  const wrong = (expected: string) =>
    new ConfigError(`${file}: key ${key} has the value ${JSON.stringify(value)}, which is not ${expected}`);
  if (value === null || value === undefined || value === '') {
    if (kind === 'optional-string' || kind === 'listen-address') return undefined;
    return SCHEMA[key as keyof typeof SCHEMA].default;
  }
  switch (kind) {
    case 'string':
    case 'optional-string':
      if (typeof value === 'string') return value;
      if (typeof value === 'number') return String(value);
      throw wrong('a string');
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true') return true;
      if (value === 'false') return false;
      throw wrong('true or false');
    case 'integer': {
      const n = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
      if (typeof n === 'number' && Number.isInteger(n)) return n;
      throw wrong('a whole number');
    }
    case 'number': {
      const n = typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value;
      if (typeof n === 'number' && Number.isFinite(n)) return n;
      throw wrong('a number');
    }
    case 'log-format':
      if (value === 'text' || value === 'json') return value;
      throw wrong('"text" or "json"');
    case 'listen-address': {
      if (typeof value !== 'string' && typeof value !== 'number') throw wrong('an address');
      const parsed = parseListenAddress(String(value));
      if ('problem' in parsed) throw wrong(parsed.problem);
      return String(value).trim();
    }
  }
}

function checkRanges(config: AgentConfig, file: string): void {
  const fail = (key: keyof AgentConfig, rule: string) =>
    new ConfigError(`${file}: key ${key} has the value ${JSON.stringify(config[key])}, which is not ${rule}`);
  if (config.max_revisions < 1) throw fail('max_revisions', 'a whole number of 1 or more');
  if (config.children !== 1) throw fail('children', '1 (children can only be set to 1)');
  if (config.max_runs_per_worker < 0) throw fail('max_runs_per_worker', '0 or more');
  if (config.max_concurrent_commands < 1) throw fail('max_concurrent_commands', 'a whole number of 1 or more');
  if (config.s3_download_part_size_mb < 5) throw fail('s3_download_part_size_mb', 'at least 5');
  if (config.s3_download_concurrency < 1) throw fail('s3_download_concurrency', 'at least 1');
  for (const key of ['wait_between_runs', 'http_read_timeout', 'kill_agent_max_wait_time_seconds', 'hook_kill_grace_seconds',
    'hook_output_grace_seconds', 'startup_splay_seconds', 'max_poll_backoff_seconds'] as const) {
    if (config[key] < 0) throw fail(key, 'a number of 0 or more');
  }
  for (const key of ['health_poll_failure_seconds', 'operator_hook_timeout_seconds', 'max_bundle_unpacked_mb', 'max_bundle_compression_ratio'] as const) {
    if (!(config[key] > 0)) throw fail(key, 'a number above 0');
  }
}

/**
 * Folders the agent's own folders may not be: it creates, empties and deletes inside root_dir, and writes
 * logs and pid files as root. `/proc`, `/sys`, `/dev` and `/boot` refuse anything inside them too.
 */
const SYSTEM_FOLDERS = new Set([
  '/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32', '/media', '/mnt', '/opt', '/proc', '/root',
  '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr', '/var', '/usr/bin', '/usr/sbin', '/usr/lib', '/usr/lib64', '/usr/local',
  '/usr/local/bin', '/usr/local/sbin', '/usr/share', '/usr/include', '/usr/src', '/var/lib', '/var/log', '/var/tmp', '/var/cache',
  '/var/spool', '/var/mail', '/var/run', '/var/www',
]);
const SYSTEM_TREES = ['/proc/', '/sys/', '/dev/', '/boot/'];

/** Why `value` cannot be one of the agent's folders (root_dir, log_dir, pid_dir), or undefined. */
export function agentFolderProblem(value: string): string | undefined {
  if (!isAbsolute(value)) return 'not an absolute path (it must start with /)';
  const candidates = [resolve(value)];
  try {
    // A symlink to a system folder is that folder.
    candidates.push(realpathSync(value));
  } catch {
    // not there yet: the agent makes it
  }
  for (const path of candidates) {
    if (SYSTEM_FOLDERS.has(path)) return `${path === '/' ? 'the root folder' : `the system folder ${path}`}, which the agent would write into and delete from`;
    if (SYSTEM_TREES.some((tree) => path.startsWith(tree))) return `inside the system folder ${path.split('/').slice(0, 2).join('/')}`;
  }
  return undefined;
}

function checkAgentFolders(config: AgentConfig, file: string): void {
  for (const key of ['root_dir', 'log_dir', 'pid_dir'] as const) {
    const problem = agentFolderProblem(config[key]);
    if (problem !== undefined) {
      throw new ConfigError(`${file}: key ${key} has the value ${JSON.stringify(config[key])}, which is ${problem}; give a folder of the agent's own, such as ${SCHEMA[key].default as string}`);
    }
  }
}

/**
 * Keys set more than once (`:root_dir:` and `root_dir` are one key): YAML keeps the last, which is easy
 * to miss when a key is added at the end of a long file.
 */
function duplicateKeyWarnings(doc: Document, text: string, file: string): string[] {
  if (!isMap(doc.contents)) return [];
  const seen = new Map<string, number[]>();
  for (const item of doc.contents.items) {
    if (!isScalar(item.key)) continue;
    const key = normaliseKey(String(item.key.value));
    const line = item.key.range ? text.slice(0, item.key.range[0]).split('\n').length : 0;
    seen.set(key, [...(seen.get(key) ?? []), line]);
  }
  const warnings: string[] = [];
  for (const [key, lines] of seen) {
    if (lines.length < 2) continue;
    warnings.push(`${file}: key ${key} is set ${lines.length} times (lines ${lines.join(', ')}); the last one (line ${lines[lines.length - 1]}) is used`);
  }
  return warnings;
}

/** Parses config YAML text (already read) into the typed config; pure apart from nothing. */
export function parseAgentConfig(text: string, file: string): LoadedConfig {
  const warnings: string[] = [];
  // YAML 1.1 as the anchor's Psych reads it (`yes`/`no` booleans, `0644` octal).
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = e.linePos?.[0];
    throw new ConfigError(
      // The yaml library's message ends with its own "at line L, column C:"; the position is said once.
      `An error occurred loading the CodeDeploy agent config file at ${file}. Error message: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}`,
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (error) {
    // yaml refuses an alias to no anchor, and an alias bomb ("Excessive alias count …"), only here.
    throw new ConfigError(`An error occurred loading the CodeDeploy agent config file at ${file}. Error message: ${(error as Error).message}`);
  }
  const config = defaultConfig();
  config.config_file = file;
  if (raw === null || raw === undefined) return { config, warnings, empty: true };
  warnings.push(...duplicateKeyWarnings(doc, text, file));
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${file}: the agent configuration must be a YAML mapping of keys to values`);
  }
  for (const [rawKey, value] of Object.entries(raw as Record<string, unknown>)) {
    const key = normaliseKey(rawKey);
    // Own keys only: `constructor` or `toString` in the file are unknown keys, not Object's.
    const spec = Object.hasOwn(SCHEMA, key) ? SCHEMA[key as keyof typeof SCHEMA] : undefined;
    if (!spec) {
      if (!LEGACY_KEYS.has(key)) warnings.push(`${file}: unknown configuration key ${rawKey} is ignored`);
      continue;
    }
    (config as unknown as Record<string, unknown>)[key] = coerce(key, spec.kind, value, file);
  }
  checkRanges(config, file);
  checkAgentFolders(config, file);
  if (config.http_read_timeout < LONG_POLL_HOLD_SECONDS) {
    warnings.push(`${file}: http_read_timeout is ${config.http_read_timeout} s, shorter than the commands service holds a poll `
      + `(up to about ${LONG_POLL_HOLD_SECONDS} s): polls will time out and be retried as errors; keep it at 80 (the default) or more`);
  }
  return { config, warnings };
}

/**
 * Reads the config file. A missing default file yields the defaults (so `validate` and `deploy` work on a
 * developer machine); a missing file that was asked for by name is an error, as in the anchor.
 */
export function loadAgentConfig(file: string | undefined): LoadedConfig {
  const path = file ?? DEFAULT_CONFIG_FILE;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (file === undefined && (error as NodeJS.ErrnoException).code === 'ENOENT') {
      return { config: defaultConfig(), warnings: [`${path} does not exist; using the built-in defaults`] };
    }
    throw new ConfigError(`The config file ${path} does not exist or is not readable`);
  }
  const loaded = parseAgentConfig(text, path);
  // A file asked for by name that sets nothing is a mistake (the wrong file, or one emptied by accident):
  // running on the built-in defaults instead would deploy into folders nobody chose.
  if (file !== undefined && loaded.empty) {
    throw new ConfigError(`The config file ${path} is empty (or only comments): it sets no key. Give a configuration that sets at least :root_dir:, or leave out -c to use the built-in defaults`);
  }
  return loaded;
}

