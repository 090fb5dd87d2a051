/**
 * The daemon runs deployments from the commands-service double, which checks every request's SigV4
 * signature: a full in-place deployment, a redeployment, what the acknowledgement answers, and the
 * commands and specifications it must refuse.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeSpec } from '../doubles/commands-service.js';
import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
import {
  expectAllRequestsAuthenticated,
  expectCompletedOnce,
  localRevision,
  payloadOf,
  waitForDeployment,
} from './harness.js';
import { ServiceProxy } from './service-proxy.js';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

/** A well-formed PKCS7 SignedData carrying `json` but no signer at all. */
function unsignedEnvelope(json: string): { Format: string; Payload: string } {
  const signedData = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({
      eContentType: '1.2.840.113549.1.7.1',
      eContent: new asn1js.OctetString({ valueHex: new TextEncoder().encode(json) }),
    }),
    signerInfos: [],
  });
  const contentInfo = new pkijs.ContentInfo({ contentType: '1.2.840.113549.1.7.2', content: signedData.toSchema(true) });
  return { Format: 'PKCS7/JSON', Payload: Buffer.from(contentInfo.toSchema().toBER()).toString('base64') };
}


useDaemonWorld('deployment');


describe('deployments', () => {
  it('runs a full in-place deployment and a redeployment (ApplicationStop from the first revision, cleanup)', async () => {
    newWorld();
    const first = world.makeBundle({ label: 'rev1', files: { 'index.html': 'one\n', 'only-in-one.txt': 'old\n' } });
    const second = world.makeBundle({ label: 'rev2', files: { 'index.html': 'two\n' } });
    const agent = world.start();

    const d1 = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(first) }) });
    await waitForDeployment(service, d1, agent);
    expect(d1.status).toBe('Succeeded');
    expectCompletedOnce(d1);
    expect(readFileSync(join(world.dest, 'index.html'), 'utf8')).toBe('one\n');
    expect(readFileSync(join(world.dest, 'only-in-one.txt'), 'utf8')).toBe('old\n');
    // No previous revision: ApplicationStop is a no-op (acknowledged as such, nothing run).
    const stopAck = d1.commands.find((c) => c.commandName === 'ApplicationStop')!.acks[0];
    expect(stopAck.payload).toEqual({ IsCommandNoop: true });
    expect(d1.commands.find((c) => c.commandName === 'DownloadBundle')!.acks[0].payload).toEqual({ IsCommandNoop: false });
    expect(world.hookLines()).toEqual(['BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService'].map((e) => `${e} rev1 ${d1.deploymentId}`));
    for (const command of d1.commands) {
      expect(command.acks).toHaveLength(1);
      expect(command.completions[0].commandStatus).toBe('Succeeded');
      expect(payloadOf(command.completions[0])).toMatchObject({ error_code: 0, script_name: '', message: 'Succeeded: ' });
    }

    const d2 = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(second) }) });
    await waitForDeployment(service, d2, agent);
    expect(d2.status, JSON.stringify(d2.commands.map((c) => [c.commandName, c.completions.map((x) => x.payload)]))).toBe('Succeeded');
    expectCompletedOnce(d2);
    expect(d2.commands.find((c) => c.commandName === 'ApplicationStop')!.acks[0].payload).toEqual({ IsCommandNoop: false });
    expect(world.hookLines().slice(4)).toEqual([
      `ApplicationStop rev1 ${d2.deploymentId}`,
      ...['BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService'].map((e) => `${e} rev2 ${d2.deploymentId}`),
    ]);
    expect(readFileSync(join(world.dest, 'index.html'), 'utf8')).toBe('two\n');
    expect(existsSync(join(world.dest, 'only-in-one.txt'))).toBe(false);

    const exit = await agent.stop();
    expect(exit.exitCode, agent.log).toBe(0);
    expectAllRequestsAuthenticated(service);
    // Logging: the agent log and the deployments log (enable_deployments_log defaults to true).
    expect(world.agentLog()).toContain(`Host identifier ${world.hostIdentifier}`);
    // One "end of lifecycle event" line per command, for log processors (#270).
    for (const deployment of [d1, d2]) {
      for (const command of deployment.commands) {
        const ends = world.agentLog().split('\n').filter((line) => line.includes(`]: ${command.commandName} of ${deployment.deploymentId}: end of lifecycle event`));
        expect(ends, command.commandName).toHaveLength(1);
        expect(ends[0]).toMatch(/ INFO  \[codedeploy-agent\(\d+\)\]: .*end of lifecycle event, Succeeded in (\d+ms|\d+(\.\d)?s)$/);
      }
    }
    const deploymentsLog = readFileSync(join(world.root, 'deployment-logs', 'codedeploy-agent-deployments.log'), 'utf8');
    expect(deploymentsLog).toContain(`[${d2.deploymentId}]LifecycleEvent - ApplicationStop`);
    expect(deploymentsLog).toContain(`[${d2.deploymentId}]Script - scripts/ApplicationStop.sh`);
  });

  it('writes no deployments log when enable_deployments_log is false', async () => {
    newWorld({ enable_deployments_log: false });
    const bundle = world.makeBundle({ label: 'quiet' });
    const agent = world.start();
    const d = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }) });
    await waitForDeployment(service, d, agent);
    expect(d.status).toBe('Succeeded');
    await agent.stop();
    expect(existsSync(join(world.root, 'deployment-logs'))).toBe(false);
    expect(readFileSync(join(world.root, d.spec.DeploymentGroupId as string, d.deploymentId, 'logs', 'scripts.log'), 'utf8')).toContain('LifecycleEvent - BeforeInstall');
  });

  it('runs nothing and completes nothing when the acknowledgement answers Succeeded', async () => {
    newWorld();
    const bundle = world.makeBundle({ label: 'acked' });
    const agent = world.start();
    // (Lifecycle hooks of the new revision are left out: with DownloadBundle not run, their no-op check
    // finds no appspec and fails before the acknowledgement, as the anchor's does.)
    const d = service.addDeployment({
      hostIdentifier: world.hostIdentifier,
      spec: makeSpec({ revision: localRevision(bundle) }),
      commands: ['ApplicationStop', 'DownloadBundle', 'Install'],
      ackStatus: 'Succeeded',
    });
    await waitForDeployment(service, d, agent);
    await new Promise((resolve) => setTimeout(resolve, 300)); // room for a wrong completion to arrive
    expect(d.commands.map((c) => [c.commandName, c.acks.length, c.completions.length])).toEqual(d.commands.map((c) => [c.commandName, 1, 0]));
    expect(world.hookLines()).toEqual([]);
    expect(existsSync(join(world.dest, 'index.html'))).toBe(false);
    expect(existsSync(join(world.root, d.spec.DeploymentGroupId as string, d.deploymentId, 'deployment-archive'))).toBe(false);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('completes a no-op as CompletedNoopCommand and leaves anything else alone when the acknowledgement answers Failed', async () => {
    newWorld();
    service.stopOnFailure = false;
    const bundle = world.makeBundle({ label: 'refused' });
    const agent = world.start();
    const d = service.addDeployment({
      hostIdentifier: world.hostIdentifier,
      spec: makeSpec({ revision: localRevision(bundle) }),
      commands: ['ApplicationStop', 'DownloadBundle'],
      ackStatus: 'Failed',
    });
    await waitForDeployment(service, d, agent);
    await service.waitFor(() => d.commands[0].completions.length > 0, 5_000, 'the no-op completion');
    const [stop, download] = d.commands;
    expect(stop.acks[0].payload).toEqual({ IsCommandNoop: true });
    expect(stop.completions.map((c) => [c.commandStatus, payloadOf(c)])).toEqual([
      ['Succeeded', { error_code: 0, script_name: '', message: 'Succeeded: CompletedNoopCommand', log: '' }],
    ]);
    expect(download.acks[0].payload).toEqual({ IsCommandNoop: false });
    // Give a wrong completion time to arrive before asserting there is none.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(download.completions).toEqual([]);
    expect(existsSync(join(world.root, d.spec.DeploymentGroupId as string, d.deploymentId, 'deployment-archive'))).toBe(false);
    // §1.5: the specification is fetched again before deciding.
    const specRequests = service.requestsFor('GetDeploymentSpecification').filter((r) => (r.body as { DeploymentExecutionId?: string }).DeploymentExecutionId === d.executionId);
    expect(specRequests).toHaveLength(4);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('acknowledges an unknown command as a no-op and completes it Failed with Unsupported command type', async () => {
    newWorld();
    const bundle = world.makeBundle({ label: 'unknown' });
    const agent = world.start();
    const d = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['AllowTraffic'] });
    await waitForDeployment(service, d, agent);
    expectCompletedOnce(d);
    const [command] = d.commands;
    expect(command.acks.map((a) => a.payload)).toEqual([{ IsCommandNoop: true }]);
    expect(command.completions[0].commandStatus).toBe('Failed');
    expect(payloadOf(command.completions[0])).toMatchObject({ error_code: 5, message: 'Unsupported command type: AllowTraffic.' });
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('neither acknowledges nor runs a command for another host identifier (exact match, not a substring)', async () => {
    const proxy = await ServiceProxy.start(service.url);
    try {
      newWorld({}, { endpoint: proxy.url });
      const bundle = world.makeBundle({ label: 'stranger' });
      // The anchor's substring test would accept this identifier for ours (§10.24).
      const other = world.hostIdentifier.slice(0, -2);
      proxy.rewriteAnswers('PollHostCommand', (body) => {
        const command = body.HostCommand as Record<string, unknown> | undefined;
        return command ? { HostCommand: { ...command, HostIdentifier: other } } : body;
      });
      const agent = world.start();
      const d = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }) });
      await agent.waitForLog(`ERROR [codedeploy-agent(${agent.pid})]: Error during perform: Host Identifier mismatch: ${world.hostIdentifier} != ${other}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(d.commands[0].status).toBe('Dispatched');
      expect(service.acks.filter((a) => a.deploymentId === d.deploymentId)).toEqual([]);
      expect(service.completions.filter((c) => c.deploymentId === d.deploymentId)).toEqual([]);
      expect(service.requestsFor('GetDeploymentSpecification').filter((r) => (r.body as { DeploymentExecutionId?: string }).DeploymentExecutionId === d.executionId)).toEqual([]);
      expect((await agent.stop()).exitCode).toBe(0);
      expect(world.agentLog()).toContain('Host Identifier mismatch');
      d.status = 'Failed'; // retire it so no later test's poll is answered with it
    } finally {
      await proxy.close();
    }
  });
});

describe('deployment specifications', () => {
  it('accepts a tampered PKCS7 specification with a warning by default', async () => {
    newWorld();
    const bundle = world.makeBundle({ label: 'tampered' });
    const agent = world.start();
    const d = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), specFormat: 'tampered' });
    await waitForDeployment(service, d, agent);
    expect(d.status).toBe('Succeeded');
    expectCompletedOnce(d);
    expect(agent.log).toMatch(/WARN .*signature that does not verify.*accepted because enforce_deployment_spec_signature is false/);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('refuses a tampered PKCS7 specification when enforce_deployment_spec_signature is true', async () => {
    newWorld({ enforce_deployment_spec_signature: true });
    const bundle = world.makeBundle({ label: 'enforced' });
    const agent = world.start();
    const d = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), specFormat: 'tampered' });
    await waitForDeployment(service, d, agent);
    expect(d.status).toBe('Failed');
    expectCompletedOnce(d);
    const [first] = d.commands;
    expect(first.acks).toEqual([]);
    expect(first.completions[0].commandStatus).toBe('Failed');
    expect(payloadOf(first.completions[0]).error_code).toBe(5);
    expect(payloadOf(first.completions[0]).message).toMatch(/signature that does not verify.*refused because enforce_deployment_spec_signature is true/);
    expect(world.hookLines()).toEqual([]);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('verifies a correctly signed specification', async () => {
    newWorld({ enforce_deployment_spec_signature: true });
    const bundle = world.makeBundle({ label: 'signed' });
    const agent = world.start();
    const d = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['DownloadBundle'] });
    await waitForDeployment(service, d, agent);
    expect(d.status).toBe('Succeeded');
    expect(agent.log).toContain('Deployment specification signature: valid (signer /C=US/ST=Washington/L=Seattle/O=Amazon.com, Inc./CN=codedeploy-signer-us-east-1.amazonaws.com)');
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('refuses a TEXT/JSON specification in the daemon', async () => {
    newWorld();
    const bundle = world.makeBundle({ label: 'text' });
    const agent = world.start();
    const d = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), specFormat: 'TEXT/JSON' });
    await waitForDeployment(service, d, agent);
    expect(d.status).toBe('Failed');
    expectCompletedOnce(d);
    expect(d.commands[0].acks).toEqual([]);
    expect(payloadOf(d.commands[0].completions[0])).toMatchObject({ error_code: 5, message: 'Unsupported DeploymentSpecification format: TEXT/JSON' });
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('refuses another deployment system and a missing specification before acknowledging (§1.5 step 1)', async () => {
    newWorld();
    const bundle = world.makeBundle({ label: 'system' });
    const agent = world.start();
    const other = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['DownloadBundle'], deploymentSystem: 'Apollo' });
    await waitForDeployment(service, other, agent);
    const missing = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: localRevision(bundle) }), commands: ['DownloadBundle'], omitSpecification: true });
    await waitForDeployment(service, missing, agent);
    for (const [d, message] of [[other, 'Deployment System mismatch: CodeDeploy != Apollo'], [missing, 'Deployment Specification missing']] as const) {
      expect(d.status).toBe('Failed');
      expectCompletedOnce(d);
      expect(d.commands[0].acks).toEqual([]);
      expect(payloadOf(d.commands[0].completions[0])).toEqual({ error_code: 5, script_name: '', message, log: '' });
    }
    expect(world.hookLines()).toEqual([]);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('accepts a PKCS7 SignedData without signers with a warning by default, and refuses it when enforcing', async () => {
    newWorld();
    const bundle = world.makeBundle({ label: 'unsigned' });
    const spec = makeSpec({ revision: localRevision(bundle) });
    let agent = world.start();
    const lenient = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec, commands: ['DownloadBundle'], envelope: unsignedEnvelope(JSON.stringify(spec)) });
    await waitForDeployment(service, lenient, agent);
    expect(lenient.status).toBe('Succeeded');
    expect(agent.log).toMatch(/WARN .*is not signed; accepted because enforce_deployment_spec_signature is false/);
    expect((await agent.stop()).exitCode).toBe(0);

    world.writeConfig(service.url, { enforce_deployment_spec_signature: true });
    agent = world.start();
    const strictSpec = makeSpec({ revision: localRevision(bundle) });
    const strict = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: strictSpec, commands: ['DownloadBundle'], envelope: unsignedEnvelope(JSON.stringify(strictSpec)) });
    await waitForDeployment(service, strict, agent);
    expect(strict.status).toBe('Failed');
    expectCompletedOnce(strict);
    expect(payloadOf(strict.commands[0].completions[0]).message).toMatch(/is not signed; refused because enforce_deployment_spec_signature is true/);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('refuses a PKCS7 specification without the signer certificate when enforcing', async () => {
    newWorld({ enforce_deployment_spec_signature: true });
    const bundle = world.makeBundle({ label: 'nocerts' });
    const { signJson } = await import('../doubles/pkcs7.js');
    const spec = makeSpec({ revision: localRevision(bundle) });
    const agent = world.start();
    const d = service.addDeployment({
      hostIdentifier: world.hostIdentifier,
      spec,
      envelope: { Format: 'PKCS7/JSON', Payload: await signJson(JSON.stringify(spec), { noCerts: true }) },
    });
    await waitForDeployment(service, d, agent);
    expect(d.status).toBe('Failed');
    expectCompletedOnce(d);
    expect(payloadOf(d.commands[0].completions[0]).message).toMatch(/refused because enforce_deployment_spec_signature is true/);
    expect((await agent.stop()).exitCode).toBe(0);
  });

  it('fails cleanly (code 5, a message naming the field) on a revision without its sub-object', async () => {
    newWorld();
    const agent = world.start();
    const d = service.addDeployment({ hostIdentifier: world.hostIdentifier, spec: makeSpec({ revision: { RevisionType: 'S3' } }) });
    await waitForDeployment(service, d, agent);
    expect(d.status).toBe('Failed');
    expectCompletedOnce(d);
    expect(payloadOf(d.commands[0].completions[0])).toEqual({ error_code: 5, script_name: '', message: 'Deployment Spec has RevisionType S3 but no S3Revision', log: '' });
    expect((await agent.stop()).exitCode).toBe(0);
  });
});
