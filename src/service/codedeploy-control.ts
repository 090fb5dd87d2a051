import {
  AddTagsToOnPremisesInstancesCommand,
  CodeDeployClient,
  DeregisterOnPremisesInstanceCommand,
  GetOnPremisesInstanceCommand,
  RegisterOnPremisesInstanceCommand,
  RemoveTagsFromOnPremisesInstancesCommand,
  type InstanceInfo,
  type Tag,
} from '@aws-sdk/client-codedeploy';
import type https from 'node:https';
import type { AwsCredentialIdentity } from '@smithy/types';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { registerSecret } from '../log/redact.js';
import { AgentError } from '../report/errors.js';
import { isUnreachable } from '../util/network-errors.js';
import { proxyFor } from './proxy.js';

/**
 * The CodeDeploy control plane (the public `CodeDeploy_20141006` API, not the agent's commands service):
 * only what on-premises registration needs. Thin on purpose; the CLI in cli/register.ts decides what to
 * call and what to write.
 */
export interface ControlClientOptions {
  region: string;
  /** Endpoint override (tests, VPC endpoints); default: the SDK's endpoint for the region. */
  endpoint?: string;
  /** Default: the SDK's credential chain (environment, shared files, instance profile, ...). */
  credentials?: AwsCredentialIdentity;
  /** `:proxy_uri:` of the agent configuration; without it HTTPS_PROXY / HTTP_PROXY of `env`, minus NO_PROXY hosts. */
  proxyUri?: string;
  env?: NodeJS.ProcessEnv;
}

export type OnPremisesTag = { Key: string; Value: string };

/** The proxy CodeDeploy is reached through, as for every other request of the agent (service/proxy.ts). */
export function controlProxy(options: ControlClientOptions): string | undefined {
  const endpoint = new URL(options.endpoint ?? `https://codedeploy.${options.region}.amazonaws.com`);
  return proxyFor(endpoint, options.proxyUri, options.env ?? process.env);
}

export function createControlClient(options: ControlClientOptions): CodeDeployClient {
  const proxy = controlProxy(options);
  let agent: HttpsProxyAgent<string> | undefined;
  if (proxy) {
    // Its password must never reach a message (a refused CONNECT, a network error).
    registerSecret(safeDecode(new URL(proxy).password));
    agent = new HttpsProxyAgent(proxy, { keepAlive: true });
  }
  return new CodeDeployClient({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: 10_000,
      requestTimeout: 30_000,
      ...(agent ? { httpAgent: agent, httpsAgent: agent as unknown as https.Agent } : {}),
    }),
  });
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The service (or the SDK on its way there) refused; the message says what to do about it. */
export class ControlPlaneError extends AgentError {
  readonly errorType: string;
  readonly operation: string;
  constructor(operation: string, errorType: string, message: string, options?: { cause?: unknown }) {
    super(message, undefined, options);
    this.operation = operation;
    this.errorType = errorType;
  }
}

export interface ErrorContext {
  operation: string;
  region: string;
  instanceName?: string;
  iamUserArn?: string;
  iamSessionArn?: string;
  endpoint?: string;
}

