import { describe, expect, it } from 'vitest';
import { judgeHealth } from '../../src/agent/health.js';
import { formatListenAddress, parseListenAddress } from '../../src/config/listen-address.js';
import { parseAgentConfig } from '../../src/config/agent-config.js';

const now = new Date('2025-05-01T12:00:00Z');
const ago = (seconds: number) => new Date(now.getTime() - seconds * 1000).toISOString();

describe('judgeHealth (the one judgement behind /healthz and status --json)', () => {
  it('is healthy while starting and while polls succeed', () => {
    expect(judgeHealth({ state: 'starting' }, 300, now)).toEqual({ healthy: true, reason: 'starting: no poll has finished yet' });
    expect(judgeHealth({ state: 'polling', lastSuccessfulPollAt: ago(12) }, 300, now)).toEqual({ healthy: true, reason: 'polling; last successful poll 12s ago' });
  });

  it('stays healthy through failures shorter than the threshold, and says so', () => {
    const verdict = judgeHealth({ state: 'polling', pollFailingSince: ago(40), lastError: { at: ago(1), message: 'PollHostCommand: network error:\nECONNREFUSED' } }, 300, now);
    expect(verdict).toEqual({ healthy: true, reason: 'polls failing for 40s (unhealthy after 5m 00s): PollHostCommand: network error: ECONNREFUSED' });
  });

  it('is unhealthy once polls have failed for longer than the threshold', () => {
    const verdict = judgeHealth({ state: 'polling', lastSuccessfulPollAt: ago(400), pollFailingSince: ago(301), lastError: { at: ago(2), message: 'Throttled' } }, 300, now);
    expect(verdict).toEqual({ healthy: false, reason: 'polls have failed for 5m 01s (more than 5m 00s): Throttled' });
  });

  it('is unhealthy at once when the service refuses the credentials, and while stopping', () => {
    const refused = { at: ago(1), message: 'PollHostCommand: UnrecognizedClientException (HTTP 400): The security token included in the request is invalid.' };
    expect(judgeHealth({ state: 'polling', pollFailingSince: ago(1), lastError: refused, credentialsRefused: refused }, 300, now)).toEqual({
      healthy: false,
      reason: "the commands service refused this host's credentials: PollHostCommand: UnrecognizedClientException (HTTP 400): The security token included in the request is invalid.",
    });
    expect(judgeHealth({ state: 'stopping', lastSuccessfulPollAt: ago(1) }, 300, now)).toEqual({ healthy: false, reason: 'the agent is stopping' });
  });
});

describe(':metrics_listen:', () => {
  it('a bare port is loopback; other interfaces must be written out', () => {
    expect(parseListenAddress('9126')).toEqual({ host: '127.0.0.1', port: 9126 });
    expect(parseListenAddress('localhost:9126')).toEqual({ host: '127.0.0.1', port: 9126 });
    expect(parseListenAddress('0.0.0.0:9126')).toEqual({ host: '0.0.0.0', port: 9126 });
    expect(parseListenAddress('[::1]:9126')).toEqual({ host: '::1', port: 9126 });
    expect(formatListenAddress({ host: '::1', port: 9126 })).toBe('[::1]:9126');
    for (const bad of ['', 'metrics.example.com:9126', '127.0.0.1', '127.0.0.1:99999', ':9126', '::1:9126']) {
      expect(parseListenAddress(bad), bad).toHaveProperty('problem');
    }
  });

  it('is off by default and checked when the config is read', () => {
    const { config } = parseAgentConfig('', 'f.yml');
    expect(config.metrics_listen).toBeUndefined();
    expect(config.health_poll_failure_seconds).toBe(300);
    expect(config.operator_hooks_dir).toBe('/etc/codedeploy-agent/hooks.d');
    expect(config.operator_hook_timeout_seconds).toBe(300);
    expect(parseAgentConfig(':metrics_listen: 9126\n', 'f.yml').config.metrics_listen).toBe('9126');
    expect(parseAgentConfig(':metrics_listen:\n', 'f.yml').config.metrics_listen).toBeUndefined();
    expect(() => parseAgentConfig(':metrics_listen: example.com:80\n', 'f.yml')).toThrow(
      'f.yml: key metrics_listen has the value "example.com:80", which is not a port (9126, loopback only) or an IP address and port (127.0.0.1:9126, [::1]:9126, 0.0.0.0:9126)',
    );
    expect(() => parseAgentConfig(':health_poll_failure_seconds: 0\n', 'f.yml')).toThrow('which is not a number above 0');
  });
});
