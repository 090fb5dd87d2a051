/**
 * A faithful fake of the CodeDeploy commands service on 127.0.0.1 (random port), for driving the real
 * client and daemon in tests (agent-spec §1).
 *
 * - Every request is authenticated like the real service: SigV4 recomputed with the accepted credentials
 *   (test/doubles/sigv4-check.ts), then `X-Amz-Target`, `Content-Type` and the agent-version header are
 *   checked; failures answer with the AWS JSON error shape (`{"__type": "...#InvalidSignatureException", ...}`).
 * - The five operations with the model's shapes. Deployments are queued per host identifier; a
 *   deployment's commands are handed out one at a time in order, the next only after the previous one
 *   completed (or the acknowledgement said Succeeded/Failed). Different deployments run side by side.
 * - Specs are served as `PKCS7/JSON` signed with a test certificate, or tampered, or `TEXT/JSON`, or any
 *   envelope you give.
 * - Long polls are held (`longPollMs`) and answered early when a command becomes ready.
 * - Faults per operation for the next N calls: 5xx, throttling, hang (until the client gives up), reset.
 * - Everything is recorded: `requests`, `acks`, `completions` (with parsed diagnostics payloads).
 *
 * Typical use:
 *   const service = await FakeCommandsService.start();
 *   const deployment = service.addDeployment({ hostIdentifier, spec: makeSpec({ revision: ... }) });
 *   ... run the daemon with deploy_control_endpoint = service.url and TEST_CREDENTIALS ...
 *   await service.waitForDeployment(deployment);
 *   expect(deployment.commands.map((c) => c.status)).toEqual([...]);
 *   await service.close();
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { checkSigV4, type SigV4Credentials } from './sigv4-check.js';
import { signJson, type SigningIdentity } from './pkcs7.js';
import { DEFAULT_LIFECYCLE_EVENTS } from '../../src/appspec/events.js';

export const TEST_CREDENTIALS: SigV4Credentials = {
  accessKeyId: 'AKIAFAKECOMMANDS0001',
  secretAccessKey: 'fakeCommandsSecretKey/0123456789abcdefghij',
};

/** The service's commands for an in-place deployment, in lifecycle order (codedeploy-local uses the same list). */
export const DEFAULT_IN_PLACE_COMMANDS: readonly string[] = DEFAULT_LIFECYCLE_EVENTS;

export const OPERATIONS = [
  'PollHostCommand',
  'GetDeploymentSpecification',
  'PutHostCommandAcknowledgement',
  'PutHostCommandComplete',
  'PostHostCommandUpdate',
] as const;
export type Operation = (typeof OPERATIONS)[number];

const VARIANTS = {
  normal: { targetPrefix: 'CodeDeployCommandService_v20141006', signingName: 'codedeploy-commands' },
  secure: { targetPrefix: 'CodeDeployCommandService', signingName: 'codedeploy-commands-secure' },
} as const;

const CONTENT_TYPE = 'application/x-amz-json-1.1';
const NAMESPACE = 'com.amazonaws.codedeploy.commands';
const CORAL = 'com.amazon.coral.service';

export type AckStatus = 'Pending' | 'InProgress' | 'Succeeded' | 'Failed' | null;
export type CommandState = 'Pending' | 'Dispatched' | 'Acknowledged' | 'Succeeded' | 'Failed' | 'Skipped';
export type SpecFormat = 'PKCS7/JSON' | 'TEXT/JSON' | 'tampered';

export type Fault =
  | 'server-error'
  | 'throttle'
  | 'hang'
  | 'reset'
  | { status: number; errorType: string; message?: string };

export interface Envelope {
  Format?: string;
  Payload?: string;
}

export interface RecordedRequest {
  operation?: string;
  status: number;
  /** Parsed JSON body (undefined when not JSON). */
  body: unknown;
  headers: http.IncomingHttpHeaders;
  at: number;
  /** The error type answered, if any. */
  errorType?: string;
  fault?: string;
}

export interface RecordedAck {
  hostCommandIdentifier: string;
  commandName: string;
  deploymentId: string;
  diagnostics?: Envelope;
  /** `JSON.parse(Diagnostics.Payload)` when it parses. */
  payload?: unknown;
  /** What the fake answered as `CommandStatus`. */
  answered: AckStatus;
  at: number;
}

