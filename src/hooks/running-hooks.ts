import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import type { Logger } from '../log/logger.js';
import { identityOf, isProcessIdentity, isRunning, listProcesses, readProcessStat, thisProcess, type ProcessIdentity } from '../util/process-identity.js';
import { terminateProcessGroup } from './run-script-process.js';

/**
 * The hooks this agent has running, one small file each under ROOT/running-hooks, so that the next
 * start after a crash (`kill -9`, OOM killer) finds what it left behind and stops it before hooks of
 * that deployment group run again. A hook leads its own session and process group (run-script-process.ts);
 * a killed agent leaves that group running as an orphan, still busy with the old deployment, or blocked
 * writing to a pipe nobody reads.
 *
 * A record names the hook by pid and start time (and boot), so a pid the kernel has since given to some
 * other process is never taken for it; and it names the agent that ran it, so a `deploy` never stops the
 * hooks of a daemon that is alive (or the other way round). It is written when the hook starts and
 * removed when the hook is over. Applications a hook started in a session of their own (`setsid myapp`,
 * a daemon that detaches) are in no hook's process group and are never touched.
 */

export interface HookOrigin {
  group: string;
  deployment: string;
  /** The lifecycle event, or the operator hook point (`pre-event`...). */
  event: string;
  /** The appspec location, or the operator hook's path. */
  script: string;
}

export interface HookRecord extends HookOrigin {
  version: 1;
  /** The agent that started the hook. */
  agent: ProcessIdentity;
  /** The hook's first process: its pid is also its process group and session id. */
  hook: ProcessIdentity;
}

export class RunningHooks {
  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Records a hook that has just started; returns what removes the record. Never throws: a hook whose
   * record cannot be written still runs (only the clean-up after a crash would miss it), with a warning.
   */
  record(pid: number, origin: HookOrigin): (() => void) | undefined {
    const hook = identityOf(pid);
    // Gone already: nothing that could outlive the agent (its group, if any, is the application's).
    if (!hook) return undefined;
    const file = join(this.dir, recordName(hook));
    const record: HookRecord = { version: 1, ...origin, agent: thisProcess(), hook };
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      writeFileAtomicSync(file, `${JSON.stringify(record)}\n`, 0o644, { durable: false });
    } catch (error) {
      this.logger.warn(`Could not record the running hook ${origin.script} (pid ${pid}) in ${this.dir}: ${(error as Error).message}; if the agent is killed while it runs, the next start will not stop it`);
      return undefined;
    }
    return () => rmSync(file, { force: true });
  }

  /** Records of hooks whose agent is no longer running (unreadable ones are removed). */
  leftovers(): { file: string; record: HookRecord }[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const found: { file: string; record: HookRecord }[] = [];
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      const file = join(this.dir, name);
      const record = parseRecord(readOptional(file));
      if (!record) {
        this.logger.warn(`Removing ${file}: not a running-hook record`);
        rmSync(file, { force: true });
        continue;
      }
      if (!isRunning(record.agent)) found.push({ file, record });
    }
    return found;
  }

  /**
   * Stops every hook a dead agent left running (all at once, each TERM → grace → KILL), or only those of
   * the `groups` given; returns how many were still running. Records of hooks that are gone are removed.
   */
  async stopLeftovers(graceMs: number, groups?: ReadonlySet<string>): Promise<number> {
    const leftovers = this.leftovers().filter(({ record }) => groups === undefined || groups.has(record.group));
    const stopped = await Promise.all(leftovers.map(({ file, record }) => this.stopLeftover(file, record, graceMs)));
    return stopped.filter(Boolean).length;
  }

  private async stopLeftover(file: string, record: HookRecord, graceMs: number): Promise<boolean> {
    const pgid = record.hook.pid;
    const what = `hook ${record.script} of ${record.event} (deployment ${record.deployment}, group ${record.group}, process group ${pgid})`;
    if (!leftoverGroupRunning(record)) {
      rmSync(file, { force: true });
      return false;
    }
    this.logger.warn(
      `The ${what}, started by agent pid ${record.agent.pid} which stopped without ending it, is still running; stopping it before any hook of the group runs: SIGTERM to its process group, SIGKILL after ${graceMs / 1000} s`,
    );
    const killed = await terminateProcessGroup(pgid, graceMs, () => leftoverGroupRunning(record));
    this.logger.warn(killed ? `The ${what} did not stop after SIGTERM; its process group was killed (SIGKILL)` : `The ${what} stopped after SIGTERM`);
    rmSync(file, { force: true });
    return true;
  }
}

/** `<pid>-<start>.json`: unique among the hooks of one boot. */
function recordName(hook: ProcessIdentity): string {
  return `${hook.pid}-${hook.start}.json`;
}

/**
 * Whether the hook's process group still runs, and is the hook's. While the hook's first process
 * lives, its pid and start time say so. Once it has exited its group may live on in its children; the
 * kernel gives the id to no new process while any member of that group or session remains, so members
 * in the hook's own session (hooks lead theirs) that started no earlier than the hook are its own. The
 * one case this cannot tell apart needs the whole session to end, the pid counter to come round to
 * exactly this id, that process to call setsid and exit leaving children, all between the crash and the
 * next start; and a record from before a reboot is never acted on.
 */
export function leftoverGroupRunning(record: HookRecord): boolean {
  const { hook } = record;
  if (hook.boot !== thisProcess().boot) return false;
  // Never the agent's own group, whatever a record says.
  if (hook.pid === readProcessStat(process.pid)?.pgrp) return false;
  const leader = readProcessStat(hook.pid);
  if (leader && leader.start !== hook.start) return false;
  const members = listProcesses().filter((process) => process.pgrp === hook.pid);
  return members.length > 0 && members.every((member) => member.session === hook.pid && BigInt(member.start) >= BigInt(hook.start));
}

function parseRecord(text: string | undefined): HookRecord | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<HookRecord>;
    const strings = [value.group, value.deployment, value.event, value.script];
    if (value.version !== 1 || !strings.every((s) => typeof s === 'string') || !isProcessIdentity(value.agent) || !isProcessIdentity(value.hook)) return undefined;
    // A group names a folder of the deployment root (and its lock file): one plain name.
    if (!isFolderName(value.group as string)) return undefined;
    return value as HookRecord;
  } catch {
    return undefined;
  }
}

function isFolderName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
