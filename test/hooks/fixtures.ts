import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { HookScript } from '../../src/appspec/types.js';
import { ScriptError } from '../../src/report/errors.js';
import { runEventScripts, type RunEventScriptsOptions } from '../../src/hooks/run-event-scripts.js';
import { ScriptsLog } from '../../src/hooks/scripts-log.js';


export interface HookWorld {
  root: string;
  archiveDir: string;
  scriptsLogPath: string;
  deploymentsLogPath: string;
}

export function hookWorld(root: string): HookWorld {
  const archiveDir = join(root, 'deployment-archive');
  mkdirSync(archiveDir, { recursive: true });
  return {
    root,
    archiveDir,
    scriptsLogPath: join(root, 'logs', 'scripts.log'),
    deploymentsLogPath: join(root, 'deployment-logs', 'codedeploy-agent-deployments.log'),
  };
}

/** Writes an executable (by default) script into the revision. */
export function writeScript(world: HookWorld, location: string, body: string, mode = 0o755): string {
  const path = join(world.archiveDir, location);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, body.startsWith('#!') ? body : `#!/bin/bash\n${body}\n`);
  chmodSync(path, mode);
  return path;
}

export const HOOK_VARS = {
  LIFECYCLE_EVENT: 'BeforeInstall',
  DEPLOYMENT_ID: 'd-TEST12345',
  APPLICATION_NAME: 'app',
  DEPLOYMENT_GROUP_NAME: 'group',
  DEPLOYMENT_GROUP_ID: 'dg-1',
} satisfies Record<string, string>;

export type ScriptSpec = Pick<HookScript, 'location'> & Partial<HookScript>;

export async function runHooks(
  world: HookWorld,
  scripts: ScriptSpec[],
  extra: Partial<RunEventScriptsOptions> = {},
): Promise<{ logTail: string }> {
  const scriptsLog = extra.scriptsLog ?? ScriptsLog.open(world.scriptsLogPath, { deploymentsLogPath: world.deploymentsLogPath });
  try {
    return await runEventScripts({
      event: 'BeforeInstall',
      scripts: scripts.map((script) => ({ timeout: 30, sudo: false, ...script })),
      archiveDir: world.archiveDir,
      deploymentId: 'd-TEST12345',
      env: HOOK_VARS,
      killGraceMs: 1000,
      outputGraceMs: 1000,
      ...extra,
      scriptsLog,
    });
  } finally {
    if (!extra.scriptsLog) await scriptsLog.close();
  }
}

export async function runHooksFailing(world: HookWorld, scripts: ScriptSpec[], extra: Partial<RunEventScriptsOptions> = {}): Promise<ScriptError> {
  try {
    await runHooks(world, scripts, extra);
  } catch (error) {
    if (error instanceof ScriptError) return error;
    throw error;
  }
  throw new Error('expected the event to fail');
}

export function scriptsLogText(world: HookWorld): string {
  return readFileSync(world.scriptsLogPath, 'utf8');
}

export function readPid(path: string): number {
  return Number(readFileSync(path, 'utf8').trim());
}

/**
 * A script that ignores SIGTERM, as does a background child it starts. Its pid and the child's are
 * written to files (writable by any user, for runas) so the test can check both are gone.
 */
export function writeStubbornScript(world: HookWorld, location: string): { pidFile: string; childFile: string } {
  const pidFile = join(world.root, 'pid');
  const childFile = join(world.root, 'child');
  for (const file of [pidFile, childFile]) {
    writeFileSync(file, '');
    chmodSync(file, 0o666);
  }
  writeScript(world, location, [
    `echo $$ > ${pidFile}`,
    `(trap '' TERM; exec sleep 30) &`,
    `echo $! > ${childFile}`,
    `trap 'echo ignoring TERM' TERM`,
    'while true; do sleep 0.1; done',
  ].join('\n'));
  return { pidFile, childFile };
}
