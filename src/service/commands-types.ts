/**
 * The commands service's wire shapes (AWS JSON 1.1, PascalCase members as in the API model) and the
 * headers every request carries. The client (./commands-client.ts) sends them; the agent reads them.
 */
import type { Envelope } from '../report/diagnostics.js';

export type CommandStatus = 'Pending' | 'InProgress' | 'Succeeded' | 'Failed';

export interface HostCommandInstance {
  HostCommandIdentifier: string;
  HostIdentifier: string;
  DeploymentExecutionId: string;
  CommandName: string;
  Nonce?: number;
}

export interface DeploymentSpecificationOutput {
  /** Must be `CodeDeploy` (the poller checks). */
  DeploymentSystem?: string;
  DeploymentSpecification?: {
    GenericEnvelope?: Envelope;
    VariantId?: string;
    VariantEnvelope?: Envelope;
  };
}

export interface PollHostCommandOutput {
  HostCommand?: HostCommandInstance | null;
}

export interface CommandStatusOutput {
  CommandStatus?: CommandStatus;
}

export type CommandsOperation =
  | 'PollHostCommand'
  | 'GetDeploymentSpecification'
  | 'PutHostCommandAcknowledgement'
  | 'PutHostCommandComplete'
  | 'PostHostCommandUpdate';

export const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';
export const AGENT_VERSION_HEADER = 'x-amz-codedeploy-agent-version';