export interface RecordedCompletion {
  hostCommandIdentifier: string;
  commandName: string;
  deploymentId: string;
  commandStatus: string;
  diagnostics?: Envelope;
  payload?: unknown;
  at: number;
}

export interface FakeCommand {
  hostCommandIdentifier: string;
  commandName: string;
  deployment: FakeDeployment;
  status: CommandState;
  /** What the acknowledgement answers for this command. */
  ackStatus: AckStatus;
  acks: RecordedAck[];
  completions: RecordedCompletion[];
  dispatchedAt?: number;
}

export interface FakeDeployment {
  deploymentId: string;
  executionId: string;
  hostIdentifier: string;
  /** The JSON document inside the envelope. */
  spec: Record<string, unknown>;
  commands: FakeCommand[];
  status: 'InProgress' | 'Succeeded' | 'Failed';
}

export interface AddDeploymentOptions {
  hostIdentifier: string;
  /** The spec JSON object (see makeSpec); its DeploymentId is used unless `deploymentId` is given. */
  spec?: Record<string, unknown>;
  deploymentId?: string;
  /** Command names in lifecycle order. Default: DEFAULT_IN_PLACE_COMMANDS. */
  commands?: readonly string[];
  /** Default `PKCS7/JSON` (validly signed). */
  specFormat?: SpecFormat;
  /** Served verbatim as `GenericEnvelope` (null allowed), instead of one built from `spec`. */
  envelope?: Envelope | null;
  /** Answer `DeploymentSpecification: null`. */
  omitSpecification?: boolean;
  /** Default `CodeDeploy`. */
  deploymentSystem?: string;
  /** Acknowledgement answer for every command, or per command name; default: the service's `ackStatus`. */
  ackStatus?: AckStatus | Record<string, AckStatus>;
}

export interface FakeCommandsServiceOptions {
  credentials?: SigV4Credentials[];
  region?: string;
  variant?: 'normal' | 'secure';
  /** How long an empty poll is held, ms. Default 500. */
  longPollMs?: number;
  /** Default acknowledgement answer. Default `InProgress`. */
  ackStatus?: AckStatus;
  /** After a Failed command, skip the deployment's remaining commands (as the service does). Default true. */
  stopOnFailure?: boolean;
  /** Reject requests without `x-amz-codedeploy-agent-version`. Default true. */
  requireAgentVersion?: boolean;
  /** Signing identity for PKCS7 specs (default: the shared test identity). */
  signingIdentity?: SigningIdentity;
  /**
   * Keep only about this many of the latest `requests`, `acks` and `completions` (long bench runs that
   * would otherwise hold every request). Default: keep all.
   */
  keepRecords?: number;
  /** Called with each request's record as it arrives (its operation and body are known; the status is not yet). */
  onRequest?: (record: RecordedRequest) => void;
}

interface HeldPoll {
  hostIdentifier: string;
  wake: () => void;
}

let deploymentCounter = 0;

/** A deployment id like the service's: `d-` + 9 characters. */
export function fakeDeploymentId(): string {
  deploymentCounter += 1;
  return `d-TEST${String(deploymentCounter).padStart(5, '0')}`;
}

export interface SpecInput {
  deploymentId?: string;
  deploymentGroupId?: string;
  deploymentGroupName?: string;
  applicationName?: string;
  deploymentCreator?: string;
  deploymentType?: string;
  appSpecFilename?: string;
  fileExistsBehavior?: string;
  /** The `Revision` object as the service sends it; default an S3 tgz revision. */
  revision?: Record<string, unknown>;
  gitHubAccessToken?: string;
  /** Merged last, for anything else (or to break the spec on purpose). */
  extra?: Record<string, unknown>;
}

/** A deployment spec JSON object with the service's member names and sensible defaults. */
export function makeSpec(input: SpecInput = {}): Record<string, unknown> {
  const spec: Record<string, unknown> = {
    DeploymentId: input.deploymentId ?? fakeDeploymentId(),
    DeploymentGroupId: input.deploymentGroupId ?? 'a1b2c3d4-0000-4000-8000-00000000group',
    DeploymentGroupName: input.deploymentGroupName ?? 'test-group',
    ApplicationName: input.applicationName ?? 'test-app',
    DeploymentCreator: input.deploymentCreator ?? 'user',
    DeploymentType: input.deploymentType ?? 'IN_PLACE',
    AgentActionOverrides: { AgentOverrides: { FileExistsBehavior: input.fileExistsBehavior ?? 'DISALLOW' } },
    Revision: input.revision ?? { RevisionType: 'S3', S3Revision: { Bucket: 'test-bucket', Key: 'bundle.tgz', BundleType: 'tgz' } },
  };
  if (input.appSpecFilename) spec.AppSpecFilename = input.appSpecFilename;
  if (input.gitHubAccessToken) spec.GitHubAccessToken = input.gitHubAccessToken;
  return { ...spec, ...input.extra };
}

