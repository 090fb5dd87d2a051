import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileSync, mkdirSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CommandsClient, createCommandsClient } from '../../src/service/commands-client.js';
import { matchesNoProxy, proxyFor } from '../../src/service/proxy.js';
import type { CommandsClientOptions } from '../../src/service/commands-client.js';
import { parseVersionFile, programVersionFile, readAgentVersion, UNKNOWN_VERSION } from '../../src/service/agent-version.js';
import { decodeServiceError, isAuthError, isRetryableError, isThrottlingError, stripErrorType } from '../../src/service/service-errors.js';
import { openEnvelope } from '../../src/deployment/envelope.js';
import { parseDeploymentSpec } from '../../src/deployment/spec.js';
import { defaultConfig } from '../../src/config/agent-config.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { ServiceError } from '../../src/report/errors.js';
import { isAbortError } from '../../src/util/retry.js';
import { ThrottleGate } from '../../src/util/throttle-gate.js';
import { FakeCommandsService, TEST_CREDENTIALS, makeSpec } from '../doubles/commands-service.js';
import { startConnectProxy } from '../revision/connect-proxy.js';
import { makeTempDir } from '../helpers/tmp.js';

const HOST = 'arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0';

let service: FakeCommandsService;
const clients: CommandsClient[] = [];

function client(overrides: Partial<CommandsClientOptions> = {}): CommandsClient {
  const c = new CommandsClient({
    endpoint: service.url,
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    agentVersion: 'OFFICIAL_1.8.1-test',
    retryBaseMs: 1,
    retryCapMs: 5,
    env: {},
    ...overrides,
  });
  clients.push(c);
  return c;
}

async function failure(promise: Promise<unknown>): Promise<ServiceError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(ServiceError);
  return error as ServiceError;
}

beforeEach(async () => {
  service = await FakeCommandsService.start({ longPollMs: 50 });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await service.close();
});

