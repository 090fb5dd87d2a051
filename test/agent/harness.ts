/**
 * Drives the real `codedeploy-agent run` (the built CLI) against the commands-service double: a temporary
 * world (config, on-premises file, deployment root, bundles) and a handle on the running agent.
 *
 * Every agent started here has IMDS disabled (or pointed at a loopback double by the caller) and its
 * `:deploy_control_endpoint:` on 127.0.0.1, so no test talks to anything but loopback servers.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { expect } from 'vitest';
import type { FakeCommandsService, FakeDeployment, RecordedCompletion } from '../doubles/commands-service.js';
import { TEST_CREDENTIALS } from '../doubles/commands-service.js';
import type { SigV4Credentials } from '../doubles/sigv4-check.js';
import { AGENT_BIN } from '../helpers/cli.js';
import { writeAgentConfig, type ConfigValue } from '../helpers/agent-config.js';
import { makeTempDir } from '../helpers/tmp.js';

export type { ConfigValue };

/** Fast settings for tests: no splay, short waits, short grace periods, small backoffs. */
export const FAST_CONFIG: Record<string, ConfigValue> = {
  wait_between_runs: 0.1,
  startup_splay_seconds: 0,
  verbose: true,
  http_read_timeout: 2,
  wait_after_throttle_error: 0.2,
  wait_after_connection_problem: 0.2,
  max_poll_backoff_seconds: 0.5,
  hook_kill_grace_seconds: 0.5,
  hook_output_grace_seconds: 0.5,
  kill_agent_max_wait_time_seconds: 30,
};

export interface StartOptions {
  env?: Record<string, string>;
  /** Variables to leave out (e.g. AWS_EC2_METADATA_DISABLED, to let the agent reach an IMDS double). */
  unsetEnv?: string[];
}

/** A running agent process. */
export class RunningAgent {
  private output = '';
  readonly exited: Promise<{ exitCode: number | undefined; signal: string | undefined }>;

