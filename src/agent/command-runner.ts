import type { AgentConfig } from '../config/agent-config.js';
import type { Logger } from '../log/logger.js';
import { ackDiagnostics, failureDiagnostics, noopCompletionDiagnostics, successDiagnostics, type Envelope } from '../report/diagnostics.js';
import { DeploymentSpecError } from '../report/errors.js';
import { formatMs } from '../util/duration.js';
import type { DeploymentSpec } from '../deployment/spec-types.js';
import type { EventResult } from '../deployment/engine.js';
import type { SpecEnvelope } from './command-worker-wire.js';
import type { CommandTracker } from './command-tracker.js';
import type { CompletionOutbox } from './completion-outbox.js';
import type { KeyedMutex } from './concurrency.js';

/** A polled command, as the service sends it (HostCommandInstance). */
export interface HostCommand {
  HostCommandIdentifier: string;
  HostIdentifier?: string;
  DeploymentExecutionId?: string;
  CommandName?: string;
  Nonce?: number;
}

/** What the command runner needs of the commands client (the real client satisfies it). */
export interface CommandsApi {
  getDeploymentSpecification(deploymentExecutionId: string, hostIdentifier: string): Promise<{
    DeploymentSystem?: string;
    DeploymentSpecification?: { GenericEnvelope?: { Format?: string; Payload?: string } | null } | null;
  }>;
  putHostCommandAcknowledgement(hostCommandIdentifier: string, diagnostics?: Envelope): Promise<{ CommandStatus?: string }>;
  putHostCommandComplete(hostCommandIdentifier: string, status: 'Succeeded' | 'Failed', diagnostics?: Envelope): Promise<unknown>;
}

export interface CommandRunnerDeps {
  config: AgentConfig;
  logger: Logger;
  api: CommandsApi;
  hostIdentifier: string;
  tracker: CommandTracker;
  outbox: CompletionOutbox;
  /** Delivers a decided completion (retrying until it lands or the agent stops). */
  deliver: (hostCommandIdentifier: string) => Promise<void>;
  /** Where specifications are opened and events run: the daemon's command worker (./command-worker.ts). */
  events: CommandEvents;
  /** Commands of one deployment group never overlap (the pointer and cleanup files are per group, §10.17). */
  groupLock: KeyedMutex;
  /** Called as the command moves along, for the status file. */
  onProgress?: (command: HostCommand, update: { spec?: DeploymentSpec; phase: string }) => void;
}

/** The work on a command that needs the deployment code (the PKCS7 check, the engine). */
export interface CommandEvents {
  /** Opens, checks and parses the specification in a GetDeploymentSpecification answer. */
  openSpec(command: HostCommand, envelope: SpecEnvelope): Promise<DeploymentSpec>;
  /** Whether the command would do nothing (agent-spec §3.2), sent with the acknowledgement. */
  isNoop(command: HostCommand, spec: DeploymentSpec): Promise<boolean>;
  /** Runs the command's lifecycle event; throws the typed error it failed with. */
  run(command: HostCommand, spec: DeploymentSpec): Promise<EventResult>;
}

export interface CommandOutcome {
  status: 'Succeeded' | 'Failed' | 'NotRun';
  spec?: DeploymentSpec;
  diagnostics?: Envelope;
  error?: unknown;
}

/** Fetches the deployment specification (§1.5 step 1, §2.1); the command worker opens and checks it. */
async function fetchSpec(deps: CommandRunnerDeps, command: HostCommand): Promise<DeploymentSpec> {
  const response = await deps.api.getDeploymentSpecification(command.DeploymentExecutionId ?? '', deps.hostIdentifier);
  if (response.DeploymentSystem !== 'CodeDeploy') {
    throw new DeploymentSpecError(`Deployment System mismatch: CodeDeploy != ${response.DeploymentSystem}`);
  }
  if (!response.DeploymentSpecification) throw new DeploymentSpecError('Deployment Specification missing');
  return deps.events.openSpec(command, response.DeploymentSpecification.GenericEnvelope);
}

/**
 * One command, start to end (agent-spec §1.5): spec → noop check → acknowledge → obey the returned
 * status → run through the engine → complete exactly once. The completion is decided here and handed
 * to the outbox; `deliver` sends it.
 */
