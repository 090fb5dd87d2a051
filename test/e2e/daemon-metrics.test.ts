/**
 * Health and metrics end to end: the real daemon (`codedeploy-agent run`, the built bundle) with
 * `:metrics_listen:` deploys an S3 revision from moto handed out by the commands-service double; its
 * /metrics is scraped before and after, checked by `promtool check metrics` and parsed with a
 * Prometheus text parser, and the counters and histograms must have moved exactly as the deployment did.
 * /healthz and `status --json` must agree, healthy and then unhealthy (refused credentials, polls failing
 * past the threshold).
 */
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSpec } from '../doubles/commands-service.js';
import { motoMissingReason, startMoto, type MotoServer } from '../doubles/moto.js';
import { metricsAddressOf, waitForDeployment, type RunningAgent } from '../agent/harness.js';
import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
import { runCli } from '../helpers/cli.js';
import { PROMTOOL, histogram, parseScrape, promtoolCheck, valueOf, type PromMetrics } from '../helpers/prometheus.js';
import { agentEnv, makeRecordingBundle, motoAdmin, tgzOf } from './fixtures.js';

const HOST = 'arn:aws:iam::123456789012:user/onprem-metrics';
const BUCKET = 'e2e-metrics-bundles';

async function get(address: string, path: string): Promise<{ status: number; body: string; contentType: string }> {
  const response = await fetch(`http://${address}${path}`);
  return { status: response.status, body: await response.text(), contentType: response.headers.get('content-type') ?? '' };
}

async function scrape(address: string): Promise<PromMetrics> {
  const { status, body, contentType } = await get(address, '/metrics');
  expect(status).toBe(200);
  expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  if (PROMTOOL) {
    // Exit 1 is a format error; 3 lists naming problems. The only ones allowed are prom-client's own
    // Node.js gauges, whose names dashboards everywhere know (docs/decisions.md).
    const check = promtoolCheck(body);
    const problems = check.output.split('\n').filter((line) => line && !/^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(line));
    expect(problems, 'promtool check metrics').toEqual([]);
    expect([0, 3]).toContain(check.exitCode);
  }
  return parseScrape(body);
}