describe('CommandsClient against the fake service', () => {
  it('sends signed AWS JSON 1.1 requests the service accepts', async () => {
    const answer = await client().pollHostCommand(HOST);
    expect(answer.HostCommand ?? undefined).toBeUndefined();
    const [request] = service.requestsFor('PollHostCommand');
    expect(request.status).toBe(200);
    expect(request.body).toEqual({ HostIdentifier: HOST });
    expect(request.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(request.headers['x-amz-target']).toBe('CodeDeployCommandService_v20141006.PollHostCommand');
    expect(request.headers['x-amz-codedeploy-agent-version']).toBe('OFFICIAL_1.8.1-test');
    expect(request.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAFAKECOMMANDS0001\/\d{8}\/us-east-1\/codedeploy-commands\/aws4_request/);
  });

  it('a wrong secret is rejected as InvalidSignatureException and not retried; the secret is not in the error', async () => {
    const secret = 'totally-wrong-secret-key-0123456789';
    const error = await failure(client({ credentials: { accessKeyId: TEST_CREDENTIALS.accessKeyId, secretAccessKey: secret } })
      .putHostCommandAcknowledgement('x'));
    expect(error.errorType).toBe('InvalidSignatureException');
    expect(error.statusCode).toBe(403);
    expect(error.message).toMatch(/^PutHostCommandAcknowledgement: InvalidSignatureException \(HTTP 403\): The request signature we calculated/);
    expect(`${error.message} ${error.body}`).not.toContain(secret);
    expect(isRetryableError(error)).toBe(false);
    expect(service.requestsFor('PutHostCommandAcknowledgement')).toHaveLength(1);
  });

  it('keeps the body of a refused request for the debug log, and says it is an authentication failure', async () => {
    const logger = new MemoryLogger();
    const error = await failure(client({ credentials: { accessKeyId: 'AKIANOBODY', secretAccessKey: 'x' }, logger }).pollHostCommand(HOST));
    expect(isAuthError(error)).toBe(true);
    expect(isAuthError(decodeServiceError('Op', 503, '{"__type":"ServiceUnavailable"}'))).toBe(false);
    expect(logger.text()).toContain(`PollHostCommand answered HTTP 403 UnrecognizedClientException: ${error.body}`);
    expect(error.body).toContain('"__type"');
  });

  it('an unknown access key is UnrecognizedClientException', async () => {
    const error = await failure(client({ credentials: { accessKeyId: 'AKIANOBODY', secretAccessKey: 'x' } }).pollHostCommand(HOST));
    expect(error.errorType).toBe('UnrecognizedClientException');
  });

  it('signs the session token and asks the credential provider on every request (rotation)', async () => {
    const first = { accessKeyId: 'ASIAFIRST', secretAccessKey: 'first-secret', sessionToken: 'first-token' };
    const second = { accessKeyId: 'ASIASECOND', secretAccessKey: 'second-secret', sessionToken: 'second-token' };
    service.credentials = [first, second];
    let current = first;
    const c = client({ credentials: async () => current });
    await c.pollHostCommand(HOST);
    current = second;
    await c.pollHostCommand(HOST);
    const tokens = service.requestsFor('PollHostCommand').map((r) => r.headers['x-amz-security-token']);
    expect(tokens).toEqual(['first-token', 'second-token']);
    // A missing session token is refused.
    const error = await failure(client({ credentials: { accessKeyId: 'ASIAFIRST', secretAccessKey: 'first-secret' } }).pollHostCommand(HOST));
    expect(error.errorType).toBe('UnrecognizedClientException');
  });

  it('the secure variant signs as codedeploy-commands-secure with its own target prefix', async () => {
    await service.close();
    service = await FakeCommandsService.start({ variant: 'secure', longPollMs: 10 });
    await client({ enableAuthPolicy: true }).pollHostCommand(HOST);
    expect(service.requests[0].headers['x-amz-target']).toBe('CodeDeployCommandService.PollHostCommand');
    expect(service.requests[0].status).toBe(200);
    const error = await failure(client({ enableAuthPolicy: false }).pollHostCommand(HOST));
    expect(error.errorType).toBe('InvalidSignatureException');
  });

  it('walks a deployment: poll, spec, ack, complete, next command only after completion', async () => {
    const c = client();
    const deployment = service.addDeployment({ hostIdentifier: HOST, spec: makeSpec({ deploymentId: 'd-WALK00001' }), commands: ['DownloadBundle', 'Install'] });
    const first = (await c.pollHostCommand(HOST)).HostCommand!;
    expect(first).toMatchObject({ HostIdentifier: HOST, CommandName: 'DownloadBundle', DeploymentExecutionId: deployment.executionId });
    expect(first.DeploymentExecutionId).toMatch(/^[^/]+\/[^/]+\/[^/]+\/.+$/);

    const specOutput = await c.getDeploymentSpecification(first.DeploymentExecutionId, HOST);
    expect(specOutput.DeploymentSystem).toBe('CodeDeploy');
    const opened = await openEnvelope(specOutput.DeploymentSpecification!.GenericEnvelope, { allowText: false });
    expect(opened.signature).toBe('valid');
    expect(parseDeploymentSpec(opened.json).deploymentId).toBe('d-WALK00001');

    const ack = await c.putHostCommandAcknowledgement(first.HostCommandIdentifier, { Format: 'JSON', Payload: '{"IsCommandNoop":false}' });
    expect(ack.CommandStatus).toBe('InProgress');
    expect(service.acks[0].payload).toEqual({ IsCommandNoop: false });

    // Nothing else until the first command completes.
    expect((await c.pollHostCommand(HOST)).HostCommand ?? undefined).toBeUndefined();
    await c.putHostCommandComplete(first.HostCommandIdentifier, 'Succeeded', { Format: 'JSON', Payload: '{"error_code":0,"script_name":"","message":"Succeeded: ","log":""}' });
    expect(service.completions[0]).toMatchObject({ commandName: 'DownloadBundle', commandStatus: 'Succeeded', payload: { error_code: 0 } });

    const second = (await c.pollHostCommand(HOST)).HostCommand!;
    expect(second.CommandName).toBe('Install');
    await c.putHostCommandComplete(second.HostCommandIdentifier, 'Succeeded');
    await service.waitForDeployment(deployment, 1000);
    expect(deployment.status).toBe('Succeeded');
    expect(deployment.commands.map((cmd) => cmd.status)).toEqual(['Succeeded', 'Succeeded']);

    const update = await c.postHostCommandUpdate(second.HostCommandIdentifier, { estimatedCompletionTime: new Date() });
    expect(update.CommandStatus).toBe('Succeeded');
    expect((service.requestsFor('PostHostCommandUpdate')[0].body as Record<string, unknown>).EstimatedCompletionTime).toEqual(expect.any(Number));
  });

  it('a long poll returns as soon as a command is queued', async () => {
    await service.close();
    service = await FakeCommandsService.start({ longPollMs: 5_000 });
    const started = Date.now();
    const pending = client().pollHostCommand(HOST);
    setTimeout(() => service.addDeployment({ hostIdentifier: HOST, commands: ['ApplicationStop'] }), 100);
    const answer = await pending;
    expect(answer.HostCommand?.CommandName).toBe('ApplicationStop');
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('an abort ends an open long poll at once, and the fake hands the command to the next poll', async () => {
    await service.close();
    service = await FakeCommandsService.start({ longPollMs: 10_000 });
    const c = client();
    const controller = new AbortController();
    const started = Date.now();
    const pending = c.pollHostCommand(HOST, controller.signal);
    await service.waitForRequests('PollHostCommand');
    controller.abort();
    const error = await pending.then(() => undefined, (e: unknown) => e);
    expect(isAbortError(error)).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_000);
    const deployment = service.addDeployment({ hostIdentifier: HOST, commands: ['ApplicationStop'] });
    await new Promise((r) => setTimeout(r, 50));
    expect(deployment.commands[0].status).toBe('Pending');
    expect((await c.pollHostCommand(HOST)).HostCommand?.CommandName).toBe('ApplicationStop');
  });

  it('an already aborted signal sends nothing', async () => {
    const error = await client().pollHostCommand(HOST, AbortSignal.abort()).then(() => undefined, (e: unknown) => e);
    expect(isAbortError(error)).toBe(true);
    expect(service.requests).toHaveLength(0);
  });

  it('retries throttling and 5xx on acknowledgements and completions', async () => {
    const deployment = service.addDeployment({ hostIdentifier: HOST, commands: ['Install'] });
    const c = client();
    const command = (await c.pollHostCommand(HOST)).HostCommand!;
    service.injectFault('PutHostCommandAcknowledgement', 'throttle', 2);
    expect((await c.putHostCommandAcknowledgement(command.HostCommandIdentifier)).CommandStatus).toBe('InProgress');
    expect(service.requestsFor('PutHostCommandAcknowledgement').map((r) => r.status)).toEqual([400, 400, 200]);
    service.injectFault('PutHostCommandComplete', 'server-error', 1);
    await c.putHostCommandComplete(command.HostCommandIdentifier, 'Failed');
    expect(service.requestsFor('PutHostCommandComplete').map((r) => r.status)).toEqual([500, 200]);
    expect(deployment.status).toBe('Failed');
  });

  it('a throttled call of any operation closes one gate that holds back every operation\'s requests', async () => {
    const deployment = service.addDeployment({ hostIdentifier: HOST, commands: ['Install'] });
    const gate = new ThrottleGate(() => 400);
    const logger = new MemoryLogger();
    const c = client({ throttleGate: gate, logger });
    const command = (await c.pollHostCommand(HOST)).HostCommand!;
    service.injectFault('PutHostCommandAcknowledgement', 'throttle', 1);
    const acked = c.putHostCommandAcknowledgement(command.HostCommandIdentifier);
    await service.waitFor(() => service.requestsFor('PutHostCommandAcknowledgement').length === 1, 2_000, 'the throttled acknowledgement');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(gate.isClosed()).toBe(true);
    // A poll sent now waits for the gate as well, and so does the acknowledgement's retry.
    const pollSentAt = Date.now();
    await c.pollHostCommand(HOST);
    const pollRequest = service.requestsFor('PollHostCommand')[1];
    expect(pollRequest.at - pollSentAt).toBeGreaterThanOrEqual(300);
    expect((await acked).CommandStatus).toBe('InProgress');
    const [throttled, retried] = service.requestsFor('PutHostCommandAcknowledgement');
    expect(retried.at - throttled.at).toBeGreaterThanOrEqual(390);
    expect(logger.text()).toMatch(/PutHostCommandAcknowledgement was throttled \(ThrottlingException\); no request goes to the commands service for 400ms/);
    expect(deployment.commands[0].acks).toHaveLength(1);
  });

  it('gives up after maxAttempts with the last error', async () => {
    service.injectFault('PutHostCommandComplete', 'server-error', 10);
    const error = await failure(client({ maxAttempts: 3 }).putHostCommandComplete('id', 'Succeeded'));
    expect(error).toMatchObject({ errorType: 'ServerException', statusCode: 500 });
    expect(service.requestsFor('PutHostCommandComplete')).toHaveLength(3);
  });

  it('does not retry a throttled poll (the poller owns that backoff)', async () => {
    service.injectFault('PollHostCommand', 'throttle');
    const error = await failure(client().pollHostCommand(HOST));
    expect(error.errorType).toBe('ThrottlingException');
    expect(error.message).toBe('PollHostCommand: ThrottlingException (HTTP 400): Rate exceeded');
    expect(isThrottlingError(error)).toBe(true);
    expect(service.requestsFor('PollHostCommand')).toHaveLength(1);
  });

  it('times out a hanging request after the request timeout', async () => {
    service.injectFault('GetDeploymentSpecification', 'hang');
    const started = Date.now();
    const error = await failure(client({ requestTimeoutMs: 300, maxAttempts: 1 }).getDeploymentSpecification('a/b/c/d', HOST));
    expect(error.errorType).toBe('TimeoutError');
    expect(isRetryableError(error)).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('a hang followed by success is retried transparently', async () => {
    service.addDeployment({ hostIdentifier: HOST, commands: ['Install'] });
    service.injectFault('PollHostCommand', 'hang');
    const answer = await client({ requestTimeoutMs: 300, pollAttempts: 2 }).pollHostCommand(HOST);
    expect(answer.HostCommand?.CommandName).toBe('Install');
  });

  it('a connection reset is a retryable NetworkingError', async () => {
    service.injectFault('PutHostCommandAcknowledgement', 'reset');
    const error = await failure(client({ maxAttempts: 1 }).putHostCommandAcknowledgement('x'));
    expect(error.errorType).toBe('NetworkingError');
    expect(isRetryableError(error)).toBe(true);
    service.injectFault('PutHostCommandAcknowledgement', 'reset');
    // With retries the second try reaches the service (and gets its answer: unknown id).
    const second = await failure(client().putHostCommandAcknowledgement('x'));
    expect(second.errorType).toBe('ClientException');
  });

  it('a reset on a keep-alive socket that sat idle is retried at once, even for a poll', async () => {
    const c = client({ staleSocketIdleMs: 50 });
    await c.pollHostCommand(HOST);
    service.injectFault('PollHostCommand', 'reset');
    // Reused right away: surfaced (the poller decides).
    expect((await failure(c.pollHostCommand(HOST))).errorType).toBe('NetworkingError');
    await c.pollHostCommand(HOST);
    await new Promise((r) => setTimeout(r, 100));
    service.injectFault('PollHostCommand', 'reset');
    expect(await c.pollHostCommand(HOST)).toEqual({});
    expect(service.requestsFor('PollHostCommand').map((r) => r.status)).toEqual([200, -2, 200, -2, 200]);
  });

  it('a refused connection is a NetworkingError', async () => {
    const url = service.url;
    await service.close();
    const error = await failure(new CommandsClient({ endpoint: url, region: 'us-east-1', credentials: TEST_CREDENTIALS, agentVersion: 'v', maxAttempts: 1 }).pollHostCommand(HOST));
    expect(error.errorType).toBe('NetworkingError');
    expect(error.message).toMatch(/ECONNREFUSED/);
    service = await FakeCommandsService.start();
  });

  it('corrects its signing clock when the service says the signature expired', async () => {
    service.clockOffsetMs = 20 * 60_000;
    const logger = new MemoryLogger();
    const answer = await client({ logger }).pollHostCommand(HOST);
    expect(answer).toEqual({});
    expect(service.requestsFor('PollHostCommand').map((r) => r.status)).toEqual([403, 200]);
    expect(logger.text()).toMatch(/clock differs/);
  });

  it('ignores a Date header no signature can carry (found by test/fuzz/commands-service.test.ts)', async () => {
    // Year 275760: Date.parse takes it, and signing with that offset threw a RangeError on every later request.
    service.clockOffsetMs = Date.UTC(275760, 8, 12) - Date.now();
    const c = client({ maxAttempts: 1 });
    for (let i = 0; i < 2; i++) {
      const error = await failure(c.pollHostCommand(HOST));
      expect(['RequestTimeTooSkewed', 'InvalidSignatureException', 'RequestExpired']).toContain(error.errorType);
    }
    service.clockOffsetMs = 0;
    await expect(c.pollHostCommand(HOST)).resolves.toEqual({});
  });

  it('the fake refuses requests without the agent-version header', async () => {
    const error = await failure(client({ agentVersion: '' }).pollHostCommand(HOST));
    expect(error.errorType).toBe('ClientException');
    expect(error.message).toMatch(/x-amz-codedeploy-agent-version/);
  });

  it('goes through a CONNECT proxy given as proxy_uri', async () => {
    const proxy = await startConnectProxy();
    try {
      await client({ proxyUri: proxy.uri }).pollHostCommand(HOST);
      expect(proxy.tunnels.map((t) => t.target)).toEqual([new URL(service.url).host]);
      expect(service.requests[0].status).toBe(200);
    } finally {
      await proxy.stop();
    }
  });

  it('honours HTTP_PROXY and NO_PROXY from the environment', async () => {
    const proxy = await startConnectProxy();
    try {
      await client({ env: { HTTP_PROXY: proxy.uri } }).pollHostCommand(HOST);
      expect(proxy.tunnels).toHaveLength(1);
      await client({ env: { HTTP_PROXY: proxy.uri, NO_PROXY: 'localhost,127.0.0.1' } }).pollHostCommand(HOST);
      expect(proxy.tunnels).toHaveLength(1);
    } finally {
      await proxy.stop();
    }
  });

  it('createCommandsClient builds the endpoint, version and timeout from the config', async () => {
    const { dir, cleanup } = makeTempDir();
    try {
      const root = join(dir, 'deployment-root');
      mkdirSync(root);
      writeFileSync(join(dir, '.version'), 'agent_version: OFFICIAL_1.8.1-99_rpm\n');
      const config = { ...defaultConfig(), root_dir: root, deploy_control_endpoint: service.url, http_read_timeout: 5 };
      const logger = new MemoryLogger();
      const c = createCommandsClient(config, {
        region: 'us-east-1', hostIdentifier: HOST, credentials: async () => TEST_CREDENTIALS, onPremises: true, onPremisesConfigReadable: true,
      }, { logger, env: {} });
      clients.push(c);
      await c.pollHostCommand(HOST);
      expect(service.requests[0].headers['x-amz-codedeploy-agent-version']).toBe('OFFICIAL_1.8.1-99_rpm');
      expect(logger.text()).toContain(`CodeDeploy endpoint: ${service.url}`);
    } finally {
      cleanup();
    }
  });
});

describe('agent version file (agent-spec §1.1)', () => {
  it('parses the text after the last ": "', () => {
    expect(parseVersionFile('agent_version: OFFICIAL_1.7.0-92_rpm\n')).toBe('OFFICIAL_1.7.0-92_rpm');
    expect(parseVersionFile('agent_version: COMMIT_abc: def \n')).toBe('def');
  });

  it('falls back to UNKNOWN_VERSION with a warning', () => {
    const { dir, cleanup } = makeTempDir();
    try {
      const logger = new MemoryLogger();
      expect(readAgentVersion(join(dir, 'root'), logger, join(dir, 'nope'), join(dir, 'nope-either'))).toBe(UNKNOWN_VERSION);
      expect(logger.lines.some((l) => l.level === 'warn')).toBe(true);
      writeFileSync(join(dir, 'fallback'), 'agent_version: FALLBACK_1\n');
      expect(readAgentVersion(join(dir, 'root'), logger, join(dir, 'fallback'), join(dir, 'nope-either'))).toBe('FALLBACK_1');
      // The running program's installation comes before the default path, after <root_dir>/../.version.
      writeFileSync(join(dir, 'program-version'), 'agent_version: PROGRAM_1\n');
      expect(readAgentVersion(join(dir, 'root'), logger, join(dir, 'fallback'), join(dir, 'program-version'))).toBe('PROGRAM_1');
      writeFileSync(join(dir, '.version'), 'agent_version: ROOT_1\n');
      expect(readAgentVersion(join(dir, 'root'), logger, join(dir, 'fallback'), join(dir, 'program-version'))).toBe('ROOT_1');
    } finally {
      cleanup();
    }
  });

  it('looks for the running program\'s .version beside the folder of its program (<prefix>/bin/x → <prefix>/.version)', () => {
    // Here the program is the test runner's entry script (not a single executable).
    expect(programVersionFile()).toBe(join(dirname(dirname(realpathSync(process.argv[1]))), '.version'));
  });
});

describe('service error decoding', () => {
  it('strips namespaces and URL suffixes from error types', () => {
    expect(stripErrorType('com.amazon.coral.availability#ThrottlingException')).toBe('ThrottlingException');
    expect(stripErrorType('ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/')).toBe('ThrottlingException');
    expect(stripErrorType('ClientException')).toBe('ClientException');
  });

  it('decodes __type, message and status, keeping the body', () => {
    const body = '{"__type":"com.amazonaws.codedeploy.commands#ClientException","message":"bad host"}';
    const error = decodeServiceError('PollHostCommand', 400, body);
    expect(error).toMatchObject({ errorType: 'ClientException', statusCode: 400, body, message: 'PollHostCommand: ClientException (HTTP 400): bad host' });
    expect(isRetryableError(error)).toBe(false);
  });

  it('puts the readable text of a page that is not the service\'s JSON (a proxy\'s) into the message', () => {
    const page = '<html><head><style>h1 { color: red }</style></head><body><h1>Access denied</h1>\n<p>by the policy of proxy.corp.example</p></body></html>';
    const error = decodeServiceError('PollHostCommand', 403, page);
    expect(error.message).toBe('PollHostCommand: ClientException (HTTP 403): Access denied by the policy of proxy.corp.example');
    expect(error.body).toBe(page);
    expect(decodeServiceError('Op', 400, '{}').message).toBe('Op: ClientException (HTTP 400)');
  });

  it('uses the x-amzn-errortype header, then the status', () => {
    expect(decodeServiceError('Op', 400, '', 'RequestLimitExceeded:http://x/').errorType).toBe('RequestLimitExceeded');
    expect(decodeServiceError('Op', 502, '<html>bad gateway</html>').errorType).toBe('ServerException');
    expect(decodeServiceError('Op', 429, '').errorType).toBe('ThrottlingException');
  });

  it('classifies throttling and retryable errors', () => {
    expect(isThrottlingError(decodeServiceError('Op', 400, '{"__type":"RequestLimitExceeded"}'))).toBe(true);
    expect(isThrottlingError(decodeServiceError('Op', 429, '{}'))).toBe(true);
    expect(isThrottlingError(decodeServiceError('Op', 400, '{"__type":"ClientException","message":"Rate exceeded"}'))).toBe(true);
    expect(isThrottlingError(new Error('Throttled by something'))).toBe(true);
    expect(isThrottlingError(decodeServiceError('Op', 400, '{"__type":"ClientException"}'))).toBe(false);
    expect(isRetryableError(decodeServiceError('Op', 503, '{"__type":"ServiceUnavailable"}'))).toBe(true);
    expect(isRetryableError(decodeServiceError('Op', 400, '{"__type":"ThrottlingException"}'))).toBe(true);
    expect(isRetryableError(new Error('plain'))).toBe(false);
  });
});

describe('proxy selection', () => {
  const https = new URL('https://codedeploy-commands.us-east-1.amazonaws.com');
  it('proxy_uri wins; environment variables follow the scheme; NO_PROXY excludes', () => {
    expect(proxyFor(https, 'http://proxy:3128', { HTTPS_PROXY: 'http://other:1' })).toBe('http://proxy:3128');
    expect(proxyFor(https, undefined, { HTTPS_PROXY: 'http://env:1' })).toBe('http://env:1');
    expect(proxyFor(https, undefined, { https_proxy: 'http://lower:1' })).toBe('http://lower:1');
    expect(proxyFor(https, undefined, { HTTP_PROXY: 'http://env:1' })).toBeUndefined();
    expect(proxyFor(https, undefined, { HTTPS_PROXY: 'http://env:1', NO_PROXY: '.amazonaws.com' })).toBeUndefined();
    expect(proxyFor(https, '', {})).toBeUndefined();
  });

  it('NO_PROXY matching', () => {
    expect(matchesNoProxy(https, '*')).toBe(true);
    expect(matchesNoProxy(https, 'amazonaws.com')).toBe(true);
    expect(matchesNoProxy(https, '*.amazonaws.com')).toBe(true);
    expect(matchesNoProxy(https, 'example.com, .amazonaws.com:443')).toBe(true);
    expect(matchesNoProxy(https, 'amazonaws.com:80')).toBe(false);
    expect(matchesNoProxy(https, 'zonaws.com')).toBe(false);
    expect(matchesNoProxy(https, undefined)).toBe(false);
  });
});

describe('CommandsClient: answers that do not match the API model (found by test/fuzz/commands-service.test.ts)', () => {
  let raw: http.Server;
  let answer = '';
  beforeEach(async () => {
    raw = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(answer));
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  });
  afterEach(async () => {
    await new Promise<void>((resolve) => raw.close(() => resolve()));
  });

  function rawClient(): CommandsClient {
    return client({ endpoint: `http://127.0.0.1:${(raw.address() as AddressInfo).port}`, maxAttempts: 1 });
  }

  it.each([
    ['PollHostCommand', 'null', 'the answer is null, not an object'],
    ['PollHostCommand', '{"HostCommand":"d-1"}', 'HostCommand is the text "d-1", not an object'],
    ['PollHostCommand', '{"HostCommand":{"HostIdentifier":"h","Nonce":"7"}}', 'HostCommand.Nonce is the text "7", not a number'],
    ['GetDeploymentSpecification', '[]', 'the answer is a list, not an object'],
    ['GetDeploymentSpecification', '{"DeploymentSystem":"CodeDeploy","DeploymentSpecification":{"GenericEnvelope":{"Format":{},"Payload":"x"}}}',
      'DeploymentSpecification.GenericEnvelope.Format is an object, not text'],
    ['PutHostCommandAcknowledgement', '{"CommandStatus":1e999}', 'CommandStatus is the number Infinity, not text'],
  ] as const)('%s answering %s is a SerializationException', async (operation, body, why) => {
    answer = body;
    const error = await failure(rawClient().call(operation, {}));
    expect(error.errorType).toBe('SerializationException');
    expect(error.message).toBe(`${operation}: the service's answer does not match the API model: ${why}`);
    expect(isRetryableError(error)).toBe(false);
  });

  it('unknown members, nulls and enum values the model does not list pass', async () => {
    answer = '{"HostCommand":null,"Extra":{"x":[1]}}';
    await expect(rawClient().pollHostCommand(HOST)).resolves.toEqual({ HostCommand: null, Extra: { x: [1] } });
    answer = '{"CommandStatus":"Paused"}';
    await expect(rawClient().putHostCommandAcknowledgement('id')).resolves.toEqual({ CommandStatus: 'Paused' });
  });
});