export async function runCommand(deps: CommandRunnerDeps, command: HostCommand): Promise<CommandOutcome> {
  const { logger, api } = deps;
  const id = command.HostCommandIdentifier;
  let decided = false;
  let trackedDeployment: string | undefined;
  const decide = async (status: 'Succeeded' | 'Failed', diagnostics: Envelope) => {
    decided = true;
    deps.outbox.put({ hostCommandIdentifier: id, status, diagnostics, decidedAt: new Date().toISOString() });
    // The result is on disk: from now on a restart delivers it instead of failing the command with code 7.
    if (trackedDeployment !== undefined) deps.tracker.finish(trackedDeployment);
    trackedDeployment = undefined;
    await deps.deliver(id);
  };

  let spec: DeploymentSpec | undefined;
  let acknowledged = false;
  const started = Date.now();
  const took = () => formatMs(Date.now() - started);
  let releaseGroup: (() => void) | undefined;
  try {
    spec = await fetchSpec(deps, command);
    const releaseInProcess = await deps.groupLock.acquire(spec.deploymentGroupId);
    releaseGroup = releaseInProcess;
    deps.onProgress?.(command, { spec, phase: 'acknowledging' });
    const noop = await deps.events.isNoop(command, spec);
    const ack = await api.putHostCommandAcknowledgement(id, ackDiagnostics(noop));
    acknowledged = true;
    logger.info(`${command.CommandName} of ${spec.deploymentId}: acknowledged (IsCommandNoop ${noop}); service says ${ack.CommandStatus ?? 'nothing'}`);
    if (ack.CommandStatus === 'Succeeded') return { status: 'NotRun', spec };
    if (ack.CommandStatus === 'Failed') {
      // §1.5: re-read the spec; a command that would do nothing is completed as a no-op, otherwise left alone.
      const again = await fetchSpec(deps, command);
      if (await deps.events.isNoop(command, again)) {
        await decide('Succeeded', noopCompletionDiagnostics());
        return { status: 'Succeeded', spec: again };
      }
      return { status: 'NotRun', spec: again };
    }

    // Across processes too, from here to the completion: a local `deploy` of this group is refused while
    // the command runs, and the command fails, naming the holder, while a `deploy` runs. Taken after the
    // acknowledgement, so the lock's few milliseconds never delay it.
    const { lockDeploymentGroup } = await import('../deployment/group-lock.js');
    const crossProcess = await lockDeploymentGroup(deps.config.root_dir, spec.deploymentGroupId);
    releaseGroup = () => {
      crossProcess.release();
      releaseInProcess();
    };
    deps.tracker.start(spec.deploymentId, id);
    trackedDeployment = spec.deploymentId;
    try {
      deps.onProgress?.(command, { spec, phase: 'running' });
      const { DeploymentRecorder } = await import('../deployment/deployment-record.js');
      // For `codedeploy-agent logs`: which deployments ran here, how each event went, which one runs now.
      const recorder = new DeploymentRecorder(deps.config.root_dir, spec, 'daemon', (message) => logger.warn(message));
      const event = command.CommandName ?? '';
      recorder.eventStarted(event);
      let result;
      try {
        result = await deps.events.run(command, spec);
      } catch (error) {
        recorder.eventFinished(event, 'Failed', { error });
        throw error;
      }
      recorder.eventFinished(event, 'Succeeded', { noop: result.noop });
      const diagnostics = successDiagnostics(result.logTail);
      await decide('Succeeded', diagnostics);
      logger.info(`${command.CommandName} of ${spec.deploymentId}: end of lifecycle event, Succeeded in ${took()}`);
      return { status: 'Succeeded', spec, diagnostics };
    } finally {
      if (trackedDeployment !== undefined) deps.tracker.finish(trackedDeployment);
      trackedDeployment = undefined;
    }
  } catch (error) {
    const diagnostics = failureDiagnostics(error);
    const message = error instanceof Error ? error.message : String(error);
    logger.error(`${command.CommandName ?? '(no name)'} of ${spec?.deploymentId ?? command.DeploymentExecutionId}: end of lifecycle event, Failed${acknowledged ? '' : ' before acknowledgement'} in ${took()}: ${message}`);
    if (!decided) await decide('Failed', diagnostics);
    return { status: 'Failed', spec, diagnostics, error };
  } finally {
    releaseGroup?.();
  }
}