/** Turns an SDK failure into a message an operator can act on. */
export function describeControlError(error: unknown, context: ErrorContext): ControlPlaneError {
  const err = error as { name?: string; message?: string };
  const type = err.name ?? 'Error';
  const serviceMessage = err.message ?? String(error);
  const name = context.instanceName ? `"${context.instanceName}"` : 'the instance';
  const arn = context.iamUserArn ?? context.iamSessionArn;
  const where = `CodeDeploy in ${context.region}${context.endpoint ? ` (${context.endpoint})` : ''}`;
  let message: string;
  switch (type) {
    case 'InstanceNameAlreadyRegisteredException':
      message = `The instance name ${name} is already registered with ${where}. Choose another --instance-name, or deregister the old one first: codedeploy-agent deregister --instance-name ${context.instanceName ?? 'NAME'} --region ${context.region}`;
      break;
    case 'IamUserArnAlreadyRegisteredException':
    case 'IamSessionArnAlreadyRegisteredException':
      message = `The ARN ${arn} is already registered for another on-premises instance; every instance needs an IAM user or session ARN of its own.`;
      break;
    case 'InvalidIamUserArnException':
      message = `"${context.iamUserArn}" is not a valid IAM user ARN; it looks like arn:aws:iam::111122223333:user/CodeDeployUser-OnPrem.`;
      break;
    case 'InvalidIamSessionArnException':
      message = `"${context.iamSessionArn}" is not a valid IAM session ARN; it looks like arn:aws:sts::111122223333:assumed-role/CodeDeployInstanceRole/host-1 (the role and the session name).`;
      break;
    case 'IamArnRequiredException':
      message = 'CodeDeploy needs the IAM identity of the instance: pass --iam-user-arn or --iam-session-arn.';
      break;
    case 'MultipleIamArnsProvidedException':
      message = 'Pass either --iam-user-arn or --iam-session-arn, not both.';
      break;
    case 'InstanceNameRequiredException':
    case 'InvalidInstanceNameException':
      message = `${name} is not a valid on-premises instance name: ${serviceMessage}`;
      break;
    case 'InstanceNotRegisteredException':
      message = `No on-premises instance named ${name} is registered with ${where}.`;
      break;
    case 'InvalidTagException':
    case 'TagRequiredException':
    case 'TagLimitExceededException':
      message = `CodeDeploy refused the tags (${type}): ${serviceMessage}`;
      break;
    case 'InstanceLimitExceededException':
      message = `The account has reached its limit of on-premises instances in ${context.region}: ${serviceMessage}`;
      break;
    case 'AccessDeniedException':
      message = `Access denied: the AWS credentials used here may not call codedeploy:${context.operation} in ${context.region}. `
        + `Use credentials whose IAM policy allows it (these are the operator's credentials, not the instance's). Service said: ${serviceMessage}`;
      break;
    case 'UnrecognizedClientException':
    case 'InvalidClientTokenId':
      message = `The AWS access key used here is not valid (${type}): check AWS_ACCESS_KEY_ID / the profile in use.`;
      break;
    case 'InvalidSignatureException':
    case 'SignatureDoesNotMatch':
      message = `CodeDeploy rejected the request signature (${type}): check the secret access key and that this host's clock is right. Service said: ${serviceMessage}`;
      break;
    case 'ExpiredTokenException':
      message = 'The AWS session credentials used here have expired; refresh them and run the command again.';
      break;
    case 'CredentialsProviderError':
      message = 'No AWS credentials found to call CodeDeploy: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run this where an instance profile provides them.';
      break;
    default:
      if (isUnreachable(error)) {
        message = `Cannot reach ${where}: ${serviceMessage}`;
      } else {
        message = `${context.operation} failed: ${type}: ${serviceMessage}`;
      }
  }
  return new ControlPlaneError(context.operation, type, message, { cause: error });
}

async function call<T>(context: ErrorContext, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    throw describeControlError(error, context);
  }
}

export interface RegisterRequest {
  instanceName: string;
  iamUserArn?: string;
  iamSessionArn?: string;
}

export async function registerOnPremisesInstance(client: CodeDeployClient, request: RegisterRequest, context: Omit<ErrorContext, 'operation'>): Promise<void> {
  await call({ ...context, ...request, operation: 'RegisterOnPremisesInstance' }, () =>
    client.send(new RegisterOnPremisesInstanceCommand({
      instanceName: request.instanceName,
      ...(request.iamUserArn ? { iamUserArn: request.iamUserArn } : {}),
      ...(request.iamSessionArn ? { iamSessionArn: request.iamSessionArn } : {}),
    })));
}

export async function addTagsToOnPremisesInstance(client: CodeDeployClient, instanceName: string, tags: OnPremisesTag[], context: Omit<ErrorContext, 'operation'>): Promise<void> {
  await call({ ...context, instanceName, operation: 'AddTagsToOnPremisesInstances' }, () =>
    client.send(new AddTagsToOnPremisesInstancesCommand({ instanceNames: [instanceName], tags })));
}

export async function removeTagsFromOnPremisesInstance(client: CodeDeployClient, instanceName: string, tags: Tag[], context: Omit<ErrorContext, 'operation'>): Promise<void> {
  await call({ ...context, instanceName, operation: 'RemoveTagsFromOnPremisesInstances' }, () =>
    client.send(new RemoveTagsFromOnPremisesInstancesCommand({ instanceNames: [instanceName], tags })));
}

export async function getOnPremisesInstance(client: CodeDeployClient, instanceName: string, context: Omit<ErrorContext, 'operation'>): Promise<InstanceInfo> {
  const answer = await call({ ...context, instanceName, operation: 'GetOnPremisesInstance' }, () =>
    client.send(new GetOnPremisesInstanceCommand({ instanceName })));
  return answer.instanceInfo ?? { instanceName };
}

export async function deregisterOnPremisesInstance(client: CodeDeployClient, instanceName: string, context: Omit<ErrorContext, 'operation'>): Promise<void> {
  await call({ ...context, instanceName, operation: 'DeregisterOnPremisesInstance' }, () =>
    client.send(new DeregisterOnPremisesInstanceCommand({ instanceName })));
}
