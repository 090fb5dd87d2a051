import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceError } from '../../src/report/errors.js';
import { CommandsClient } from '../../src/service/commands-client.js';
import type { CommandsOperation } from '../../src/service/commands-types.js';
import { decodeCommandsOutput } from '../../src/service/commands-outputs.js';
import { anyJson, anyText, fuzz, parseOrTypedError, settleOrTypedError, testTimeout, usuallyOr } from './fuzz.js';

/**
 * The commands service's answers, as the commands client reads them: for any answer (status line,
 * headers, body, even broken HTTP or none at all) the client resolves to an output of the API model's
 * shape or rejects with a ServiceError, within its deadline.
 */

const OPERATIONS: CommandsOperation[] = ['PollHostCommand', 'GetDeploymentSpecification', 'PutHostCommandAcknowledgement', 'PutHostCommandComplete', 'PostHostCommandUpdate'];
const jsonValue = anyJson();
const either = <T>(usual: fc.Arbitrary<T>) => usuallyOr(usual, jsonValue);

const envelope = either(fc.record({ Format: either(fc.constantFrom('PKCS7/JSON', 'TEXT/JSON')), Payload: either(fc.string()) }, { requiredKeys: [] }));

/** Answers shaped like the model's outputs, any member possibly of the wrong type. */
const outputLike = fc.oneof(
  fc.record({
    HostCommand: either(fc.record({
      HostCommandIdentifier: either(fc.string()), HostIdentifier: either(fc.string()), DeploymentExecutionId: either(fc.string()),
      CommandName: either(fc.constantFrom('DownloadBundle', 'Install', 'BeforeInstall')), Nonce: either(fc.integer()),
    }, { requiredKeys: [] })),
  }, { requiredKeys: [] }),
  fc.record({
    DeploymentSystem: either(fc.constant('CodeDeploy')),
    DeploymentSpecification: either(fc.record({ GenericEnvelope: envelope, VariantId: either(fc.string()), VariantEnvelope: envelope }, { requiredKeys: [] })),
  }, { requiredKeys: [] }),
  fc.record({ CommandStatus: either(fc.constantFrom('Pending', 'InProgress', 'Succeeded', 'Failed')) }, { requiredKeys: [] }),
  jsonValue,
);

const body = fc.oneof(
  { weight: 3, arbitrary: outputLike.map((value) => JSON.stringify(value) ?? '') },
  { weight: 1, arbitrary: anyText(200) },
  { weight: 1, arbitrary: fc.constantFrom('', 'null', '[]', '1e999', '"x"', '{"__type":"ThrottlingException"}', '{"__type":5,"message":{}}', '<html><body>Bad gateway</body></html>') },
);

const isText = (value: unknown) => value === undefined || value === null || typeof value === 'string';
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** What the poller and the command runner rely on, per operation. */
function checkOutput(operation: CommandsOperation, output: unknown): void {
  expect(isObject(output), JSON.stringify(output)).toBe(true);
  const value = output as Record<string, unknown>;
  const envelopeFits = (e: unknown) => e === undefined || e === null || (isObject(e) && isText(e.Format) && isText(e.Payload));
  switch (operation) {
    case 'PollHostCommand': {
      const command = value.HostCommand;
      if (command === undefined || command === null) break;
      expect(isObject(command)).toBe(true);
      const c = command as Record<string, unknown>;
      expect([c.HostCommandIdentifier, c.HostIdentifier, c.DeploymentExecutionId, c.CommandName].every(isText)).toBe(true);
      expect(c.Nonce === undefined || c.Nonce === null || Number.isFinite(c.Nonce)).toBe(true);
      break;
    }
    case 'GetDeploymentSpecification': {
      expect(isText(value.DeploymentSystem)).toBe(true);
      const spec = value.DeploymentSpecification;
      if (spec === undefined || spec === null) break;
      expect(isObject(spec)).toBe(true);
      const s = spec as Record<string, unknown>;
      expect(envelopeFits(s.GenericEnvelope) && envelopeFits(s.VariantEnvelope) && isText(s.VariantId)).toBe(true);
      break;
    }
    case 'PutHostCommandAcknowledgement':
    case 'PostHostCommandUpdate':
      expect(isText(value.CommandStatus)).toBe(true);
      break;
    case 'PutHostCommandComplete':
      break;
  }
}

describe('fuzz: decoding the commands service answers', () => {
  const budget = { runs: 1_000, timeMs: 1_500 };

  it('any 2xx body, for every operation', { timeout: testTimeout(budget.timeMs) }, async () => {
    await fuzz(import.meta.url, fc.property(fc.constantFrom(...OPERATIONS), fc.integer({ min: 200, max: 299 }), body, (operation, status, text) => {
      const output = parseOrTypedError(() => decodeCommandsOutput(operation, status, text), [ServiceError]);
      if (output !== undefined) checkOutput(operation, output);
    }), budget);
  });
});

