/**
 * The poll loop's timing (agent-spec §1.7), with fake timers: start-up splay, the error backoff (the
 * anchor's 10 → 90 s table, equal jitter, capped), the throttle gate and the wait when idle.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defaultConfig, type AgentConfig } from '../../src/config/agent-config.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { Poller, type PollApi } from '../../src/agent/poller.js';
import { ServiceError } from '../../src/report/errors.js';
import { isThrottlingError } from '../../src/service/service-errors.js';
import type { HostCommand } from '../../src/agent/command-runner.js';

const HOST = 'arn:aws:iam::123456789012:user/poller';

function config(overrides: Partial<AgentConfig> = {}): AgentConfig {
  return { ...defaultConfig(), startup_splay_seconds: 0, wait_between_runs: 1, ...overrides };
}

/** A scripted service: each poll takes the next answer (an error to throw, or a command / nothing). */
function scriptedApi(answers: (Error | HostCommand | undefined)[]): PollApi & { at: number[] } {
  const at: number[] = [];
  return {
    at,
    async pollHostCommand() {
      at.push(Date.now());
      const answer = answers.shift();
      if (answer instanceof Error) throw answer;
      return { HostCommand: answer ?? null };
    },
  };
}

async function runFor(poller: Poller, ms: number): Promise<void> {
  const stop = new AbortController();
  const done = poller.run(stop.signal);
  await vi.advanceTimersByTimeAsync(ms);
  stop.abort();
  await done;
}

function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]);
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Poller timing', () => {
  it('backs off after consecutive errors along the anchor table, with equal jitter, up to the cap', async () => {
    const serverError = () => new ServiceError('ServerException', 500, 'PollHostCommand: ServerException (HTTP 500)', '');
    const api = scriptedApi(Array.from({ length: 13 }, serverError));
    const poller = new Poller({ config: config(), logger: new MemoryLogger(), api, hostIdentifier: HOST, dispatch: async () => {}, random: () => 1 - 1e-9 });
    await runFor(poller, 1_000_000);
    // random ≈ 1 → the full ceiling: the anchor's table 10, 13, 17, 21, 27, 34, 44, 56, 71, 90 (s), then 90.
    const seconds = gaps(api.at).slice(0, 12).map((ms) => Math.round(ms / 1000));
    expect(seconds).toEqual([10, 13, 17, 21, 27, 34, 44, 56, 71, 90, 90, 90]);
  });

  it('jitters each wait between half and all of the ceiling', async () => {
    const api = scriptedApi([new ServiceError('ServerException', 500, 'x', ''), new ServiceError('ServerException', 500, 'x', '')]);
    const poller = new Poller({ config: config(), logger: new MemoryLogger(), api, hostIdentifier: HOST, dispatch: async () => {}, random: () => 0 });
    await runFor(poller, 30_000);
    expect(gaps(api.at).slice(0, 2).map((ms) => Math.round(ms / 100) / 10)).toEqual([5, 6.5]);
  });

  it('scales the table with max_poll_backoff_seconds', async () => {
    const api = scriptedApi(Array.from({ length: 12 }, () => new ServiceError('ServerException', 500, 'x', '')));
    const poller = new Poller({ config: config({ max_poll_backoff_seconds: 9 }), logger: new MemoryLogger(), api, hostIdentifier: HOST, dispatch: async () => {}, random: () => 1 - 1e-9 });
    await runFor(poller, 200_000);
    expect(Math.max(...gaps(api.at).slice(0, 11))).toBeLessThanOrEqual(9_000);
    expect(Math.round(gaps(api.at)[10] / 1000)).toBe(9);
  });

  it('holds every poll behind the throttle gate after a throttling error', async () => {
    const throttled = new ServiceError('ThrottlingException', 400, 'PollHostCommand: ThrottlingException (HTTP 400): Rate exceeded', '');
    const api = scriptedApi([throttled, undefined, undefined]);
    const poller = new Poller({
      config: config({ wait_after_throttle_error: 60, wait_between_runs: 1 }),
      logger: new MemoryLogger(),
      api,
      hostIdentifier: HOST,
      dispatch: async () => {},
      isThrottling: isThrottlingError,
      random: () => 0.5,
    });
    await runFor(poller, 50_000);
    // 60 s × (0.5 + 0.5 × 0.5) = 45 s, then the idle wait of 1 s.
    expect(gaps(api.at).slice(0, 2)).toEqual([45_000, 1_000]);
  });

  it('names where the credentials come from when the service refuses them, and only then', async () => {
    const refused = new ServiceError('UnrecognizedClientException', 403, 'PollHostCommand: UnrecognizedClientException (HTTP 403): The security token included in the request is invalid.', '');
    const api = scriptedApi([refused, new ServiceError('ServerException', 500, 'PollHostCommand: ServerException (HTTP 500)', '')]);
    const logger = new MemoryLogger();
    const poller = new Poller({ config: config(), logger, api, hostIdentifier: HOST, dispatch: async () => {}, authHint: 'check the IAM user keys in /etc/op.yml', random: () => 0 });
    await runFor(poller, 10_000);
    expect(logger.text()).toContain('Cannot reach InstanceService: PollHostCommand: UnrecognizedClientException (HTTP 403): The security token included in the request is invalid. (check the IAM user keys in /etc/op.yml); retrying in');
    expect(logger.text()).toMatch(/Cannot reach InstanceService: PollHostCommand: ServerException \(HTTP 500\); retrying in/);
  });

  it('waits a random splay before the first poll', async () => {
    const api = scriptedApi([]);
    const poller = new Poller({ config: config({ startup_splay_seconds: 3 }), logger: new MemoryLogger(), api, hostIdentifier: HOST, dispatch: async () => {}, random: () => 0.5 });
    const started = Date.now();
    await runFor(poller, 1_600);
    expect(api.at.map((t) => t - started)).toEqual([1_500]);
  });
});
