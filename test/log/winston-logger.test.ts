import { existsSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultConfig } from '../../src/config/agent-config.js';
import { dayStamp, rotatedFileName } from '../../src/log/daily-file.js';
import { registerSecret } from '../../src/log/redact.js';
import { formatTextLine } from '../../src/log/line-format.js';
import { createAgentLogger, type AgentLoggerConfig } from '../../src/log/winston-logger.js';
import { makeTempDir } from '../helpers/tmp.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  while (cleanups.length) await cleanups.pop()!();
});

function setup(overrides: Partial<AgentLoggerConfig> = {}) {
  const tmp = makeTempDir('cda-log-');
  cleanups.push(tmp.cleanup);
  const config: AgentLoggerConfig = { ...defaultConfig(), log_dir: join(tmp.dir, 'log'), ...overrides };
  return { dir: config.log_dir, config };
}

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean);
}

describe('agent log', () => {
  it('writes the anchor layout to <log_dir>/codedeploy-agent.log at info level', async () => {
    const { dir, config } = setup();
    const log = createAgentLogger(config);
    expect(log.file).toBe(join(dir, 'codedeploy-agent.log'));
    log.logger.debug('not shown unless verbose');
    log.logger.info('InstanceAgent::Plugins::CodeDeployPlugin::CommandPoller: Calling PollHostCommand:');
    log.logger.warn('careful');
    log.logger.error('broken');
    await log.close();
    const got = lines(log.file);
    expect(got).toHaveLength(3);
    expect(got[0]).toMatch(new RegExp(`^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2} INFO  \\[codedeploy-agent\\(${process.pid}\\)\\]: InstanceAgent::Plugins::CodeDeployPlugin::CommandPoller: Calling PollHostCommand:$`));
    expect(got[1]).toContain(' WARN  [codedeploy-agent(');
    expect(got[2]).toContain(' ERROR [codedeploy-agent(');
    expect(statSync(log.file).mode & 0o777).toBe(0o640);
  });

  it('logs debug lines when verbose', async () => {
    const { config } = setup({ verbose: true });
    const log = createAgentLogger(config);
    log.logger.debug('details');
    await log.close();
    expect(lines(log.file)[0]).toContain(' DEBUG [codedeploy-agent(');
  });

  it('formats a line exactly as the anchor does', () => {
    const line = formatTextLine(new Date(2024, 9, 9, 22, 54, 0), 'info', 'codedeploy-agent', 6273, 'hello');
    expect(line).toBe('2024-10-09T22:54:00 INFO  [codedeploy-agent(6273)]: hello');
  });

  it('writes one JSON object a line with log_format: json', async () => {
    const { config } = setup({ log_format: 'json' });
    const log = createAgentLogger(config, { fileName: 'codedeploy-local.log' });
    log.logger.info('first "quoted"\nsecond line');
    log.logger.error('oops');
    await log.close();
    expect(log.file.endsWith('codedeploy-local.log')).toBe(true);
    const got = lines(log.file).map((line) => JSON.parse(line));
    expect(got).toHaveLength(2);
    expect(got[0]).toMatchObject({ level: 'info', program: 'codedeploy-agent', pid: process.pid, message: 'first "quoted"\nsecond line' });
    expect(new Date(got[0].time).getTime()).not.toBeNaN();
    expect(got[1]).toMatchObject({ level: 'error', message: 'oops' });
  });

  it('redacts secrets in every line, text and json', async () => {
    registerSecret('sekrit-value-123456');
    for (const log_format of ['text', 'json'] as const) {
      const { config } = setup({ log_format });
      const log = createAgentLogger(config);
      log.logger.info('credentials loaded: sekrit-value-123456');
      log.logger.info('aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
      log.logger.info('Authorization: token ghp_abcdefghijklmnopqrstuvwxyz0123456789');
      await log.close();
      const text = readFileSync(log.file, 'utf8');
      expect(text).not.toContain('sekrit-value-123456');
      expect(text).not.toContain('wJalrXUtnFEMI');
      expect(text).not.toContain('ghp_abcdefghijklmnopqrstuvwxyz');
      expect(text.match(/REDACTED/g)?.length).toBe(3);
    }
  });

  it('rotates daily to codedeploy-agent.YYYYMMDD.log and keeps log_retention_days files', async () => {
    const { dir, config } = setup({ log_retention_days: 2 });
    let now = new Date(2024, 0, 30, 23, 59, 0);
    const log = createAgentLogger(config, { now: () => now });
    log.logger.info('day one');
    await new Promise((r) => setTimeout(r, 20));
    for (const next of [new Date(2024, 0, 31, 0, 0, 1), new Date(2024, 1, 1, 9, 0, 0), new Date(2024, 1, 2, 9, 0, 0)]) {
      now = next;
      log.logger.info(`day ${dayStamp(next)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await log.close();
    const names = readdirSync(dir).sort();
    // Jan 30 was rotated out; Jan 31 and Feb 1 are kept; Feb 2 is the current file.
    expect(names).toEqual(['codedeploy-agent.20240131.log', 'codedeploy-agent.20240201.log', 'codedeploy-agent.log']);
    expect(lines(join(dir, 'codedeploy-agent.20240131.log'))[0]).toMatch(/day 20240131$/);
    expect(lines(join(dir, 'codedeploy-agent.log'))).toHaveLength(1);
    expect(lines(join(dir, 'codedeploy-agent.log'))[0]).toMatch(/^2024-02-02T09:00:00 INFO .*day 20240202$/);
    expect(rotatedFileName('codedeploy-agent.log', '20240131')).toBe('codedeploy-agent.20240131.log');
  });

  it('rotates a file left by an earlier run on the first line of a new day', async () => {
    const { dir, config } = setup();
    const log1 = createAgentLogger(config);
    log1.logger.info('yesterday');
    await log1.close();
    const tomorrow = new Date(Date.now() + 86_400_000);
    const log2 = createAgentLogger(config, { now: () => tomorrow });
    log2.logger.info('today');
    await log2.close();
    expect(lines(join(dir, rotatedFileName('codedeploy-agent.log', dayStamp(new Date()))))[0]).toMatch(/yesterday$/);
    expect(lines(join(dir, 'codedeploy-agent.log'))[0]).toMatch(/today$/);
  });

  it('reopen() follows an external logrotate; a deleted file is recreated', async () => {
    const { dir, config } = setup();
    const log = createAgentLogger(config);
    log.logger.info('before');
    await new Promise((r) => setTimeout(r, 20));
    renameSync(log.file, join(dir, 'moved.log'));
    log.logger.info('still to the moved file');
    await new Promise((r) => setTimeout(r, 20));
    log.reopen();
    log.logger.info('after reopen');
    await new Promise((r) => setTimeout(r, 20));
    unlinkSync(log.file);
    log.logger.info('after delete');
    await log.close();
    expect(lines(join(dir, 'moved.log')).map((l) => l.replace(/^.*: /, ''))).toEqual(['before', 'still to the moved file']);
    expect(lines(log.file).map((l) => l.replace(/^.*: /, ''))).toEqual(['after delete']);
    expect(existsSync(log.file)).toBe(true);
  });

  it('reopen(settings) applies a re-read verbose and log_format from the next line (SIGHUP)', async () => {
    const { config } = setup();
    const log = createAgentLogger(config);
    log.logger.debug('hidden');
    log.logger.info('text line');
    log.reopen({ verbose: true, log_format: 'json' });
    log.logger.debug('now shown');
    log.reopen({ verbose: false, log_format: 'text' });
    log.logger.debug('hidden again');
    log.logger.info('text again');
    await log.close();
    const got = lines(log.file);
    expect(got).toHaveLength(3);
    expect(got[0]).toMatch(/ INFO {2}\[codedeploy-agent\(\d+\)\]: text line$/);
    expect(JSON.parse(got[1])).toMatchObject({ level: 'debug', message: 'now shown' });
    expect(got[2]).toMatch(/ INFO {2}\[codedeploy-agent\(\d+\)\]: text again$/);
  });

  it('also writes to stderr with console, with journal priorities when stderr is the journal', async () => {
    const { config } = setup();
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const log = createAgentLogger(config, { console: true });
    log.logger.warn('to both');
    await log.close();
    expect(written.join('')).toMatch(/ WARN  \[codedeploy-agent\(\d+\)\]: to both\n$/);

    const { fstatSync } = await import('node:fs');
    const stat = fstatSync(2);
    vi.stubEnv('JOURNAL_STREAM', `${stat.dev}:${stat.ino}`);
    written.length = 0;
    const journal = createAgentLogger(config, { console: true });
    journal.logger.error('to the journal');
    journal.logger.info('plain');
    await journal.close();
    vi.unstubAllEnvs();
    expect(written).toEqual(['<3>ERROR to the journal\n', '<6>INFO  plain\n']);
  });

  it('never throws when the log folder cannot be created', async () => {
    const { dir, config } = setup();
    writeFileSync(join(dir, '..', 'blocker'), '');
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const log = createAgentLogger({ ...config, log_dir: join(dir, '..', 'blocker', 'log') });
    log.logger.info('nowhere to go');
    await log.close();
    expect(written.join('')).toContain('cannot write the log file');
  });
});