  constructor(readonly child: ResultPromise) {
    child.all?.on('data', (chunk: Buffer) => {
      this.output += chunk.toString('utf8');
    });
    this.exited = child.then((result) => ({ exitCode: result.exitCode, signal: result.signal ?? undefined }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Everything the agent wrote to stdout and stderr so far (its log lines go to stderr too). */
  get log(): string {
    return this.output;
  }

  signal(name: NodeJS.Signals): void {
    try {
      process.kill(this.pid, name);
    } catch {
      // already gone
    }
  }

  /** Waits until the agent's output matches `pattern`. */
  async waitForLog(pattern: RegExp | string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const test = () => (typeof pattern === 'string' ? this.output.includes(pattern) : pattern.test(this.output));
    while (!test()) {
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${String(pattern)} in the agent output:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** SIGTERM (unless already exited) and the exit status. */
  async stop(timeoutMs = 20_000): Promise<{ exitCode: number | undefined; signal: string | undefined }> {
    this.signal('SIGTERM');
    return this.waitForExit(timeoutMs);
  }

  async waitForExit(timeoutMs = 20_000): Promise<{ exitCode: number | undefined; signal: string | undefined }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.signal('SIGKILL');
        reject(new Error(`The agent did not exit within ${timeoutMs} ms; output:\n${this.output}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface HookSpec {
  /** Shell lines run by the hook (after the line that records the event). */
  body?: string;
  timeout?: number;
}

export interface BundleOptions {
  /** A word the hooks record, to tell revisions apart (`ApplicationStop rev1 d-…`). */
  label: string;
  /** Hooks of the appspec; default: every hook event with just the recording line. */
  hooks?: Record<string, HookSpec>;
  /** Extra files of the revision, relative path → content; installed to `<world>/dest`. */
  files?: Record<string, string>;
}

export const ALL_HOOK_EVENTS = ['ApplicationStop', 'BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService'];

/** A temporary host: config, on-premises identity, deployment root, bundles. */
export class AgentWorld {
  readonly dir: string;
  readonly root: string;
  readonly logDir: string;
  readonly pidDir: string;
  readonly dest: string;
  /** Every hook appends `<event> <label> <deployment id>` here. */
  readonly hookLog: string;
  readonly configFile: string;
  readonly onPremisesFile: string;
  private readonly cleanupDir: () => void;
  private readonly agents: RunningAgent[] = [];
  hostIdentifier = 'arn:aws:iam::123456789012:user/onprem-test';

  constructor(prefix = 'cda-agent-') {
    const tmp = makeTempDir(prefix);
    this.dir = tmp.dir;
    this.cleanupDir = tmp.cleanup;
    this.root = join(this.dir, 'root');
    this.logDir = join(this.dir, 'log');
    this.pidDir = join(this.dir, 'pid');
    this.dest = join(this.dir, 'dest');
    this.hookLog = join(this.dir, 'hooks.txt');
    this.configFile = join(this.dir, 'agent.yml');
    this.onPremisesFile = join(this.dir, 'codedeploy.onpremises.yml');
  }

  /** On-premises form 1: IAM user keys. */
  useIamUser(hostIdentifier: string, credentials: SigV4Credentials = TEST_CREDENTIALS): void {
    this.hostIdentifier = hostIdentifier;
    writeFileSync(this.onPremisesFile, [
      `aws_access_key_id: ${credentials.accessKeyId}`,
      `aws_secret_access_key: ${credentials.secretAccessKey}`,
      `iam_user_arn: ${hostIdentifier}`,
      'region: us-east-1',
    ].join('\n'));
  }

  /** On-premises form 2: an IAM session ARN and a credentials file someone else rotates. */
  useIamSession(hostIdentifier: string, credentialsFile: string): void {
    this.hostIdentifier = hostIdentifier;
    writeFileSync(this.onPremisesFile, [
      `iam_session_arn: ${hostIdentifier}`,
      `aws_credentials_file: ${credentialsFile}`,
      'region: us-east-1',
    ].join('\n'));
  }

  /** Writes the agent config: FAST_CONFIG, then `extra`; the endpoint is the double (or a proxy in front of it). */
  writeConfig(endpoint: string, extra: Record<string, ConfigValue> = {}): string {
    const values: Record<string, ConfigValue> = {
      root_dir: this.root,
      log_dir: this.logDir,
      pid_dir: this.pidDir,
      on_premises_config_file: this.onPremisesFile,
      deploy_control_endpoint: endpoint,
      ...FAST_CONFIG,
      ...extra,
    };
    return writeAgentConfig(this.configFile, values);
  }

  /** Starts `codedeploy-agent run -c <config>` with IMDS disabled unless the caller points it at a double. */
  start(options: StartOptions = {}): RunningAgent {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: this.dir,
      AWS_EC2_METADATA_DISABLED: 'true',
      ...options.env,
    };
    for (const name of options.unsetEnv ?? []) delete env[name];
    const child = execa(process.execPath, [AGENT_BIN, 'run', '-c', this.configFile], { reject: false, all: true, env, extendEnv: false });
    const agent = new RunningAgent(child);
    this.agents.push(agent);
    return agent;
  }

  /** A Local Directory revision whose hooks record themselves in `hookLog`. */
  makeBundle(options: BundleOptions): string {
    const dir = join(this.dir, `bundle-${options.label}`);
    mkdirSync(join(dir, 'scripts'), { recursive: true });
    const files = options.files ?? { 'index.html': `${options.label}\n` };
    for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content);
    const hooks: Record<string, HookSpec> = options.hooks ?? Object.fromEntries(ALL_HOOK_EVENTS.map((event) => [event, {}]));
    let hooksYaml = '';
    for (const [event, hook] of Object.entries(hooks)) {
      const script = join(dir, 'scripts', `${event}.sh`);
      writeFileSync(script, `#!/bin/sh\necho "$LIFECYCLE_EVENT ${options.label} $DEPLOYMENT_ID" >> '${this.hookLog}'\n${hook.body ?? ''}\n`);
      chmodSync(script, 0o755);
      hooksYaml += `  ${event}:\n    - location: scripts/${event}.sh\n${hook.timeout ? `      timeout: ${hook.timeout}\n` : ''}`;
    }
    const filesYaml = Object.keys(files).map((path) => `  - source: ${path}\n    destination: ${this.dest}\n`).join('');
    writeFileSync(join(dir, 'appspec.yml'), `version: 0.0\nos: linux\nfiles:\n${filesYaml}hooks:\n${hooksYaml}`);
    return dir;
  }

  /** The lines hooks recorded so far. */
  hookLines(): string[] {
    if (!existsSync(this.hookLog)) return [];
    return readFileSync(this.hookLog, 'utf8').split('\n').filter(Boolean);
  }

  /** The agent's own log file. */
  agentLog(): string {
    const file = join(this.logDir, 'codedeploy-agent.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  /** Kills what is still running (by pid) and removes the folder. */
  async cleanup(): Promise<void> {
    for (const agent of this.agents) {
      agent.signal('SIGKILL');
      await agent.exited.catch(() => undefined);
    }
    this.cleanupDir();
  }
}

/** A `Revision` object for a Local Directory bundle. */
export function localRevision(bundleDir: string): Record<string, unknown> {
  return { RevisionType: 'Local Directory', LocalRevision: { Location: bundleDir, BundleType: 'directory' } };
}

/**
 * Each command of the deployment has exactly one completion — or, where `lostAnswers` says the answer to
 * a completion was dropped on its way back, the same completion (status and diagnostics) delivered again
 * and nothing different. Returns the completions per command.
 */
export function expectCompletedOnce(deployment: FakeDeployment, options: { lostAnswers?: number } = {}): RecordedCompletion[][] {
  let duplicates = 0;
  for (const command of deployment.commands) {
    if (command.status === 'Skipped') {
      expect(command.completions, `${command.commandName} was skipped and must not be completed`).toHaveLength(0);
      continue;
    }
    const distinct = new Set(command.completions.map((c) => `${c.commandStatus} ${c.diagnostics?.Payload ?? ''}`));
    expect(distinct.size, `${command.commandName}: ${JSON.stringify(command.completions.map((c) => c.commandStatus))}`).toBe(1);
    duplicates += command.completions.length - 1;
  }
  expect(duplicates, 'repeated deliveries of a completion').toBe(options.lostAnswers ?? 0);
  return deployment.commands.map((c) => c.completions);
}

/** The diagnostics object of a completion (agent-spec §1.6). */
export interface DiagnosticsPayload {
  error_code: number;
  script_name: string;
  message: string;
  log: string;
}

export function payloadOf(completion: { payload?: unknown }): DiagnosticsPayload {
  return completion.payload as DiagnosticsPayload;
}

/** No request was refused for its signature, target or headers: every one was signed correctly. */
export function expectAllRequestsAuthenticated(service: FakeCommandsService): void {
  const refused = service.requests.filter((r) => r.errorType && !r.fault);
  expect(refused.map((r) => `${r.operation} ${r.status} ${r.errorType}`)).toEqual([]);
}

/** The health and metrics listener's `host:port`, from the agent's start-up line (the status file is rewritten later). */
export async function metricsAddressOf(agent: RunningAgent, timeoutMs = 15_000): Promise<string> {
  await agent.waitForLog('Health and metrics at', timeoutMs);
  const address = /Health and metrics at http:\/\/(\S+)\/healthz/.exec(agent.log)?.[1];
  if (address === undefined) throw new Error(`No listener address in the agent output:\n${agent.log}`);
  return address;
}

/** Waits for the deployment; on failure the error carries the agent's output. */
export async function waitForDeployment(service: FakeCommandsService, deployment: FakeDeployment, agent: RunningAgent, timeoutMs = 15_000): Promise<void> {
  try {
    await service.waitForDeployment(deployment, timeoutMs);
  } catch (error) {
    throw new Error(`${(error as Error).message}\nagent output:\n${agent.log}`);
  }
}