function parsePayload(diagnostics: Envelope | undefined): unknown {
  if (!diagnostics?.Payload) return undefined;
  try {
    return JSON.parse(diagnostics.Payload);
  } catch {
    return undefined;
  }
}

class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly errorType?: string,
  ) {}
}

function errorReply(status: number, namespace: string, type: string, message: string): Reply {
  return new Reply(status, { __type: `${namespace}#${type}`, message }, type);
}

export class FakeCommandsService {
  readonly requests: RecordedRequest[] = [];
  readonly acks: RecordedAck[] = [];
  readonly completions: RecordedCompletion[] = [];
  readonly deployments: FakeDeployment[] = [];
  credentials: SigV4Credentials[];
  region: string;
  longPollMs: number;
  ackStatus: AckStatus;
  stopOnFailure: boolean;
  requireAgentVersion: boolean;
  /** The fake's clock runs this far ahead of the host's (to test clock-skew correction). */
  clockOffsetMs = 0;
  readonly variant: 'normal' | 'secure';
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly held = new Set<HeldPoll>();
  private readonly faults = new Map<string, { fault: Fault; remaining: number }[]>();
  private readonly commandsById = new Map<string, FakeCommand>();
  private readonly envelopeOptions = new Map<FakeDeployment, AddDeploymentOptions>();
  private readonly envelopes = new Map<FakeDeployment, Promise<Envelope | null>>();
  private readonly signingIdentity?: SigningIdentity;
  private readonly listeners = new Set<() => void>();
  private readonly keepRecords: number;
  private readonly onRequest?: (record: RecordedRequest) => void;
  private port = 0;