describe.skipIf(motoMissingReason !== undefined)('the daemon\'s health and metrics listener', () => {
  useDaemonWorld('metrics');
  let moto: MotoServer;
  let admin: S3Client;

  beforeAll(async () => {
    moto = await startMoto();
    admin = motoAdmin(moto.endpoint);
    await admin.send(new CreateBucketCommand({ Bucket: BUCKET }));
    // One host for the file; each test starts its agent with the configuration it needs.
    newWorld({}, { iamUser: { arn: HOST } });
  });

  afterAll(async () => {
    admin?.destroy();
    await moto?.stop();
  });

  async function startAgent(extra: Record<string, string | number | boolean> = {}): Promise<{ agent: RunningAgent; address: string }> {
    world.writeConfig(service.url, { metrics_listen: '127.0.0.1:0', s3_endpoint_override: moto.endpoint, ...extra });
    const agent = world.start({ env: agentEnv(world.dir) as Record<string, string> });
    let address: string;
    try {
      address = await metricsAddressOf(agent);
    } catch (error) {
      await agent.stop();
      throw error;
    }
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    return { agent, address };
  }

  async function statusJson(): Promise<Record<string, unknown>> {
    const result = await runCli(['status', '--json', '-c', world.configFile]);
    return JSON.parse(result.stdout) as Record<string, unknown>;
  }

  it('counts a real S3 deployment: polls, commands, events by outcome and code, durations, download bytes', async () => {
    const bundle = makeRecordingBundle(join(world.dir, 'bundle-ok'), { version: 'ok', destination: world.dest, recordFile: join(world.dir, 'records.txt') });
    const tgz = tgzOf(bundle, `${bundle}.tgz`);
    await admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'ok.tgz', Body: tgz }));
    const { agent, address } = await startAgent();
    try {
      await service.waitForRequests('PollHostCommand', 2, 15_000);
      const before = await scrape(address);
      expect(valueOf(before, 'codedeploy_agent_polls_total', { outcome: 'empty' })).toBeGreaterThan(0);
      expect(valueOf(before, 'codedeploy_agent_commands_total', { outcome: 'succeeded' })).toBe(0);
      expect(valueOf(before, 'codedeploy_agent_build_info', { version: '0.1.0' })).toBe(1);
      expect(valueOf(before, 'process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
      expect(valueOf(before, 'codedeploy_agent_healthy')).toBe(1);
      expect(valueOf(before, 'codedeploy_agent_last_successful_poll_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);

      const deployment = service.addDeployment({
        hostIdentifier: HOST,
        spec: makeSpec({ revision: { RevisionType: 'S3', S3Revision: { Bucket: BUCKET, Key: 'ok.tgz', BundleType: 'tgz' } } }),
      });
      await waitForDeployment(service, deployment, agent, 30_000);
      expect(deployment.status).toBe('Succeeded');
      const after = await scrape(address);
      const commands = deployment.commands.length;
      expect(valueOf(after, 'codedeploy_agent_commands_total', { outcome: 'succeeded' })).toBe(commands);
      expect(valueOf(after, 'codedeploy_agent_polls_total', { outcome: 'command' }) - valueOf(before, 'codedeploy_agent_polls_total', { outcome: 'command' })).toBe(commands);
      for (const { commandName } of deployment.commands) {
        expect(valueOf(after, 'codedeploy_agent_lifecycle_events_total', { event: commandName, outcome: 'succeeded', error_code: '0' }), commandName).toBe(1);
      }
      const durations = histogram(after, 'codedeploy_agent_lifecycle_event_duration_seconds', { event: 'DownloadBundle', outcome: 'succeeded' });
      expect(durations?.count).toBe(1);
      expect(durations?.sum).toBeGreaterThan(0);
      expect(durations?.buckets['+Inf']).toBe(1);
      expect(histogram(after, 'codedeploy_agent_lifecycle_event_duration_seconds', { event: 'Install', outcome: 'succeeded' })?.count).toBe(1);
      expect(valueOf(after, 'codedeploy_agent_download_bytes_total', { source: 'S3' })).toBe(tgz.length);
      expect(histogram(after, 'codedeploy_agent_download_duration_seconds', { source: 'S3', outcome: 'succeeded' })?.count).toBe(1);
      expect(valueOf(after, 'codedeploy_agent_commands_in_flight')).toBe(0);

      // A hook that fails: counted with its event and error code 4 (ScriptFailed).
      const broken = makeRecordingBundle(join(world.dir, 'bundle-broken'), { version: 'broken', destination: world.dest, recordFile: join(world.dir, 'records.txt') });
      const { appendFileSync } = await import('node:fs');
      appendFileSync(join(broken, 'scripts', 'record.sh'), '[ "$LIFECYCLE_EVENT" = AfterInstall ] && exit 3\nexit 0\n');
      await admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'broken.tgz', Body: tgzOf(broken, `${broken}.tgz`) }));
      const failing = service.addDeployment({
        hostIdentifier: HOST,
        spec: makeSpec({ fileExistsBehavior: 'OVERWRITE', revision: { RevisionType: 'S3', S3Revision: { Bucket: BUCKET, Key: 'broken.tgz', BundleType: 'tgz' } } }),
      });
      await waitForDeployment(service, failing, agent, 30_000);
      expect(failing.status).toBe('Failed');
      const failed = await scrape(address);
      expect(valueOf(failed, 'codedeploy_agent_lifecycle_events_total', { event: 'AfterInstall', outcome: 'failed', error_code: '4' })).toBe(1);
      expect(valueOf(failed, 'codedeploy_agent_commands_total', { outcome: 'failed' })).toBe(1);
      expect(histogram(failed, 'codedeploy_agent_lifecycle_event_duration_seconds', { event: 'AfterInstall', outcome: 'failed' })?.count).toBe(1);

      // Healthy, and status --json says the same.
      const health = await get(address, '/healthz');
      expect(health.status).toBe(200);
      expect(health.body).toMatch(/^ok: polling; last successful poll \d+s ago\n$/);
      const report = await statusJson();
      expect(report.health).toMatchObject({ healthy: true });
      expect((report.health as { reason: string }).reason).toMatch(/^polling; last successful poll \d+s ago$/);
      expect((await get(address, '/nothing')).status).toBe(404);
    } finally {
      expect((await agent.stop()).exitCode).toBe(0);
    }
  });

  it('answers 503 with the reason when the credentials are refused or polls fail past the threshold; status --json agrees', async () => {
    const { agent, address } = await startAgent({ health_poll_failure_seconds: 2 });
    try {
      await service.waitForRequests('PollHostCommand', 1, 15_000);
      expect((await get(address, '/healthz')).status).toBe(200);

      // The service no longer knows the host's keys: unhealthy at once.
      const known = service.credentials;
      service.credentials = [{ accessKeyId: 'AKIAOTHERHOST0000001', secretAccessKey: 'otherSecret/0123456789abcdefghijklmnop' }];
      try {
        await expect.poll(async () => (await get(address, '/healthz')).status, { timeout: 15_000 }).toBe(503);
        const refused = await get(address, '/healthz');
        expect(refused.body).toMatch(/^unhealthy: the commands service refused this host's credentials: PollHostCommand: \w+ \(HTTP 4\d\d\)/);
        const report = await statusJson();
        expect(report.health).toEqual({ healthy: false, reason: refused.body.replace(/^unhealthy: /, '').trim() });
        expect(valueOf(await scrape(address), 'codedeploy_agent_polls_total', { outcome: 'credentials_refused' })).toBeGreaterThan(0);
      } finally {
        service.credentials = known;
      }
      await expect.poll(async () => (await get(address, '/healthz')).status, { timeout: 15_000 }).toBe(200);

      // Throttled and failing polls: healthy for 2 s, then 503 with the last error.
      service.injectFault('PollHostCommand', 'server-error', 1000);
      try {
        await expect.poll(async () => (await get(address, '/healthz')).body, { timeout: 20_000 }).toMatch(/^unhealthy: polls have failed for \d+s \(more than 2s\): PollHostCommand: /);
        const body = (await get(address, '/healthz')).body;
        const report = await statusJson();
        expect((report.health as { healthy: boolean }).healthy).toBe(false);
        expect((report.health as { reason: string }).reason).toMatch(/^polls have failed for \d+s \(more than 2s\): PollHostCommand: /);
        expect(body).toContain('PollHostCommand: ');
        const families = await scrape(address);
        expect(valueOf(families, 'codedeploy_agent_polls_total', { outcome: 'error' })).toBeGreaterThan(0);
        expect(valueOf(families, 'codedeploy_agent_healthy')).toBe(0);
      } finally {
        service.clearFaults();
      }
      service.injectFault('PollHostCommand', 'throttle', 1);
      await expect.poll(async () => valueOf(await scrape(address), 'codedeploy_agent_throttled_total'), { timeout: 15_000 }).toBe(1);
      await expect.poll(async () => (await get(address, '/healthz')).status, { timeout: 15_000 }).toBe(200);
    } finally {
      expect((await agent.stop()).exitCode).toBe(0);
    }
  });
});
