import type { AwsCredentialIdentity } from '@smithy/types';
import type { AgentConfig } from '../config/agent-config.js';
import type { EngineContext } from '../deployment/engine.js';
import type { DeploymentSpec } from '../deployment/spec-types.js';
import type { Logger } from '../log/logger.js';
import { redact, registerSecret } from '../log/redact.js';
import { failureDiagnostics } from '../report/diagnostics.js';
import { ErrorCode } from '../report/error-codes.js';
import { AgentError, DeploymentSpecError } from '../report/errors.js';
import type { FromWorker, SpecEnvelope, ToWorker, WorkerCall, WorkerCredentials, WorkerFailure } from './command-worker-wire.js';

/** Progress messages at most this often (the daemon writes the status file at most once a second). */
const PROGRESS_EVERY_MS = 250;
/** Once the daemon is gone, the worker waits this long past the kill grace for its hooks to end. */
const ORPHAN_EXIT_SLACK_MS = 5_000;

/**
 * The daemon's command worker (`codedeploy-agent command-worker`, started by ./command-worker.ts over an
 * IPC channel; not for people): opens deployment specifications, answers IsCommandNoop and runs lifecycle
 * events, so the daemon itself never loads the S3 client, the PKCS7 check, the archive readers or the
 * install code (they stay in this process, which exits when idle). Its log lines go to the daemon, which
 * writes them to the agent log; hook output goes to scripts.log from here, as in `deploy`.
 *
 * When the daemon asks, a call's hooks are stopped (TERM, grace, KILL). When the daemon is gone (its IPC
 * channel closes: killed, or crashed) or this process is signalled, every running call's hooks are stopped
 * the same way and the worker exits.
 */
export async function serveCommands(): Promise<number> {
  const send = process.send?.bind(process);
  if (!send) {
    process.stderr.write('codedeploy-agent command-worker is started by `codedeploy-agent run`, not by hand\n');
    return 2;
  }
  const running = new Map<number, AbortController>();
  const credentialRequests = new Map<number, { resolve: (value: WorkerCredentials) => void; reject: (error: Error) => void }>();
  let nextRequest = 0;
  let killGraceMs = 0;
  const post = (message: FromWorker) => {
    if (process.connected) send(message);
  };
  /** The last call's `verbose`: debug lines the daemon would drop are not sent (the specification's is large). */
  let verbose = false;
  const logger: Logger = {
    debug: (message) => {
      if (verbose) post({ type: 'log', level: 'debug', message: redact(message) });
    },
    info: (message) => post({ type: 'log', level: 'info', message: redact(message) }),
    warn: (message) => post({ type: 'log', level: 'warn', message: redact(message) }),
    error: (message) => post({ type: 'log', level: 'error', message: redact(message) }),
  };
  const credentials = () => new Promise<AwsCredentialIdentity>((resolve, reject) => {
    const request = nextRequest++;
    credentialRequests.set(request, {
      resolve: (value) => {
        registerSecret(value.secretAccessKey);
        registerSecret(value.sessionToken);
        resolve(value);
      },
      reject,
    });
    post({ type: 'credentials', request });
  });

  let stopping = false;
  const stopAll = (why: string) => {
    if (stopping) return;
    stopping = true;
    for (const controller of running.values()) controller.abort(new AgentError(why));
    for (const pending of credentialRequests.values()) pending.reject(new AgentError(why));
    credentialRequests.clear();
    if (process.connected) process.disconnect();
    const exitWhenDone = () => {
      if (running.size === 0) process.exit(0);
    };
    exitWhenDone();
    setInterval(exitWhenDone, 100).unref();
    // Hooks get their grace; a call that does not settle after it does not keep the worker.
    setTimeout(() => process.exit(0), killGraceMs + ORPHAN_EXIT_SLACK_MS).unref();
  };
  process.on('disconnect', () => stopAll('the agent stopped'));
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => stopAll(`the command worker received ${signal}`));

  const call = async (message: WorkerCall) => {
    const controller = new AbortController();
    running.set(message.id, controller);
    killGraceMs = Math.max(killGraceMs, message.config.hook_kill_grace_seconds * 1000);
    verbose = message.config.verbose;
    try {
      const value = await perform(message, { logger, credentials, signal: controller.signal, post });
      post({ type: 'result', id: message.id, value });
    } catch (error) {
      post({ type: 'result', id: message.id, failure: describeFailure(error) });
    } finally {
      running.delete(message.id);
    }
  };

  process.on('message', (message: ToWorker) => {
    switch (message.type) {
      case 'secrets':
        for (const value of message.values) registerSecret(value);
        return;
      case 'abort':
        running.get(message.id)?.abort(new AgentError('the agent is stopping'));
        return;
      case 'credentials': {
        const pending = credentialRequests.get(message.request);
        credentialRequests.delete(message.request);
        if (message.value) pending?.resolve(message.value);
        else pending?.reject(new AgentError(message.error ?? 'no credentials'));
        return;
      }
      default:
        if (stopping) return;
        void call(message);
    }
  });
  // Every command needs this code (the specification, then IsCommandNoop): loaded while the daemon is still
  // fetching the specification. A call that comes first waits for the same imports.
  void Promise.all([import('../deployment/envelope.js'), import('../deployment/spec.js'), import('../deployment/engine.js')]).catch(() => {});
  // Lives as long as the IPC channel is open (the daemon closes it when the worker has been idle a while).
  return new Promise<number>(() => {});
}

