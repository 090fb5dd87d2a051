import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

/**
 * A loopback double of the CodeDeploy control plane (`CodeDeploy_20141006`, JSON 1.1) for on-premises
 * registration. Every request must carry a SigV4 signature for service `codedeploy` made with the known
 * test credentials: the double recomputes it with @smithy/signature-v4 over the headers the client signed
 * and answers InvalidSignatureException / UnrecognizedClientException as AWS would when it differs.
 */
export const TEST_CREDENTIALS = { accessKeyId: 'AKIDCONTROLTEST00001', secretAccessKey: 'control+plane/test/secret/key/000000000001' };

export interface InstanceRecord {
  instanceName: string;
  iamUserArn?: string;
  iamSessionArn?: string;
  instanceArn: string;
  registerTime: number;
  deregisterTime?: number;
  tags: { Key: string; Value: string }[];
}

export interface RecordedRequest {
  operation: string;
  body: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
}

export interface ControlPlaneDouble {
  endpoint: string;
  region: string;
  account: string;
  requests: RecordedRequest[];
  instances: Map<string, InstanceRecord>;
  /** Answer AccessDeniedException to this operation (the caller's IAM policy lacks it). */
  deny(operation: string): void;
  close(): Promise<void>;
}

const TARGET_PREFIX = 'CodeDeploy_20141006.';

