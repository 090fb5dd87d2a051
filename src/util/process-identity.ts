import { readdirSync, readFileSync } from 'node:fs';

/**
 * Which process a pid is, from /proc: a pid alone is reused once its process is gone, but a pid with
 * its start time (field 22 of /proc/<pid>/stat, clock ticks since boot) and the boot id names one
 * process for ever. That is what the agent records about itself and its hooks, so that after a crash
 * the next start tells a survivor from a stranger that got the same number.
 */

export interface ProcessIdentity {
  pid: number;
  /** /proc/<pid>/stat field 22, kept as text: it is only ever compared. */
  start: string;
  /** /proc/sys/kernel/random/boot_id: start times count from boot, so they only compare within one. */
  boot: string;
}

export interface ProcessStat {
  pid: number;
  /** R, S, D, Z, T... */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  start: string;
}

/** The fields of /proc/<pid>/stat the agent uses, or undefined when there is no such process. */
export function readProcessStat(pid: number): ProcessStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  return parseProcessStat(text);
}

/** Parses one /proc/<pid>/stat line; the command name may hold spaces and parentheses, so fields count from its last ')'. */
export function parseProcessStat(text: string): ProcessStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const pid = Number(text.slice(0, text.indexOf(' ')));
  // Field 3 (state) is index 0 here, so field n is index n - 3.
  const fields = text.slice(close + 2).split(' ');
  if (fields.length < 20 || !Number.isInteger(pid)) return undefined;
  return { pid, state: fields[0], ppid: Number(fields[1]), pgrp: Number(fields[2]), session: Number(fields[3]), start: fields[19] };
}

/** Every process now running (zombies excluded: they run nothing and hold no group open). */
export function listProcesses(): ProcessStat[] {
  const found: ProcessStat[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    const first = entry.charCodeAt(0);
    if (first < 48 || first > 57) continue;
    const stat = readProcessStat(Number(entry));
    if (stat && stat.state !== 'Z') found.push(stat);
  }
  return found;
}

let cachedBootId: string | undefined;

export function bootId(): string {
  cachedBootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return cachedBootId;
}

/** The identity of a running process, or undefined when it has gone (or is a zombie). */
export function identityOf(pid: number): ProcessIdentity | undefined {
  const stat = readProcessStat(pid);
  if (!stat || stat.state === 'Z') return undefined;
  return { pid, start: stat.start, boot: bootId() };
}

let ownIdentity: ProcessIdentity | undefined;

export function thisProcess(): ProcessIdentity {
  ownIdentity ??= identityOf(process.pid);
  if (!ownIdentity) throw new Error(`cannot read /proc/${process.pid}/stat: the agent needs /proc mounted`);
  return ownIdentity;
}

/** Whether the process `identity` names is still running: same boot, same pid, same start time. */
export function isRunning(identity: ProcessIdentity): boolean {
  if (identity.boot !== bootId()) return false;
  return identityOf(identity.pid)?.start === identity.start;
}

/** Whether `value` has the shape of a ProcessIdentity (records are read back from disk). */
export function isProcessIdentity(value: unknown): value is ProcessIdentity {
  const candidate = value as Partial<ProcessIdentity> | undefined;
  return (
    typeof candidate === 'object' && candidate !== null
    && Number.isInteger(candidate.pid) && (candidate.pid as number) > 1
    && typeof candidate.start === 'string' && /^\d+$/.test(candidate.start)
    && typeof candidate.boot === 'string' && candidate.boot.length > 0
  );
}