interface CallContext {
  logger: Logger;
  credentials: () => Promise<AwsCredentialIdentity>;
  signal: AbortSignal;
  post: (message: FromWorker) => void;
}

async function perform(message: WorkerCall, context: CallContext): Promise<DeploymentSpec | boolean | import('../deployment/engine.js').EventResult> {
  switch (message.type) {
    case 'open-spec':
      return openSpecification(message.envelope, message.deploymentExecutionId, message.config, context.logger);
    case 'is-noop': {
      const { isCommandNoop } = await import('../deployment/engine.js');
      return isCommandNoop(message.spec, message.event, engineContext(message.config, context, message.id));
    }
    case 'run-event': {
      const { runEvent } = await import('../deployment/engine.js');
      return runEvent(message.spec, message.event, engineContext(message.config, context, message.id, message.region));
    }
  }
}

function engineContext(config: AgentConfig, context: CallContext, id: number, region?: string): EngineContext {
  const { post } = context;
  let lastProgress = 0;
  return {
    config,
    logger: context.logger,
    signal: context.signal,
    localRun: false,
    aws: { region, credentials: context.credentials },
    onScriptStart: (event, location) => post({ type: 'script-start', id, event, location }),
    onDownloaded: (record) => post({ type: 'downloaded', id, record }),
    onOperatorHook: (point, outcome) => post({ type: 'operator-hook', id, point, outcome }),
    onProgress: ({ bytes, total }) => {
      const now = Date.now();
      if (now - lastProgress < PROGRESS_EVERY_MS && bytes !== total) return;
      lastProgress = now;
      post({ type: 'progress', id, bytes, total });
    },
  };
}

/** Opens and checks the signed deployment specification (PKCS7 code is loaded here only), and parses it. */
async function openSpecification(envelope: SpecEnvelope, executionId: string, config: AgentConfig, logger: Logger): Promise<DeploymentSpec> {
  const { openEnvelope } = await import('../deployment/envelope.js');
  const { parseDeploymentSpec, redactedSpecJson } = await import('../deployment/spec.js');
  const opened = await openEnvelope(envelope, { allowText: false });
  // As AWS's agent: the parsed specification at debug level, GitHub tokens masked.
  logger.debug(`Deployment specification of ${executionId}: ${redactedSpecJson(opened.json)}`);
  if (opened.signature === 'invalid' || opened.signature === 'unsigned') {
    // A SignedData without signers proves nothing either: enforcement refuses both.
    const message = opened.signature === 'unsigned'
      ? `The deployment specification of ${executionId} is not signed`
      : `The deployment specification of ${executionId} has a signature that does not verify${opened.signer ? ` (signer ${opened.signer})` : ''}${opened.signatureProblem ? `: ${opened.signatureProblem}` : ''}`;
    if (config.enforce_deployment_spec_signature) throw new DeploymentSpecError(`${message}; refused because enforce_deployment_spec_signature is true`);
    logger.warn(`${message}; accepted because enforce_deployment_spec_signature is false`);
  } else {
    logger.info(`Deployment specification signature: ${opened.signature}${opened.signer ? ` (signer ${opened.signer})` : ''}`);
  }
  return parseDeploymentSpec(opened.json);
}

/** The error as the daemon rebuilds it: the diagnostics are made here, from the error itself. */
function describeFailure(error: unknown): WorkerFailure {
  const message = error instanceof Error ? error.message : String(error);
  return {
    name: error instanceof Error ? error.name : 'Error',
    message,
    code: error instanceof AgentError ? error.code : ErrorCode.UnknownError,
    diagnostics: failureDiagnostics(error),
  };
}
