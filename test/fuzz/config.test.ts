import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { defaultConfig, parseAgentConfig, type AgentConfig } from '../../src/config/agent-config.js';
import { ConfigError } from '../../src/report/errors.js';
import { parseOnPremisesConfig } from '../../src/service/onpremises-config.js';
import { anyText, fuzz, OBJECT_MEMBER_KEYS, parseOrTypedError, testTimeout } from './fuzz.js';

/**
 * The agent configuration and the on-premises configuration are YAML an operator (or a configuration
 * tool) wrote. For any text: a configuration whose every key has its documented type, or a ConfigError
 * with a message.
 */

const DEFAULTS = defaultConfig() as unknown as Record<string, unknown>;
const CONFIG_KEYS = Object.keys(DEFAULTS);

const yamlValue = fc.oneof(
  fc.constantFrom('', '~', 'true', 'false', 'yes', 'no', '0', '-1', '1', '5', '80', '1.5', '1e3', '.inf', '.nan', '0644', '0x10', 'text', 'json',
    '[1, 2]', '{a: 1}', '"80"', "' 7 '", '2001-12-14', '!!binary aGVsbG8=', '*nowhere', '&x 1'),
  fc.integer().map(String),
  fc.double().map(String),
  fc.string({ maxLength: 10 }).map((text) => JSON.stringify(text)),
);

function configText(keys: readonly string[]): fc.Arbitrary<string> {
  const key = fc.oneof(fc.constantFrom(...keys), fc.constantFrom(...OBJECT_MEMBER_KEYS), fc.string({ maxLength: 8 }));
  const line = fc.tuple(fc.boolean(), key, yamlValue).map(([symbol, name, value]) => `${symbol ? ':' : ''}${JSON.stringify(name)}: ${value}`);
  return fc.array(line, { maxLength: 8 }).map((lines) => lines.join('\n'));
}

const ALIAS_BOMB = fc.integer({ min: 2, max: 12 }).map((levels) => {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i <= levels; i++) lines.push(`a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(', ')}]`);
  return `${lines.join('\n')}\nroot_dir: *a${levels}\n`;
});

function checkAgentConfig(config: AgentConfig): void {
  const record = config as unknown as Record<string, unknown>;
  for (const key of Object.keys(record)) expect([...CONFIG_KEYS, 'config_file'], `key ${key}`).toContain(key);
  expect(Object.getPrototypeOf(config)).toBe(Object.prototype);
  for (const key of CONFIG_KEYS) {
    const value = record[key];
    const fallback = DEFAULTS[key];
    if (fallback === undefined) {
      if (value !== undefined) expect(typeof value, key).toBe('string');
    } else if (typeof fallback === 'number') {
      expect(Number.isFinite(value), `${key}: ${String(value)}`).toBe(true);
      if (Number.isInteger(fallback) && ['max_revisions', 'children', 'max_runs_per_worker', 'max_concurrent_commands', 's3_download_part_size_mb',
        's3_download_concurrency', 'scripts_log_max_bytes', 'scripts_log_max_files', 'log_retention_days'].includes(key)) {
        expect(Number.isInteger(value), key).toBe(true);
      }
    } else {
      expect(typeof value, key).toBe(typeof fallback);
    }
  }
  expect(['text', 'json']).toContain(config.log_format);
}

function agentConfigCase(text: string): void {
  const loaded = parseOrTypedError(() => parseAgentConfig(text, '/etc/codedeploy-agent/conf/codedeployagent.yml'), [ConfigError]);
  if (loaded) {
    checkAgentConfig(loaded.config);
    for (const warning of loaded.warnings) expect(warning.trim()).not.toBe('');
  }
}

const ONPREM_KEYS = ['region', 'iam_user_arn', 'iam_session_arn', 'aws_access_key_id', 'aws_secret_access_key', 'aws_credentials_file'];

function onPremisesCase(text: string): void {
  const config = parseOrTypedError(() => parseOnPremisesConfig(text, '/etc/codedeploy-agent/conf/codedeploy.onpremises.yml'), [ConfigError]);
  if (config === undefined) return;
  expect(config.region.trim()).not.toBe('');
  if (config.kind === 'iam-user') {
    for (const value of [config.iamUserArn, config.accessKeyId, config.secretAccessKey]) expect(typeof value === 'string' && value.trim() !== '').toBe(true);
  } else {
    for (const value of [config.iamSessionArn, config.credentialsFile]) expect(typeof value === 'string' && value.trim() !== '').toBe(true);
  }
}

describe('fuzz: agent configuration', () => {
  const budget = { runs: 400, timeMs: 1_500 };

  it('any text', { timeout: testTimeout(budget.timeMs) }, async () => {
    await fuzz(import.meta.url, fc.property(anyText(300), agentConfigCase), budget);
  });

  it('its keys with values of every type', { timeout: testTimeout(budget.timeMs) }, async () => {
    await fuzz(import.meta.url, fc.property(configText(CONFIG_KEYS), agentConfigCase), budget);
  });

  it('alias bombs', { timeout: testTimeout(budget.timeMs) }, async () => {
    await fuzz(import.meta.url, fc.property(ALIAS_BOMB, agentConfigCase), { runs: 20, timeMs: budget.timeMs });
  });
});

describe('fuzz: on-premises configuration', () => {
  const budget = { runs: 400, timeMs: 1_500 };

  it('any text as an on-premises configuration', { timeout: testTimeout(budget.timeMs) }, async () => {
    await fuzz(import.meta.url, fc.property(anyText(300), onPremisesCase), budget);
  });

  it('the on-premises keys with values of every type, and alias bombs', { timeout: testTimeout(budget.timeMs) }, async () => {
    const validish = fc.record({ region: fc.string(), iam_user_arn: fc.string(), aws_access_key_id: fc.string(), aws_secret_access_key: fc.string() }, { requiredKeys: [] })
      .map((record) => stringify(record));
    await fuzz(import.meta.url, fc.property(fc.oneof(configText(ONPREM_KEYS), validish, ALIAS_BOMB), onPremisesCase), budget);
  });
});
