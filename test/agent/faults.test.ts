/**
 * Service faults on each of the five operations — 5xx, throttling, a hang until the read timeout, a
 * connection reset — and answers lost after the service acted: the deployment still completes and each
 * command is completed exactly once.
 *
 * How duplicates are counted: a fault the double injects happens before it looks at the request, so the
 * service never saw it and exactly one completion must be recorded per command. When the proxy drops the
 * answer to a PutHostCommandComplete the service did record, the agent cannot know that and sends the same
 * completion again (it is kept on disk until an answer arrives); the test then accepts exactly that many
 * repeats, each identical in status and diagnostics — never a second, different result.
 */
import { describe, expect, it } from 'vitest';
import { makeSpec, OPERATIONS, type Fault, type Operation } from '../doubles/commands-service.js';
import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
import { expectAllRequestsAuthenticated, expectCompletedOnce, localRevision, waitForDeployment } from './harness.js';
import { ServiceProxy } from './service-proxy.js';

const COMMANDS = ['ApplicationStop', 'DownloadBundle', 'BeforeInstall', 'Install', 'AfterInstall'];
const FAULTS = ['server-error', 'throttle', 'hang', 'reset'] as const satisfies readonly Fault[];


useDaemonWorld('faults', { config: { http_read_timeout: 1 } });

describe.each(OPERATIONS)('faults on %s', (operation: Operation) => {
  it('the deployments still complete, each command exactly once', async () => {
    newWorld();
    const bundle = world.makeBundle({ label: operation, hooks: { BeforeInstall: {}, AfterInstall: {} } });
    const agent = world.start();
    for (const fault of FAULTS) {
      const faultsBefore = service.requests.filter((r) => r.operation === operation && r.fault === fault).length;
      service.injectFault(operation, fault, 1);
      const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: COMMANDS });
      await waitForDeployment(service, deployment, agent);
      expect(deployment.status, `${fault}: ${agent.log}`).toBe('Succeeded');
      expectCompletedOnce(deployment);
      if (operation !== 'PostHostCommandUpdate') {
        // The fault was met (the agent never calls PostHostCommandUpdate, as the anchor never does).
        expect(service.requests.filter((r) => r.operation === operation && r.fault === fault).length, fault).toBe(faultsBefore + 1);
      }
      service.clearFaults();
    }
    expect(world.hookLines()).toHaveLength(FAULTS.length * 2);
    expect((await agent.stop()).exitCode).toBe(0);
    expectAllRequestsAuthenticated(service);
  });
});

describe('completions', () => {
  it('keeps retrying a completion through a long outage, then delivers it once', async () => {
    newWorld();
    const bundle = world.makeBundle({ label: 'outage', hooks: {} });
    const agent = world.start();
    // More failures than the client's own four tries: the outbox's backoff takes over.
    service.injectFault('PutHostCommandComplete', 'server-error', 6);
    const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['DownloadBundle', 'Install'] });
    await waitForDeployment(service, deployment, agent);
    expect(deployment.status).toBe('Succeeded');
    expectCompletedOnce(deployment);
    const ids = new Set(deployment.commands.map((c) => c.hostCommandIdentifier));
    const faulted = service.requestsFor('PutHostCommandComplete').filter((r) => r.fault && ids.has((r.body as { HostCommandIdentifier: string }).HostCommandIdentifier));
    expect(faulted).toHaveLength(6);
    expect(agent.log).toMatch(/PutHostCommandComplete for .* failed .*retrying in/);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('sends the same completion again when its answer was lost, and the same acknowledgement', async () => {
    const proxy = await ServiceProxy.start(service.url);
    try {
      newWorld({}, { endpoint: proxy.url });
      const bundle = world.makeBundle({ label: 'lost', hooks: { BeforeInstall: {} } });
      const agent = world.start();
      proxy.dropAnswers('PutHostCommandComplete', 2);
      proxy.dropAnswers('PutHostCommandAcknowledgement', 1);
      proxy.dropAnswers('GetDeploymentSpecification', 1);
      const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['DownloadBundle', 'BeforeInstall', 'Install'] });
      await waitForDeployment(service, deployment, agent);
      expect(deployment.status).toBe('Succeeded');
      expect(proxy.dropped.get('PutHostCommandComplete')).toBe(2);
      expectCompletedOnce(deployment, { lostAnswers: 2 });
      // The command whose acknowledgement answer was lost was acknowledged twice with the same payload, run once.
      const acks = deployment.commands.flatMap((c) => c.acks);
      expect(acks).toHaveLength(4);
      expect(world.hookLines()).toEqual([`BeforeInstall lost ${deployment.deploymentId}`]);
      expect((await agent.stop()).exitCode).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('does not run a command again when the service delivers it a second time while it runs', async () => {
    const proxy = await ServiceProxy.start(service.url);
    try {
      newWorld({}, { endpoint: proxy.url });
      const gate = `${world.dir}/gate`;
      const bundle = world.makeBundle({ label: 'redelivered', hooks: { BeforeInstall: { body: `while [ ! -e '${gate}' ]; do sleep 0.05; done` } } });
      let running: Record<string, unknown> | undefined;
      let replays = 0;
      proxy.rewriteAnswers('PollHostCommand', (body) => {
        const command = body.HostCommand as Record<string, unknown> | undefined;
        if (command) {
          running = command;
          return body;
        }
        // Hand the command that is running out again, twice.
        if (running?.CommandName === 'BeforeInstall' && replays < 2) {
          replays += 1;
          return { HostCommand: running };
        }
        return body;
      });
      const agent = world.start();
      const deployment = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['DownloadBundle', 'BeforeInstall'] });
      await agent.waitForLog('is already running; ignoring the re-delivery');
      const { writeFileSync } = await import('node:fs');
      writeFileSync(gate, '');
      await waitForDeployment(service, deployment, agent);
      expect(deployment.status).toBe('Succeeded');
      expectCompletedOnce(deployment);
      expect(deployment.commands[1].acks).toHaveLength(1);
      expect(world.hookLines()).toEqual([`BeforeInstall redelivered ${deployment.deploymentId}`]);
      expect((await agent.stop()).exitCode).toBe(0);
    } finally {
      await proxy.close();
    }
  });
});