  private constructor(options: FakeCommandsServiceOptions) {
    this.credentials = options.credentials ?? [TEST_CREDENTIALS];
    this.region = options.region ?? 'us-east-1';
    this.variant = options.variant ?? 'normal';
    this.longPollMs = options.longPollMs ?? 500;
    this.ackStatus = options.ackStatus === undefined ? 'InProgress' : options.ackStatus;
    this.stopOnFailure = options.stopOnFailure ?? true;
    this.requireAgentVersion = options.requireAgentVersion ?? true;
    this.signingIdentity = options.signingIdentity;
    this.keepRecords = options.keepRecords ?? Infinity;
    this.onRequest = options.onRequest;
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(options: FakeCommandsServiceOptions = {}): Promise<FakeCommandsService> {
    const service = new FakeCommandsService(options);
    await new Promise<void>((resolve) => service.server.listen(0, '127.0.0.1', resolve));
    service.port = (service.server.address() as AddressInfo).port;
    return service;
  }

  /** `http://127.0.0.1:<port>` — use as `deploy_control_endpoint`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get signingName(): string {
    return VARIANTS[this.variant].signingName;
  }

  get targetPrefix(): string {
    return VARIANTS[this.variant].targetPrefix;
  }

  /** Queues a deployment's commands for a host; returns the live record (its states update as the agent works). */
  addDeployment(options: AddDeploymentOptions): FakeDeployment {
    const spec = options.spec ?? makeSpec({ deploymentId: options.deploymentId });
    const rawId = String(options.deploymentId ?? spec.DeploymentId ?? fakeDeploymentId());
    const deploymentId = rawId.startsWith('arn:') ? rawId.slice(rawId.lastIndexOf('/') + 1) : rawId;
    const deployment: FakeDeployment = {
      deploymentId,
      executionId: `CodeDeploy/${this.region}/Prod/arn:aws:sds:${this.region}:123456789012:deployment/${deploymentId}`,
      hostIdentifier: options.hostIdentifier,
      spec,
      commands: [],
      status: 'InProgress',
    };
    const names = options.commands ?? DEFAULT_IN_PLACE_COMMANDS;
    names.forEach((commandName, index) => {
      const hostCommandIdentifier = Buffer.from(
        JSON.stringify(['com.amazon.apollo.deploycontrol.domain.HostCommandIdentifier', {
          deploymentId: deployment.executionId,
          hostId: options.hostIdentifier,
          commandName,
          commandPosition: index + 1,
          commandAttempt: 1,
          nonce: randomUUID(),
        }]),
      ).toString('base64');
      const ackStatus =
        options.ackStatus === undefined
          ? this.ackStatus
          : options.ackStatus === null || typeof options.ackStatus === 'string'
            ? options.ackStatus
            : options.ackStatus[commandName] === undefined
              ? this.ackStatus
              : options.ackStatus[commandName];
      const command: FakeCommand = { hostCommandIdentifier, commandName, deployment, status: 'Pending', ackStatus, acks: [], completions: [] };
      deployment.commands.push(command);
      this.commandsById.set(hostCommandIdentifier, command);
    });
    if (deployment.commands.length === 0) deployment.status = 'Succeeded';
    this.deployments.push(deployment);
    this.envelopeOptions.set(deployment, options);
    this.changed();
    return deployment;
  }

  /** The next `count` calls of `operation` (or of any operation with `*`) fail with `fault`. */
  injectFault(operation: Operation | '*', fault: Fault, count = 1): void {
    const list = this.faults.get(operation) ?? [];
    list.push({ fault, remaining: count });
    this.faults.set(operation, list);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Requests of one operation, in arrival order. */
  requestsFor(operation: Operation): RecordedRequest[] {
    return this.requests.filter((r) => r.operation === operation);
  }

  /** Resolves with the predicate's first truthy value; rejects after `timeoutMs` with what was seen so far. */
  waitFor<T>(predicate: () => T | undefined | null | false, timeoutMs = 10_000, description = 'condition'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): boolean => {
        const value = predicate();
        if (value) {
          cleanup();
          resolve(value);
          return true;
        }
        return false;
      };
      const cleanup = () => {
        clearTimeout(timer);
        clearInterval(ticker);
        this.listeners.delete(onChange);
      };
      const onChange = () => void check();
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${description}. Recent requests: ${this.summary()}`));
      }, timeoutMs);
      const ticker = setInterval(onChange, 25);
      this.listeners.add(onChange);
      check();
    });
  }

  /** Until the deployment has succeeded or failed. */
  waitForDeployment(deployment: FakeDeployment, timeoutMs = 30_000): Promise<FakeDeployment> {
    return this.waitFor(() => (deployment.status !== 'InProgress' ? deployment : undefined), timeoutMs, `deployment ${deployment.deploymentId} to finish`);
  }

  /** Until `count` completions (optionally matching) have been recorded; returns them. */
  waitForCompletions(count: number, match: (c: RecordedCompletion) => boolean = () => true, timeoutMs = 30_000): Promise<RecordedCompletion[]> {
    return this.waitFor(() => {
      const found = this.completions.filter(match);
      return found.length >= count ? found : undefined;
    }, timeoutMs, `${count} completion(s)`);
  }

  /** Until `count` requests of `operation` have arrived. */
  waitForRequests(operation: Operation, count = 1, timeoutMs = 10_000): Promise<RecordedRequest[]> {
    return this.waitFor(() => {
      const found = this.requestsFor(operation);
      return found.length >= count ? found : undefined;
    }, timeoutMs, `${count} ${operation} request(s)`);
  }

  async close(): Promise<void> {
    for (const poll of this.held) poll.wake();
    this.held.clear();
    for (const socket of this.sockets) socket.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * An outage: stops listening and cuts every open connection (held polls included), so clients see
   * resets and then refused connections. Deployments and records are kept for {@link comeBack}.
   */
  async goDown(): Promise<void> {
    await this.close();
  }

  /** Listens again on the same port after {@link goDown} (retrying briefly while the port is in TIME_WAIT or taken). */
  async comeBack(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await new Promise<void>((resolve, reject) => {
          const failed = (error: Error) => reject(error);
          this.server.once('error', failed);
          this.server.listen(this.port, '127.0.0.1', () => {
            this.server.off('error', failed);
            resolve();
          });
        });
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** Drops a finished deployment and its commands (long bench runs); later calls about it are refused as unknown. */
  forget(deployment: FakeDeployment): void {
    const index = this.deployments.indexOf(deployment);
    if (index >= 0) this.deployments.splice(index, 1);
    for (const command of deployment.commands) this.commandsById.delete(command.hostCommandIdentifier);
    this.envelopeOptions.delete(deployment);
    this.envelopes.delete(deployment);
  }

  /** Trims a record list to the latest `keepRecords` once it holds twice as many (amortised). */
  private record<T>(list: T[], item: T): void {
    list.push(item);
    if (list.length > 2 * this.keepRecords) list.splice(0, list.length - this.keepRecords);
  }

  private summary(): string {
    return this.requests.slice(-8).map((r) => `${r.operation ?? '?'}→${r.status}${r.errorType ? ` ${r.errorType}` : ''}`).join(', ') || '(none)';
  }

  private changed(): void {
    for (const poll of [...this.held]) poll.wake();
    for (const listener of [...this.listeners]) listener();
  }

  private takeFault(operation: string): Fault | undefined {
    for (const key of [operation, '*']) {
      const list = this.faults.get(key);
      const entry = list?.find((f) => f.remaining > 0);
      if (entry) {
        entry.remaining -= 1;
        if (entry.remaining === 0) list!.splice(list!.indexOf(entry), 1);
        return entry.fault;
      }
    }
    return undefined;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    let body: unknown;
    try {
      body = raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
    } catch {
      body = undefined;
    }
    const record: RecordedRequest = { status: 0, body, headers: req.headers, at: Date.now() };
    this.record(this.requests, record);
    const target = typeof req.headers['x-amz-target'] === 'string' ? req.headers['x-amz-target'] : undefined;
    if (target?.startsWith(`${this.targetPrefix}.`)) record.operation = target.slice(this.targetPrefix.length + 1);
    this.onRequest?.(record);

    const reply = await this.process(req, res, raw, body, record);
    if (reply === undefined) return; // hung or reset on purpose
    record.status = reply.status;
    record.errorType = reply.errorType;
    if (res.destroyed) return;
    const text = JSON.stringify(reply.body ?? {});
    res.writeHead(reply.status, {
      'content-type': CONTENT_TYPE,
      'content-length': Buffer.byteLength(text),
      'x-amzn-requestid': randomUUID(),
      date: new Date(Date.now() + this.clockOffsetMs).toUTCString(),
    });
    res.end(text);
    this.changed();
  }

  private async process(req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer, body: unknown, record: RecordedRequest): Promise<Reply | undefined> {
    const auth = checkSigV4(
      { method: req.method ?? '', url: req.url ?? '/', headers: req.headers, body: raw },
      { credentials: this.credentials, region: this.region, service: this.signingName, now: () => Date.now() + this.clockOffsetMs },
    );
    if (!auth.ok) return errorReply(auth.status, CORAL, auth.errorType, auth.message);
    if (req.method !== 'POST' || (req.url ?? '/') !== '/') {
      return errorReply(404, CORAL, 'UnknownOperationException', `No operation at ${req.method} ${req.url}`);
    }
    const contentType = req.headers['content-type'] ?? '';
    if (contentType.split(';')[0].trim() !== CONTENT_TYPE) {
      return errorReply(400, CORAL, 'UnknownOperationException', `Unsupported content type: ${contentType || '(none)'}`);
    }
    const operation = record.operation;
    if (!operation || !(OPERATIONS as readonly string[]).includes(operation)) {
      return errorReply(400, CORAL, 'UnknownOperationException', `Unknown X-Amz-Target: ${String(req.headers['x-amz-target'] ?? '(none)')}`);
    }
    if (this.requireAgentVersion && !req.headers['x-amz-codedeploy-agent-version']) {
      return errorReply(400, NAMESPACE, 'ClientException', 'Missing x-amz-codedeploy-agent-version header');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return errorReply(400, CORAL, 'SerializationException', 'The request body is not a JSON object');
    }

    const fault = this.takeFault(operation);
    if (fault !== undefined) {
      record.fault = typeof fault === 'string' ? fault : fault.errorType;
      switch (fault) {
        case 'server-error':
          return errorReply(500, NAMESPACE, 'ServerException', 'Internal failure (injected)');
        case 'throttle':
          return errorReply(400, 'com.amazon.coral.availability', 'ThrottlingException', 'Rate exceeded');
        case 'hang':
          record.status = -1;
          return undefined; // never answered; the socket closes when the client gives up or the fake closes
        case 'reset':
          record.status = -2;
          req.socket.destroy();
          return undefined;
        default:
          return errorReply(fault.status, NAMESPACE, fault.errorType, fault.message ?? `${fault.errorType} (injected)`);
      }
    }

    const input = body as Record<string, unknown>;
    switch (operation as Operation) {
      case 'PollHostCommand':
        return this.poll(input, res);
      case 'GetDeploymentSpecification':
        return this.getSpec(input);
      case 'PutHostCommandAcknowledgement':
        return this.acknowledge(input);
      case 'PutHostCommandComplete':
        return this.complete(input);
      case 'PostHostCommandUpdate':
        return this.update(input);
    }
  }

  private missing(input: Record<string, unknown>, members: string[]): Reply | undefined {
    for (const member of members) {
      if (typeof input[member] !== 'string' || input[member] === '') {
        return errorReply(400, NAMESPACE, 'ClientException', `Missing required member ${member}`);
      }
    }
    return undefined;
  }

  /** The next command ready for this host: per deployment, its first unfinished command if nothing of it is in flight. */
  private nextCommand(hostIdentifier: string): FakeCommand | undefined {
    for (const deployment of this.deployments) {
      if (deployment.hostIdentifier !== hostIdentifier || deployment.status !== 'InProgress') continue;
      const current = deployment.commands.find((c) => c.status !== 'Succeeded' && c.status !== 'Failed' && c.status !== 'Skipped');
      if (current?.status === 'Pending') return current;
    }
    return undefined;
  }

  private async poll(input: Record<string, unknown>, res: http.ServerResponse): Promise<Reply | undefined> {
    const invalid = this.missing(input, ['HostIdentifier']);
    if (invalid) return invalid;
    const hostIdentifier = input.HostIdentifier as string;
    const deadline = Date.now() + this.longPollMs;
    for (;;) {
      if (res.destroyed || res.socket?.destroyed) return undefined; // the client went away: hand nothing out
      const command = this.nextCommand(hostIdentifier);
      if (command) {
        command.status = 'Dispatched';
        command.dispatchedAt = Date.now();
        return new Reply(200, {
          HostCommand: {
            HostCommandIdentifier: command.hostCommandIdentifier,
            HostIdentifier: command.deployment.hostIdentifier,
            DeploymentExecutionId: command.deployment.executionId,
            CommandName: command.commandName,
            Nonce: Math.floor(Math.random() * 2 ** 31),
          },
        });
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) return new Reply(200, {});
      await new Promise<void>((resolve) => {
        const held: HeldPoll = {
          hostIdentifier,
          wake: () => {
            clearTimeout(timer);
            this.held.delete(held);
            res.off('close', held.wake);
            resolve();
          },
        };
        const timer = setTimeout(held.wake, remaining);
        this.held.add(held);
        res.on('close', held.wake);
      });
      // Let pending I/O (a client that just hung up) be noticed before a command is handed out on this
      // connection, so an aborted poll does not swallow a command.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  private envelopeFor(deployment: FakeDeployment): Promise<Envelope | null> {
    let envelope = this.envelopes.get(deployment);
    if (!envelope) {
      const options = this.envelopeOptions.get(deployment)!;
      envelope = (async () => {
        if (options.envelope !== undefined) return options.envelope;
        const json = JSON.stringify(deployment.spec);
        switch (options.specFormat ?? 'PKCS7/JSON') {
          case 'TEXT/JSON':
            return { Format: 'TEXT/JSON', Payload: json };
          case 'tampered':
            return { Format: 'PKCS7/JSON', Payload: await signJson(json, { tamper: true, identity: this.signingIdentity }) };
          default:
            return { Format: 'PKCS7/JSON', Payload: await signJson(json, { identity: this.signingIdentity }) };
        }
      })();
      this.envelopes.set(deployment, envelope);
    }
    return envelope;
  }

  private async getSpec(input: Record<string, unknown>): Promise<Reply> {
    const invalid = this.missing(input, ['DeploymentExecutionId', 'HostIdentifier']);
    if (invalid) return invalid;
    const deployment = this.deployments.find((d) => d.executionId === input.DeploymentExecutionId);
    if (!deployment) return errorReply(400, NAMESPACE, 'ClientException', `No deployment execution ${String(input.DeploymentExecutionId)}`);
    if (deployment.hostIdentifier !== input.HostIdentifier) {
      return errorReply(400, NAMESPACE, 'ClientException', `Host ${String(input.HostIdentifier)} is not part of ${deployment.executionId}`);
    }
    const options = this.envelopeOptions.get(deployment)!;
    const deploymentSystem = options.deploymentSystem ?? 'CodeDeploy';
    if (options.omitSpecification) return new Reply(200, { DeploymentSystem: deploymentSystem, DeploymentSpecification: null });
    return new Reply(200, {
      DeploymentSystem: deploymentSystem,
      DeploymentSpecification: { GenericEnvelope: await this.envelopeFor(deployment) },
    });
  }

  private commandFor(input: Record<string, unknown>): FakeCommand | Reply {
    const invalid = this.missing(input, ['HostCommandIdentifier']);
    if (invalid) return invalid;
    const command = this.commandsById.get(input.HostCommandIdentifier as string);
    if (!command) return errorReply(400, NAMESPACE, 'ClientException', 'Unknown HostCommandIdentifier');
    return command;
  }

  private finish(command: FakeCommand, status: 'Succeeded' | 'Failed'): void {
    const deployment = command.deployment;
    command.status = status;
    if (status === 'Failed') {
      if (this.stopOnFailure) {
        for (const c of deployment.commands) if (c.status === 'Pending') c.status = 'Skipped';
        deployment.status = 'Failed';
        return;
      }
    }
    const open = deployment.commands.some((c) => c.status !== 'Succeeded' && c.status !== 'Failed' && c.status !== 'Skipped');
    if (!open) deployment.status = deployment.commands.some((c) => c.status === 'Failed') ? 'Failed' : 'Succeeded';
  }

  private isOpen(command: FakeCommand): boolean {
    return command.status === 'Pending' || command.status === 'Dispatched' || command.status === 'Acknowledged';
  }

  private acknowledge(input: Record<string, unknown>): Reply {
    const command = this.commandFor(input);
    if (command instanceof Reply) return command;
    const diagnostics = input.Diagnostics as Envelope | undefined;
    const ack: RecordedAck = {
      hostCommandIdentifier: command.hostCommandIdentifier,
      commandName: command.commandName,
      deploymentId: command.deployment.deploymentId,
      diagnostics,
      payload: parsePayload(diagnostics),
      answered: command.ackStatus,
      at: Date.now(),
    };
    this.record(this.acks, ack);
    command.acks.push(ack);
    if (this.isOpen(command)) {
      if (command.ackStatus === 'Succeeded' || command.ackStatus === 'Failed') this.finish(command, command.ackStatus);
      else command.status = 'Acknowledged';
    }
    return new Reply(200, command.ackStatus === null ? {} : { CommandStatus: command.ackStatus });
  }

  private complete(input: Record<string, unknown>): Reply {
    const command = this.commandFor(input);
    if (command instanceof Reply) return command;
    const status = input.CommandStatus;
    if (status !== 'Succeeded' && status !== 'Failed' && status !== 'Pending' && status !== 'InProgress') {
      return errorReply(400, NAMESPACE, 'ClientException', `Invalid CommandStatus ${String(status)}`);
    }
    const diagnostics = input.Diagnostics as Envelope | undefined;
    const completion: RecordedCompletion = {
      hostCommandIdentifier: command.hostCommandIdentifier,
      commandName: command.commandName,
      deploymentId: command.deployment.deploymentId,
      commandStatus: status,
      diagnostics,
      payload: parsePayload(diagnostics),
      at: Date.now(),
    };
    this.record(this.completions, completion);
    command.completions.push(completion);
    // Later completions of a finished command (the anchor's second Complete(Failed)) are recorded only.
    if (this.isOpen(command) && (status === 'Succeeded' || status === 'Failed')) this.finish(command, status);
    return new Reply(200, {});
  }

  private update(input: Record<string, unknown>): Reply {
    const command = this.commandFor(input);
    if (command instanceof Reply) return command;
    const status = this.isOpen(command) ? 'InProgress' : command.status === 'Skipped' ? 'Failed' : command.status;
    return new Reply(200, { CommandStatus: status });
  }
}
