import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommandsClient } from '../../src/service/commands-client.js';
import { openEnvelope } from '../../src/deployment/envelope.js';
import { ServiceError } from '../../src/report/errors.js';
import { DEFAULT_IN_PLACE_COMMANDS, FakeCommandsService, TEST_CREDENTIALS, makeSpec } from '../doubles/commands-service.js';
import { checkSigV4 } from '../doubles/sigv4-check.js';

const HOST = 'arn:aws:ec2:us-east-1:123456789012:instance/i-0double';
let service: FakeCommandsService;
let client: CommandsClient;

beforeEach(async () => {
  service = await FakeCommandsService.start({ longPollMs: 20 });
  client = new CommandsClient({ endpoint: service.url, region: 'us-east-1', credentials: TEST_CREDENTIALS, agentVersion: 't', retryBaseMs: 1, env: {} });
});

afterEach(async () => {
  client.close();
  await service.close();
});

async function runThrough(status: 'Succeeded' | 'Failed' = 'Succeeded'): Promise<string[]> {
  const names: string[] = [];
  for (;;) {
    const command = (await client.pollHostCommand(HOST)).HostCommand;
    if (!command) return names;
    names.push(command.CommandName);
    await client.putHostCommandAcknowledgement(command.HostCommandIdentifier);
    await client.putHostCommandComplete(command.HostCommandIdentifier, status);
  }
}