/** One raw answer of the loopback service: written as is on the socket, then the socket is closed (or left open). */
interface RawAnswer {
  statusLine: string;
  headers: [string, string][];
  body: string;
  /** Whether Content-Length tells the truth, lies, or is left out. */
  length: 'true' | 'short' | 'long' | 'none';
  /** Leave the connection open after writing: the client's deadline must end the call. */
  hang: boolean;
}

const headerText = fc.string({ unit: fc.constantFrom(...'abcXYZ09 :;,./-_=#"\'()'.split('')), maxLength: 30 });
const rawAnswer: fc.Arbitrary<RawAnswer> = fc.record({
  statusLine: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 200, max: 599 }).map((status) => `HTTP/1.1 ${status} Whatever`) },
    { weight: 1, arbitrary: fc.constantFrom('HTTP/1.1 200', 'HTTP/1.1 abc OK', 'HTTP/9.9 200 OK', 'garbage', '', 'HTTP/1.1 99 Low', 'HTTP/1.1 600 High') },
  ),
  headers: fc.tuple(
    fc.option(fc.oneof(fc.constant('application/x-amz-json-1.1'), headerText)),
    fc.option(fc.oneof(fc.constantFrom('ThrottlingException:http://internal', 'InvalidSignatureException', 'RequestTimeTooSkewed', 'com.amazon.coral#ServerException'), headerText)),
    fc.option(fc.oneof(
      fc.constantFrom('Sat, 13 Sep 275760 00:00:00 GMT', 'Tue, 20 Apr -271821 00:00:00 GMT', 'Thu, 01 Jan 1970 00:00:00 GMT', 'Fri, 31 Dec 9999 23:59:59 GMT'),
      fc.date({ noInvalidDate: true }).map((date) => date.toUTCString()),
      headerText,
    )),
    fc.array(fc.tuple(fc.constantFrom('x-amzn-requestid', 'transfer-encoding', 'connection', 'x-junk'), fc.oneof(headerText, fc.constantFrom('chunked', 'close'))), { maxLength: 2 }),
  ).map(([type, errorType, date, more]) => [
    ...(type === null ? [] : [['content-type', type] as [string, string]]),
    ...(errorType === null ? [] : [['x-amzn-errortype', errorType] as [string, string]]),
    ...(date === null ? [] : [['date', date] as [string, string]]),
    ...more,
  ]),
  body,
  length: fc.constantFrom('true', 'true', 'true', 'short', 'long', 'none'),
  hang: fc.oneof({ weight: 49, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});

describe('fuzz: the commands client against a loopback service with fuzzed answers', () => {
  let server: Server;
  let port = 0;
  let answers: RawAnswer[] = [];
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      let seen = '';
      socket.on('data', (chunk) => {
        seen += chunk.toString('latin1');
        // Answer once the request's head and body are in (the client always sends Content-Length).
        const headEnd = seen.indexOf('\r\n\r\n');
        const length = /content-length: *(\d+)/i.exec(seen)?.[1];
        if (headEnd < 0 || length === undefined || seen.length < headEnd + 4 + Number(length)) return;
        seen = '';
        // The answers of one case in turn (a retry takes the next one); the last one again after that.
        const answer = answers.length > 1 ? answers.shift() : answers[0];
        if (!answer) return void socket.destroy();
        const bytes = Buffer.from(answer.body, 'utf8');
        const lengthHeader = answer.length === 'none' ? [] : [`content-length: ${answer.length === 'short' ? Math.max(0, bytes.length - 1) : answer.length === 'long' ? bytes.length + 10 : bytes.length}`];
        const head = [answer.statusLine, ...answer.headers.map(([name, value]) => `${name}: ${value}`), ...lengthHeader].join('\r\n');
        socket.write(Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), bytes]));
        if (!answer.hang) socket.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const budget = { runs: 300, timeMs: 5_000, caseTimeoutMs: 10_000 };

  it('every operation resolves to the model\'s shape or rejects with a ServiceError', { timeout: testTimeout(budget.timeMs) }, async () => {
    const calls = fc.array(fc.constantFrom(...OPERATIONS), { minLength: 1, maxLength: 3 });
    await fuzz(import.meta.url, fc.asyncProperty(calls, fc.array(rawAnswer, { minLength: 1, maxLength: 4 }), async (operations, scripted) => {
      answers = [...scripted];
      // A few calls on one client, so what one answer leaves behind (a clock correction from its Date) meets the next call;
      // a fresh client per case, so nothing leaks from one case into another.
      const client = new CommandsClient({
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
        credentials: { accessKeyId: 'AKIDFUZZ000000000001', secretAccessKey: 'fuzz/secret/key/0000000000000000000001' },
        agentVersion: 'OFFICIAL_1.8.1-fuzz',
        requestTimeoutMs: 200,
        maxAttempts: 2,
        pollAttempts: 1,
        retryBaseMs: 1,
        retryCapMs: 2,
        env: {},
      });
      try {
        for (const operation of operations) {
          const output = await settleOrTypedError(() => client.call(operation, { HostIdentifier: 'host', HostCommandIdentifier: 'id' }), [ServiceError]);
          if (output !== undefined) checkOutput(operation, output);
        }
      } finally {
        client.close();
      }
    }), budget);
  });
});