class ServiceFault extends Error {
  constructor(readonly type: string, message: string, readonly status = 400) {
    super(message);
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => { text += chunk; });
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

/** `20240131T235959Z` → Date. */
function parseAmzDate(value: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) throw new ServiceFault('IncompleteSignatureException', `X-Amz-Date ${value} is not in the form YYYYMMDDTHHMMSSZ`);
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

async function checkSignature(req: IncomingMessage, body: string, region: string): Promise<void> {
  const authorization = req.headers.authorization ?? '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(authorization);
  if (!m) throw new ServiceFault('MissingAuthenticationTokenException', 'Missing Authentication Token', 400);
  const [, accessKeyId, , scopeRegion, scopeService, signedHeaders] = m;
  if (accessKeyId !== TEST_CREDENTIALS.accessKeyId) {
    throw new ServiceFault('UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
  if (scopeRegion !== region || scopeService !== 'codedeploy') {
    throw new ServiceFault('InvalidSignatureException', `Credential should be scoped to a valid region and service codedeploy, not ${scopeRegion}/${scopeService}.`);
  }
  const headers: Record<string, string> = {};
  for (const name of signedHeaders.split(';')) {
    const value = req.headers[name];
    if (value === undefined) throw new ServiceFault('InvalidSignatureException', `Signed header ${name} is missing.`);
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const url = new URL(req.url ?? '/', 'http://placeholder');
  const request = new HttpRequest({
    method: req.method,
    protocol: 'http:',
    hostname: (req.headers.host ?? '').replace(/:\d+$/, ''),
    path: url.pathname,
    headers,
    body,
  });
  const signer = new SignatureV4({ service: 'codedeploy', region, credentials: TEST_CREDENTIALS, sha256: Hash.bind(null, 'sha256') });
  const signed = await signer.sign(request, { signingDate: parseAmzDate(String(req.headers['x-amz-date'] ?? '')) });
  if (signed.headers.authorization !== authorization) {
    throw new ServiceFault('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.');
  }
}

const USER_ARN = /^arn:aws[a-z-]*:iam::\d{12}:user\/[\w+=,.@/-]+$/;
const SESSION_ARN = /^arn:aws[a-z-]*:sts::\d{12}:assumed-role\/[\w+=,.@-]+\/[\w+=,.@-]+$/;
const INSTANCE_NAME = /^[A-Za-z0-9_.@-]{1,100}$/;

export async function startControlPlaneDouble(options: { region?: string } = {}): Promise<ControlPlaneDouble> {
  const region = options.region ?? 'us-east-1';
  const account = '111122223333';
  const instances = new Map<string, InstanceRecord>();
  const requests: RecordedRequest[] = [];
  const denied = new Set<string>();

  const live = (name: unknown): InstanceRecord => {
    const record = typeof name === 'string' ? instances.get(name) : undefined;
    if (!record || record.deregisterTime !== undefined) {
      throw new ServiceFault('InstanceNotRegisteredException', 'The specified on-premises instance is not registered.');
    }
    return record;
  };
  const tagsOf = (body: Record<string, unknown>) => {
    const tags = body.tags as { Key?: string; Value?: string }[] | undefined;
    if (!Array.isArray(tags) || tags.length === 0) throw new ServiceFault('TagRequiredException', 'A tag was not specified.');
    return tags;
  };
  const namesOf = (body: Record<string, unknown>) => {
    const names = body.instanceNames as string[] | undefined;
    if (!Array.isArray(names) || names.length === 0) throw new ServiceFault('InstanceNameRequiredException', 'An on-premises instance name was not specified.');
    return names.map(live);
  };

  const operations: Record<string, (body: Record<string, unknown>) => unknown> = {
    RegisterOnPremisesInstance(body) {
      const name = body.instanceName;
      if (typeof name !== 'string' || name === '') throw new ServiceFault('InstanceNameRequiredException', 'An on-premises instance name was not specified.');
      if (!INSTANCE_NAME.test(name)) throw new ServiceFault('InvalidInstanceNameException', 'The on-premises instance name was specified in an invalid format.');
      const user = body.iamUserArn as string | undefined;
      const session = body.iamSessionArn as string | undefined;
      if (user && session) throw new ServiceFault('MultipleIamArnsProvidedException', 'Both an user ARN and a session ARN were included in the request. Use only one ARN type.');
      if (!user && !session) throw new ServiceFault('IamArnRequiredException', 'No IAM ARN was included in the request. You must use an IAM session ARN or user ARN in the request.');
      if (user && !USER_ARN.test(user)) throw new ServiceFault('InvalidIamUserArnException', 'The IAM user ARN was specified in an invalid format.');
      if (session && !SESSION_ARN.test(session)) throw new ServiceFault('InvalidIamSessionArnException', 'The IAM session ARN was specified in an invalid format.');
      const existing = instances.get(name);
      if (existing && existing.deregisterTime === undefined) throw new ServiceFault('InstanceNameAlreadyRegisteredException', 'The specified on-premises instance name is already registered.');
      for (const other of instances.values()) {
        if (other.deregisterTime !== undefined) continue;
        if (user && other.iamUserArn === user) throw new ServiceFault('IamUserArnAlreadyRegisteredException', 'The specified IAM user ARN is already registered with an on-premises instance.');
        if (session && other.iamSessionArn === session) throw new ServiceFault('IamSessionArnAlreadyRegisteredException', 'The request included an IAM session ARN that has already been used to register a different instance.');
      }
      instances.set(name, {
        instanceName: name,
        ...(user ? { iamUserArn: user } : { iamSessionArn: session }),
        instanceArn: `arn:aws:codedeploy:${region}:${account}:instance/${name}`,
        registerTime: Date.now() / 1000,
        tags: [],
      });
      return {};
    },
    AddTagsToOnPremisesInstances(body) {
      const tags = tagsOf(body);
      for (const record of namesOf(body)) {
        for (const tag of tags) {
          if (!tag.Key) throw new ServiceFault('InvalidTagException', 'The tag was specified in an invalid format.');
          record.tags = record.tags.filter((t) => t.Key !== tag.Key).concat([{ Key: tag.Key, Value: tag.Value ?? '' }]);
        }
      }
      return {};
    },
    RemoveTagsFromOnPremisesInstances(body) {
      const tags = tagsOf(body);
      for (const record of namesOf(body)) record.tags = record.tags.filter((t) => !tags.some((r) => r.Key === t.Key));
      return {};
    },
    GetOnPremisesInstance(body) {
      const record = typeof body.instanceName === 'string' ? instances.get(body.instanceName) : undefined;
      if (!record) throw new ServiceFault('InstanceNotRegisteredException', 'The specified on-premises instance is not registered.');
      return { instanceInfo: { ...record } };
    },
    DeregisterOnPremisesInstance(body) {
      const record = live(body.instanceName);
      record.deregisterTime = Date.now() / 1000;
      return {};
    },
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, payload: unknown) => {
      const text = JSON.stringify(payload);
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': `req-${requests.length}`, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    void (async () => {
      const text = await readBody(req);
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : target;
      let body: Record<string, unknown> = {};
      try {
        if (req.method !== 'POST') throw new ServiceFault('UnknownOperationException', `${req.method} is not supported`);
        if (!String(req.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.1')) {
          throw new ServiceFault('SerializationException', `Content-Type ${req.headers['content-type']} is not application/x-amz-json-1.1`);
        }
        body = text ? JSON.parse(text) : {};
        requests.push({ operation, body, headers: req.headers });
        await checkSignature(req, text, region);
        const handler = operations[operation];
        if (!target.startsWith(TARGET_PREFIX) || !handler) throw new ServiceFault('UnknownOperationException', `Unknown operation ${target}`);
        if (denied.has(operation)) {
          throw new ServiceFault('AccessDeniedException', `User: arn:aws:iam::${account}:user/operator is not authorized to perform: codedeploy:${operation} on resource: arn:aws:codedeploy:${region}:${account}:instance/* because no identity-based policy allows the codedeploy:${operation} action`);
        }
        reply(200, handler(body));
      } catch (error) {
        if (error instanceof ServiceFault) reply(error.status, { __type: error.type, message: error.message });
        else reply(500, { __type: 'InternalFailure', message: String(error) });
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region,
    account,
    requests,
    instances,
    deny: (operation) => denied.add(operation),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/**
 * The environment of an operator running `register`/`deregister` against the double: the test keys, and
 * nothing from this machine's ~/.aws, session or instance metadata (`home` holds the absent files).
 */
export function operatorEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_SESSION_TOKEN: '',
    AWS_PROFILE: '',
    AWS_CONFIG_FILE: join(home, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  };
}
