import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeCommandsService, makeSpec, TEST_CREDENTIALS } from '../doubles/commands-service.js';
import { AGENT_BIN } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';

const tmp = makeTempDir('cda-daemon-');
let service: FakeCommandsService;
const hostIdentifier = 'arn:aws:iam::123456789012:user/onprem-test';

beforeAll(async () => {
  service = await FakeCommandsService.start({ longPollMs: 300 });
});
afterAll(async () => {
  await service.close();
  tmp.cleanup();
});

function writeAgentFiles(): string {
  const root = join(tmp.dir, 'root');
  const onprem = join(tmp.dir, 'onprem.yml');
  writeFileSync(onprem, [
    `aws_access_key_id: ${TEST_CREDENTIALS.accessKeyId}`,
    `aws_secret_access_key: ${TEST_CREDENTIALS.secretAccessKey}`,
    `iam_user_arn: ${hostIdentifier}`,
    'region: us-east-1',
  ].join('\n'));
  const config = join(tmp.dir, 'agent.yml');
  writeFileSync(config, [
    `:root_dir: ${root}`,
    `:log_dir: ${join(tmp.dir, 'log')}`,
    `:pid_dir: ${join(tmp.dir, 'pid')}`,
    `:on_premises_config_file: ${onprem}`,
    `:deploy_control_endpoint: ${service.url}`,
    ':wait_between_runs: 0.2',
    ':startup_splay_seconds: 0',
    ':verbose: true',
  ].join('\n'));
  return config;
}

function makeBundle(): string {
  const dir = join(tmp.dir, 'bundle');
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  writeFileSync(join(dir, 'index.html'), 'hello\n');
  writeFileSync(join(dir, 'scripts', 'hook.sh'), '#!/bin/sh\necho "$LIFECYCLE_EVENT $DEPLOYMENT_ID" >> "$(dirname "$0")/../../../../hooks.txt"\n');
  chmodSync(join(dir, 'scripts', 'hook.sh'), 0o755);
  const hooks = ['BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService']
    .map((e) => `  ${e}:\n    - location: scripts/hook.sh\n`).join('');
  writeFileSync(join(dir, 'appspec.yml'), `version: 0.0\nos: linux\nfiles:\n  - source: index.html\n    destination: ${join(tmp.dir, 'dest')}\nhooks:\n${hooks}`);
  return dir;
}

describe('daemon smoke', () => {
  it('runs a full in-place deployment of a Local Directory revision from the service double', async () => {
    const config = writeAgentFiles();
    const bundle = makeBundle();
    const spec = makeSpec({ revision: { RevisionType: 'Local Directory', LocalRevision: { Location: bundle, BundleType: 'directory' } } });
    const deployment = service.addDeployment({ hostIdentifier, spec });
    const agent = execa(process.execPath, [AGENT_BIN, 'run', '-c', config], { reject: false, all: true, env: { AWS_EC2_METADATA_DISABLED: 'true' } });
    let waitError: unknown;
    try {
      await service.waitForDeployment(deployment, 30_000);
    } catch (error) {
      waitError = error;
    } finally {
      agent.kill('SIGTERM');
    }
    const result = await agent;
    if (waitError) throw new Error(`${(waitError as Error).message}\nagent output:\n${String(result.all)}`);
    expect(result.exitCode, String(result.all)).toBe(0);
    expect(deployment.status).toBe('Succeeded');
    expect(deployment.commands.every((c) => c.completions.length === 1)).toBe(true);
    expect(readFileSync(join(tmp.dir, 'dest', 'index.html'), 'utf8')).toBe('hello\n');
  });
});