describe('FakeCommandsService', () => {
  it('hands out a deployment in lifecycle order, one command at a time', async () => {
    const deployment = service.addDeployment({ hostIdentifier: HOST });
    expect(await runThrough()).toEqual([...DEFAULT_IN_PLACE_COMMANDS]);
    expect(deployment.status).toBe('Succeeded');
    expect(service.completions).toHaveLength(DEFAULT_IN_PLACE_COMMANDS.length);
  });

  it('only serves the host the deployment targets', async () => {
    service.addDeployment({ hostIdentifier: 'arn:aws:ec2:us-east-1:1:instance/i-other', commands: ['Install'] });
    expect((await client.pollHostCommand(HOST)).HostCommand ?? undefined).toBeUndefined();
  });

  it('stops a deployment at its first failed command; later completions are only recorded', async () => {
    const deployment = service.addDeployment({ hostIdentifier: HOST, commands: ['ApplicationStop', 'DownloadBundle', 'Install'] });
    const first = (await client.pollHostCommand(HOST)).HostCommand!;
    await client.putHostCommandComplete(first.HostCommandIdentifier, 'Failed', { Format: 'JSON', Payload: '{"error_code":4}' });
    await client.putHostCommandComplete(first.HostCommandIdentifier, 'Failed', { Format: 'JSON', Payload: '{"error_code":5}' });
    expect(deployment.status).toBe('Failed');
    expect(deployment.commands.map((c) => c.status)).toEqual(['Failed', 'Skipped', 'Skipped']);
    expect(deployment.commands[0].completions.map((c) => c.payload)).toEqual([{ error_code: 4 }, { error_code: 5 }]);
    expect((await client.pollHostCommand(HOST)).HostCommand ?? undefined).toBeUndefined();
  });

  it('acknowledgement answers are configurable per deployment and per command; Succeeded/Failed end the command', async () => {
    const deployment = service.addDeployment({ hostIdentifier: HOST, commands: ['ApplicationStop', 'Install'], ackStatus: { ApplicationStop: 'Succeeded' } });
    const first = (await client.pollHostCommand(HOST)).HostCommand!;
    expect((await client.putHostCommandAcknowledgement(first.HostCommandIdentifier)).CommandStatus).toBe('Succeeded');
    expect(deployment.commands[0].status).toBe('Succeeded');
    const second = (await client.pollHostCommand(HOST)).HostCommand!;
    expect((await client.putHostCommandAcknowledgement(second.HostCommandIdentifier)).CommandStatus).toBe('InProgress');

    const failing = service.addDeployment({ hostIdentifier: HOST, commands: ['BeforeInstall'], ackStatus: 'Failed' });
    const third = (await client.pollHostCommand(HOST)).HostCommand!;
    expect((await client.putHostCommandAcknowledgement(third.HostCommandIdentifier)).CommandStatus).toBe('Failed');
    expect(failing.status).toBe('Failed');

    service.addDeployment({ hostIdentifier: HOST, commands: ['AfterInstall'], ackStatus: null });
    const fourth = (await client.pollHostCommand(HOST)).HostCommand!;
    expect(await client.putHostCommandAcknowledgement(fourth.HostCommandIdentifier)).toEqual({});
  });

  it('serves TEXT/JSON, tampered PKCS7, a raw envelope, a missing specification or another deployment system on demand', async () => {
    const spec = makeSpec();
    const text = service.addDeployment({ hostIdentifier: HOST, spec, specFormat: 'TEXT/JSON', commands: ['Install'] });
    const tampered = service.addDeployment({ hostIdentifier: HOST, specFormat: 'tampered', commands: ['Install'] });
    const raw = service.addDeployment({ hostIdentifier: HOST, envelope: { Format: 'XML', Payload: '<x/>' }, commands: ['Install'] });
    const missing = service.addDeployment({ hostIdentifier: HOST, omitSpecification: true, commands: ['Install'] });
    const other = service.addDeployment({ hostIdentifier: HOST, deploymentSystem: 'Other', commands: ['Install'] });

    const textSpec = await client.getDeploymentSpecification(text.executionId, HOST);
    expect(textSpec.DeploymentSpecification?.GenericEnvelope).toEqual({ Format: 'TEXT/JSON', Payload: JSON.stringify(spec) });
    const tamperedSpec = await client.getDeploymentSpecification(tampered.executionId, HOST);
    expect((await openEnvelope(tamperedSpec.DeploymentSpecification?.GenericEnvelope, { allowText: false })).signature).toBe('invalid');
    expect((await client.getDeploymentSpecification(raw.executionId, HOST)).DeploymentSpecification?.GenericEnvelope).toEqual({ Format: 'XML', Payload: '<x/>' });
    expect((await client.getDeploymentSpecification(missing.executionId, HOST)).DeploymentSpecification).toBeNull();
    expect((await client.getDeploymentSpecification(other.executionId, HOST)).DeploymentSystem).toBe('Other');
  });

  it('refuses a spec request for another host and unknown command ids', async () => {
    const deployment = service.addDeployment({ hostIdentifier: HOST, commands: ['Install'] });
    await expect(client.getDeploymentSpecification(deployment.executionId, 'someone-else')).rejects.toThrow(/ClientException/);
    await expect(client.putHostCommandComplete('nope', 'Succeeded')).rejects.toBeInstanceOf(ServiceError);
  });

  it('injects faults for the next N calls of one operation or of all', async () => {
    service.injectFault('*', { status: 503, errorType: 'ServiceUnavailable' }, 2);
    await client.pollHostCommand(HOST).catch(() => undefined);
    await client.pollHostCommand(HOST).catch(() => undefined);
    await client.pollHostCommand(HOST);
    expect(service.requests.map((r) => [r.status, r.fault])).toEqual([[503, 'ServiceUnavailable'], [503, 'ServiceUnavailable'], [200, undefined]]);
  });

  it('waitFor helpers resolve on progress and explain a timeout', async () => {
    const deployment = service.addDeployment({ hostIdentifier: HOST, commands: ['Install'] });
    const completion = service.waitForCompletions(1, (c) => c.commandName === 'Install', 2_000);
    await runThrough();
    expect((await completion)[0].commandStatus).toBe('Succeeded');
    await service.waitForDeployment(deployment, 1_000);
    await expect(service.waitFor(() => false, 50, 'never')).rejects.toThrow(/Timed out after 50 ms waiting for never\. Recent requests: .*PollHostCommand→200/);
  });

  it('goes down (held polls cut, connections refused) and comes back on the same port', async () => {
    const url = service.url;
    const held = client.pollHostCommand(HOST).then(() => 'answered', () => 'failed');
    await service.waitForRequests('PollHostCommand', 1, 2_000);
    await service.goDown();
    expect(await held).toBe('failed');
    const refused = await fetch(url, { method: 'POST', body: '{}' }).then(() => 'answered', (error: Error) => String((error.cause as { code?: string })?.code));
    expect(refused).toBe('ECONNREFUSED');
    await service.comeBack();
    expect(service.url).toBe(url);
    service.addDeployment({ hostIdentifier: HOST, commands: ['Install'] });
    expect((await client.pollHostCommand(HOST)).HostCommand?.CommandName).toBe('Install');
  });

  it('keeps only the latest records when asked, reports each request as it arrives, and forgets finished deployments', async () => {
    const seen: string[] = [];
    const small = await FakeCommandsService.start({ longPollMs: 1, keepRecords: 2, onRequest: (r) => seen.push(r.operation ?? '?') });
    const smallClient = new CommandsClient({ endpoint: small.url, region: 'us-east-1', credentials: TEST_CREDENTIALS, agentVersion: 't', retryBaseMs: 1, env: {} });
    try {
      for (let i = 0; i < 7; i++) await smallClient.pollHostCommand(HOST);
      expect(seen).toEqual(Array(7).fill('PollHostCommand'));
      expect(small.requests.length).toBeGreaterThanOrEqual(2);
      expect(small.requests.length).toBeLessThanOrEqual(4);
      const deployment = small.addDeployment({ hostIdentifier: HOST, commands: ['Install'] });
      const command = (await smallClient.pollHostCommand(HOST)).HostCommand!;
      await smallClient.putHostCommandComplete(command.HostCommandIdentifier, 'Succeeded');
      small.forget(deployment);
      expect(small.deployments).toEqual([]);
      await expect(smallClient.putHostCommandComplete(command.HostCommandIdentifier, 'Succeeded')).rejects.toThrow(/Unknown HostCommandIdentifier/);
    } finally {
      smallClient.close();
      await small.close();
    }
  });

  it('rejects wrong content types, unknown targets and unsigned requests with the AWS error shape', async () => {
    const post = async (headers: Record<string, string>) => {
      const res = await fetch(service.url, { method: 'POST', headers, body: '{}' });
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    };
    const unsigned = await post({ 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'CodeDeployCommandService_v20141006.PollHostCommand' });
    expect(unsigned).toEqual({ status: 403, body: { __type: 'com.amazon.coral.service#MissingAuthenticationTokenException', message: 'Missing Authentication Token' } });
  });

  it('the SigV4 checker refuses a credential scoped to another region', () => {
    const result = checkSigV4(
      { method: 'POST', url: '/', headers: { authorization: 'AWS4-HMAC-SHA256 Credential=AKIAFAKECOMMANDS0001/20240101/eu-west-1/codedeploy-commands/aws4_request, SignedHeaders=host;x-amz-date, Signature=' + '0'.repeat(64), host: 'h', 'x-amz-date': '20240101T000000Z' }, body: Buffer.from('{}') },
      { credentials: [TEST_CREDENTIALS], region: 'us-east-1', service: 'codedeploy-commands', now: () => Date.UTC(2024, 0, 1) },
    );
    expect(result).toMatchObject({ ok: false, errorType: 'InvalidSignatureException', message: expect.stringMatching(/region/) });
  });
});
