/**
 * Issue 4: an idle agent is light. `codedeploy-agent run` (the built bundle) long-polls the commands-service
 * double with the shipped wait_between_runs; after start-up its resident memory stays at or below 60 MiB
 * (AWS's Ruby agent idles at 73 MiB) and it uses next to no CPU between polls. What keeps it small: main
 * loads only the subcommand it runs, and S3, GitHub, archives, PKCS7 and the engine sit in chunks loaded
 * when a command needs them (test/ops/packaging.test.ts checks the bundle's shape).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { newWorld, service, useDaemonWorld } from '../helpers/daemon-world.js';
import { metricsAddressOf } from './harness.js';

const MiB = 1024 * 1024;

function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** User + system CPU time of a process, ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

// Long polls held for 2 s, as the real service holds them for up to a minute.
useDaemonWorld('idle', { longPollMs: 2000 });

describe('idle agent', () => {
  it('stays at or below 60 MiB resident and near zero CPU while long-polling', async () => {
    const world = newWorld({ wait_between_runs: 1, verbose: false, http_read_timeout: 80 });
    const agent = world.start();
    await agent.waitForLog('Host identifier', 15_000);
    await expect.poll(() => service.requestsFor('PollHostCommand').length, { timeout: 10_000 }).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 1500));

    const cpuBefore = cpuMs(agent.pid);
    const windowMs = 6000;
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const cpuUsed = cpuMs(agent.pid) - cpuBefore;
    const { rss, hwm } = memory(agent.pid);
    const polls = service.requestsFor('PollHostCommand').length;
    console.info(`idle agent: RSS ${(rss / MiB).toFixed(1)} MiB (peak ${(hwm / MiB).toFixed(1)} MiB), CPU ${cpuUsed} ms in ${windowMs} ms, ${polls} polls`);

    expect(rss, `RSS ${(rss / MiB).toFixed(1)} MiB`).toBeLessThanOrEqual(60 * MiB);
    // Two or three long polls in the window; each costs a few ms of signing and parsing.
    expect(cpuUsed, `CPU ${cpuUsed} ms in ${windowMs} ms`).toBeLessThan(windowMs * 0.05);
    expect(polls).toBeGreaterThan(1);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('with metrics on (prom-client and the listener loaded, scraped every second) stays at or below 70 MiB', async () => {
    const world = newWorld({ wait_between_runs: 1, verbose: false, http_read_timeout: 80, metrics_listen: '127.0.0.1:0' });
    const agent = world.start();
    const address = await metricsAddressOf(agent);
    const polls = service.requestsFor('PollHostCommand').length;
    await expect.poll(() => service.requestsFor('PollHostCommand').length, { timeout: 10_000 }).toBeGreaterThan(polls);
    for (let i = 0; i < 8; i++) {
      expect((await fetch(`http://${address}/metrics`)).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const { rss, hwm } = memory(agent.pid);
    console.info(`idle agent with metrics: RSS ${(rss / MiB).toFixed(1)} MiB (peak ${(hwm / MiB).toFixed(1)} MiB)`);
    expect(rss, `RSS ${(rss / MiB).toFixed(1)} MiB`).toBeLessThanOrEqual(70 * MiB);
    expect((await agent.stop()).exitCode).toBe(0);
  });
});
