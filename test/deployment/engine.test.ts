import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/config/agent-config.js';
import { runEvent, UnsupportedCommandError, type EngineContext } from '../../src/deployment/engine.js';
import type { DeploymentSpec } from '../../src/deployment/spec-types.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * `runEvent(spec, event)`, the one entry point the daemon calls per command, driven here the way the
 * daemon does (no localRun): which revision each event takes its scripts from (§3.7), including the
 * blue/green rollback mapping, and which commands it refuses.
 */
const tmp = makeTempDir('cda-engine-');
afterAll(tmp.cleanup);
const root = join(tmp.dir, 'root');
const recordFile = join(tmp.dir, 'record.txt');
const HOOK_EVENTS = [
  'BeforeBlockTraffic', 'AfterBlockTraffic', 'ApplicationStop', 'BeforeInstall', 'AfterInstall',
  'ApplicationStart', 'ValidateService', 'BeforeAllowTraffic', 'AfterAllowTraffic',
];

function context(localRun = false): EngineContext {
  const config = { ...defaultConfig(), root_dir: root };
  return { config, logger: new MemoryLogger(), localRun, baseEnv: { PATH: process.env.PATH, RECORD_FILE: recordFile } };
}

/** A revision folder whose every hook appends `event|revision|DEPLOYMENT_ID` to the record file. */
function revision(name: string): string {
  const dir = join(tmp.dir, name);
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  writeFileSync(join(dir, 'scripts', 'record.sh'), `#!/bin/sh\necho "$LIFECYCLE_EVENT|${name}|$DEPLOYMENT_ID" >> "$RECORD_FILE"\n`);
  chmodSync(join(dir, 'scripts', 'record.sh'), 0o755);
  const hooks = HOOK_EVENTS.map((event) => `  ${event}:\n    - location: scripts/record.sh\n`).join('');
  writeFileSync(join(dir, 'appspec.yml'), `version: 0.0\nos: linux\nhooks:\n${hooks}`);
  return dir;
}

function spec(deploymentId: string, location: string, extra: Partial<DeploymentSpec> = {}): DeploymentSpec {
  return {
    deploymentId,
    deploymentGroupId: 'group-1',
    deploymentGroupName: 'Group',
    applicationName: 'App',
    deploymentCreator: 'user',
    deploymentType: 'IN_PLACE',
    appSpecFilename: 'appspec.yml',
    revision: { type: 'Local Directory', location, bundleType: 'directory' },
    ...extra,
  };
}

/** Runs one event and returns the records it added. */
async function run(deployment: DeploymentSpec, event: string): Promise<string[]> {
  const before = existsSync(recordFile) ? readFileSync(recordFile, 'utf8') : '';
  await runEvent(deployment, event, context());
  const after = existsSync(recordFile) ? readFileSync(recordFile, 'utf8') : '';
  return after.slice(before.length).split('\n').filter(Boolean);
}

describe('runEvent: which revision an event runs from (§3.7)', () => {
  const v1 = spec('d-V1', '');
  const v2 = spec('d-V2', '');

  beforeAll(async () => {
    v1.revision = { type: 'Local Directory', location: revision('v1'), bundleType: 'directory' };
    v2.revision = { type: 'Local Directory', location: revision('v2'), bundleType: 'directory' };
    // The first deployment has no previous revision: the looking-back events do nothing.
    for (const event of ['BeforeBlockTraffic', 'AfterBlockTraffic', 'ApplicationStop']) {
      expect(await runEvent(v1, event, context())).toEqual({ noop: true, logTail: '' });
    }
    await runEvent(v1, 'DownloadBundle', context());
    await runEvent(v1, 'Install', context());
    // v2 was downloaded (most recent) but never installed: v1 stays the last successful install.
    await runEvent(v2, 'DownloadBundle', context());
  });

  it('an in-place deployment runs the block-traffic trio and ApplicationStop from the last successful revision', async () => {
    const next = spec('d-NEXT', join(tmp.dir, 'unused'));
    for (const event of ['BeforeBlockTraffic', 'AfterBlockTraffic', 'ApplicationStop']) {
      expect(await run(next, event)).toEqual([`${event}|v1|d-NEXT`]);
    }
  });

  it('a blue/green rollback runs the block-traffic pair from the most recent revision and the allow-traffic pair from the last successful one', async () => {
    const rollback = spec('d-ROLLBACK', join(tmp.dir, 'unused'), { deploymentCreator: 'codeDeployRollback', deploymentType: 'BLUE_GREEN' });
    expect(await run(rollback, 'BeforeBlockTraffic')).toEqual(['BeforeBlockTraffic|v2|d-ROLLBACK']);
    expect(await run(rollback, 'AfterBlockTraffic')).toEqual(['AfterBlockTraffic|v2|d-ROLLBACK']);
    expect(await run(rollback, 'ApplicationStop')).toEqual(['ApplicationStop|v1|d-ROLLBACK']);
    expect(await run(rollback, 'BeforeAllowTraffic')).toEqual(['BeforeAllowTraffic|v1|d-ROLLBACK']);
    expect(await run(rollback, 'AfterAllowTraffic')).toEqual(['AfterAllowTraffic|v1|d-ROLLBACK']);
  });

  it('an in-place rollback keeps the normal mapping', async () => {
    const rollback = spec('d-INPLACE', join(tmp.dir, 'unused'), { deploymentCreator: 'codeDeployRollback' });
    expect(await run(rollback, 'BeforeBlockTraffic')).toEqual(['BeforeBlockTraffic|v1|d-INPLACE']);
  });

  it('once the deployment has its own revision, every event runs from it', async () => {
    const v3 = spec('d-V3', revision('v3'), { deploymentCreator: 'codeDeployRollback', deploymentType: 'BLUE_GREEN' });
    await runEvent(v3, 'DownloadBundle', context());
    for (const event of ['BeforeBlockTraffic', 'ApplicationStop', 'AfterInstall', 'BeforeAllowTraffic']) {
      expect(await run(v3, event)).toEqual([`${event}|v3|d-V3`]);
    }
  });
});

describe('runEvent: commands it refuses', () => {
  it('the daemon runs only the known events; a local run also custom events in PascalCase', async () => {
    const deployment = spec('d-CUSTOM', join(tmp.dir, 'unused'));
    await expect(runEvent(deployment, 'MyCustomEvent', context())).rejects.toThrow(new UnsupportedCommandError('Unsupported command type: MyCustomEvent.'));
    await expect(runEvent(deployment, 'myCustomEvent', context(true))).rejects.toThrow('Received command is not in PascalCase form: myCustomEvent');
    // Refused before any folder is created (§3.1).
    expect(existsSync(join(root, 'group-1', 'd-CUSTOM'))).toBe(false);
  });
});
