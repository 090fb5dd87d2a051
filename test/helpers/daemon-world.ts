/**
 * The set-up every daemon test shares: the commands-service double, started before a file's first test
 * and closed after its last, and AgentWorlds (temporary hosts running the real `codedeploy-agent run`),
 * each removed with its agents after the test that made it (or after the file, when made in `beforeAll`).
 * Between tests the double forgets the requests it saw and its per-test settings (faults, accepted
 * credentials, stop-on-failure) go back to their defaults.
 *
 *   import { newWorld, service, useDaemonWorld, world } from '../helpers/daemon-world.js';
 *   useDaemonWorld('deployment');
 *   it('…', async () => { newWorld(); const agent = world.start(); service.addDeployment(…); });
 *
 * `service` and `world` are live bindings: the double of this file and the world the test made last.
 */
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { AgentWorld, type ConfigValue } from '../agent/harness.js';
import { FakeCommandsService, TEST_CREDENTIALS } from '../doubles/commands-service.js';
import type { SigV4Credentials } from '../doubles/sigv4-check.js';

export let service: FakeCommandsService;
export let world: AgentWorld;

export interface DaemonWorldOptions {
  /** How long the double holds a long poll (default 300 ms). */
  longPollMs?: number;
  /** Config keys every world of the file gets, over the harness's fast settings. */
  config?: Record<string, ConfigValue>;
}

export interface NewWorldOptions {
  /** `:deploy_control_endpoint:`; default the double (or, say, a proxy in front of it). */
  endpoint?: string;
  /**
   * How the host is registered: an IAM user of its own (default: a fresh ARN per world, signing with
   * the keys the double accepts), or `false` for a host with no on-premises file yet.
   */
  iamUser?: { arn?: string; credentials?: SigV4Credentials } | false;
}

let name = 'daemon';
let fileConfig: Record<string, ConfigValue> = {};
let hosts = 0;
let inTest = false;
const testWorlds: AgentWorld[] = [];
const fileWorlds: AgentWorld[] = [];

/** Registers the hooks; `label` names the temporary folders (`cda-<label>-`) and hosts (`<label>-test-<n>`). */
export function useDaemonWorld(label: string, options: DaemonWorldOptions = {}): void {
  name = label;
  fileConfig = options.config ?? {};
  beforeAll(async () => {
    service = await FakeCommandsService.start({ longPollMs: options.longPollMs ?? 300 });
  });
  beforeEach(() => {
    inTest = true;
  });
  afterEach(async () => {
    inTest = false;
    service.clearFaults();
    service.credentials = [TEST_CREDENTIALS];
    service.stopOnFailure = true;
    for (const made of testWorlds.splice(0)) await made.cleanup();
    // Each test judges its own requests: a poll refused in one test is that test's business.
    service.requests.length = 0;
  });
  afterAll(async () => {
    for (const made of fileWorlds.splice(0)) await made.cleanup();
    await service?.close();
  });
}

/** A fresh host for this test (or this file, from `beforeAll`): registered, configured for the double, `config` on top. */
export function newWorld(config: Record<string, ConfigValue> = {}, options: NewWorldOptions = {}): AgentWorld {
  world = new AgentWorld(`cda-${name}-`);
  (inTest ? testWorlds : fileWorlds).push(world);
  if (options.iamUser !== false) {
    hosts += 1;
    world.useIamUser(options.iamUser?.arn ?? `arn:aws:iam::123456789012:user/${name}-test-${hosts}`, options.iamUser?.credentials ?? TEST_CREDENTIALS);
  }
  world.writeConfig(options.endpoint ?? service.url, { ...fileConfig, ...config });
  return world;
}
