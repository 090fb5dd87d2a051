import { chmodSync } from 'node:fs';
import { afterEach, beforeEach } from 'vitest';
import { makeTempDir } from '../helpers/tmp.js';
import { hookWorld, type HookWorld } from './fixtures.js';
import { killPid } from './proc.js';

export interface HookTestContext {
  world: HookWorld;
  /** Background processes a test deliberately leaves running; ended by pid after the test. */
  leftRunning: number[];
}

/** A fresh revision folder per test (mode 0755 so a runas user can reach it), cleaned up afterwards. */
export function useHookWorld(prefix: string): HookTestContext {
  const context = { leftRunning: [] } as unknown as HookTestContext;
  let cleanup: () => void = () => {};
  beforeEach(() => {
    const tmp = makeTempDir(prefix);
    chmodSync(tmp.dir, 0o755);
    cleanup = tmp.cleanup;
    context.world = hookWorld(tmp.dir);
    context.leftRunning = [];
  });
  afterEach(() => {
    for (const pid of context.leftRunning) killPid(pid);
    cleanup();
  });
  return context;
}
