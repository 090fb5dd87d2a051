import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultConfig, loadAgentConfig, parseAgentConfig } from '../../src/config/agent-config.js';
import { ConfigError } from '../../src/report/errors.js';
import { makeTempDir } from '../helpers/tmp.js';

const cleanups: (() => void)[] = [];
afterEach(() => { while (cleanups.length) cleanups.pop()!(); });

describe('agent config', () => {
  it('reads the shipped file with Ruby-symbol keys', () => {
    const text = [
      '---',
      ':log_aws_wire: false',
      ":log_dir: '/var/log/aws/codedeploy-agent/'",
      ":pid_dir: '/opt/codedeploy-agent/state/.pid/'",
      ':program_name: codedeploy-agent',
      ":root_dir: '/tmp/root'",
      ':verbose: false',
      ':wait_between_runs: 1',
      ':proxy_uri:',
      ':max_revisions: 5',
      ':disable_imds_v1: false',
    ].join('\n');
    const { config, warnings } = parseAgentConfig(text, '/etc/x.yml');
    expect(warnings).toEqual([]);
    expect(config.root_dir).toBe('/tmp/root');
    expect(config.wait_between_runs).toBe(1);
    expect(config.proxy_uri).toBeUndefined();
    expect(config.max_revisions).toBe(5);
    expect(config.http_read_timeout).toBe(80);
    expect(config.kill_agent_max_wait_time_seconds).toBe(7200);
  });

  it('accepts plain keys and the same defaults as the anchor', () => {
    const { config } = parseAgentConfig('root_dir: /r\nverbose: yes\nmax_revisions: "3"\n', 'f.yml');
    expect(config.root_dir).toBe('/r');
    expect(config.verbose).toBe(true);
    expect(config.max_revisions).toBe(3);
    const d = defaultConfig();
    expect(d.wait_between_runs).toBe(30);
    expect(d.ongoing_deployment_tracking).toBe('ongoing-deployment');
    expect(d.on_premises_config_file).toBe('/etc/codedeploy-agent/conf/codedeploy.onpremises.yml');
    expect(d.enable_deployments_log).toBe(true);
    expect(d.codedeploy_test_profile).toBe('prod');
  });

  it('warns about an unknown key and names it', () => {
    const { warnings } = parseAgentConfig(':no_such_key: 1\n:plugins: x\n', 'f.yml');
    expect(warnings).toEqual(['f.yml: unknown configuration key :no_such_key is ignored']);
  });

  it('warns when http_read_timeout would cut the service\'s long poll short', () => {
    expect(parseAgentConfig(':http_read_timeout: 30\n', 'f.yml').warnings).toEqual([
      'f.yml: http_read_timeout is 30 s, shorter than the commands service holds a poll (up to about 60 s): polls will time out and be retried as errors; keep it at 80 (the default) or more',
    ]);
    expect(parseAgentConfig(':http_read_timeout: 80\n', 'f.yml').warnings).toEqual([]);
  });

  it('rejects a wrong type naming key, value and file', () => {
    expect(() => parseAgentConfig(':max_revisions: many\n', '/etc/c.yml')).toThrow(
      '/etc/c.yml: key max_revisions has the value "many", which is not a whole number',
    );
    expect(() => parseAgentConfig(':verbose: 3\n', '/etc/c.yml')).toThrow(/key verbose has the value 3, which is not true or false/);
    expect(() => parseAgentConfig(':max_revisions: 0\n', 'c.yml')).toThrow(ConfigError);
    expect(() => parseAgentConfig(':children: 2\n', 'c.yml')).toThrow(/children can only be set to 1/);
  });

  it('reports YAML syntax errors with position', () => {
    expect(() => parseAgentConfig(':a: [1, 2\n', 'bad.yml')).toThrow(/bad\.yml.*line \d+, column \d+/);
  });

  it('an alias bomb or an alias to no anchor is a ConfigError (found by test/fuzz/config.test.ts)', () => {
    const bomb = ['a0: &a0 [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i <= 3; i++) bomb.push(`a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(', ')}]`);
    expect(() => parseAgentConfig(`${bomb.join('\n')}\n:root_dir: *a3\n`, 'c.yml')).toThrow(ConfigError);
    expect(() => parseAgentConfig(`${bomb.join('\n')}\n:root_dir: *a3\n`, 'c.yml')).toThrow(/config file at c\.yml\. Error message: .*alias/);
    expect(() => parseAgentConfig(':root_dir: [*nowhere]\n', 'c.yml')).toThrow(ConfigError);
  });

  it("keys named like Object's own members are unknown keys (found by test/fuzz/config.test.ts)", () => {
    const { config, warnings } = parseAgentConfig('constructor: x\nhasOwnProperty:\ntoString: 1\n', 'c.yml');
    expect(warnings).toEqual([
      'c.yml: unknown configuration key constructor is ignored',
      'c.yml: unknown configuration key hasOwnProperty is ignored',
      'c.yml: unknown configuration key toString is ignored',
    ]);
    expect(Object.hasOwn(config, 'constructor') || Object.hasOwn(config, 'hasOwnProperty') || Object.hasOwn(config, 'toString')).toBe(false);
  });

  it('loads from disk; a named missing file is an error', () => {
    const t = makeTempDir();
    cleanups.push(t.cleanup);
    const file = join(t.dir, 'c.yml');
    writeFileSync(file, ':root_dir: /x\n');
    expect(loadAgentConfig(file).config.root_dir).toBe('/x');
    expect(() => loadAgentConfig(join(t.dir, 'missing.yml'))).toThrow('does not exist or is not readable');
  });
});

describe('agent config: folders, empty files and repeated keys', () => {
  it.each([
    ['root_dir', '/'],
    ['root_dir', '/etc'],
    ['root_dir', '/usr/'],
    ['root_dir', '/opt/../home'],
    ['log_dir', '/var/log'],
    ['pid_dir', '/proc/self'],
    ['root_dir', '/dev/shm/x'],
  ])('refuses %s %s (a system folder)', (key, value) => {
    expect(() => parseAgentConfig(`:${key}: ${value}\n`, 'c.yml')).toThrow(new RegExp(`c\\.yml: key ${key} has the value .*, which is (the root folder|the system folder|inside the system folder)`));
  });

  it('refuses a relative folder', () => {
    expect(() => parseAgentConfig(':root_dir: deployment-root\n', 'c.yml')).toThrow(/key root_dir has the value "deployment-root", which is not an absolute path/);
  });

  it('refuses a symlink to a system folder', () => {
    const t = makeTempDir();
    cleanups.push(t.cleanup);
    const link = join(t.dir, 'root');
    symlinkSync('/etc', link);
    expect(() => parseAgentConfig(`:root_dir: ${link}\n`, 'c.yml')).toThrow(/the system folder \/etc/);
  });

  it('accepts folders of the agent\'s own', () => {
    expect(() => parseAgentConfig(':root_dir: /opt/codedeploy-agent/deployment-root\n:log_dir: /var/log/aws/codedeploy-agent/\n', 'c.yml')).not.toThrow();
  });

  it('refuses an empty or comments-only file named with -c, but not a missing default', () => {
    const t = makeTempDir();
    cleanups.push(t.cleanup);
    for (const text of ['', '# nothing here\n\n# at all\n', '---\n']) {
      const file = join(t.dir, 'empty.yml');
      writeFileSync(file, text);
      expect(() => loadAgentConfig(file)).toThrow(`The config file ${file} is empty (or only comments): it sets no key`);
    }
  });

  it('warns about a key set twice, in either spelling, naming the lines and the value used', () => {
    const { config, warnings } = parseAgentConfig(':root_dir: /a\n:verbose: true\nroot_dir: /b\n', 'c.yml');
    expect(config.root_dir).toBe('/b');
    expect(warnings).toEqual(['c.yml: key root_dir is set 2 times (lines 1, 3); the last one (line 3) is used']);
  });
});
