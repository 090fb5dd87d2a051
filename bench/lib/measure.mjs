// Runs one child process and measures it: wall time, CPU time (user + system of the child and every
// descendant it waited for) and, for the agent, its own peak resident set.
//
// CPU comes from this process's /proc/self/stat `cutime` + `cstime`: the kernel adds a child's times
// (with those of its own reaped children) to its parent when the parent reaps it, so the difference
// across one run is that run's CPU, as `/usr/bin/time` would report it, to the clock tick (10 ms).
// That holds only while no other child of the bench ends meanwhile: the bench runs one at a time.
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

let ticksPerSecond;

function clockTicks() {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces), 0-based from field 3 (state). */
function statFields(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** CPU milliseconds of the reaped children of this process so far. */
export function reapedChildrenCpuMs() {
  const fields = statFields('self');
  // Fields 16 and 17 of proc(5): cutime, cstime; here index 13 and 14.
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / clockTicks();
}

/** CPU milliseconds (user + system) a live process has used itself. */
export function processCpuMs(pid) {
  const fields = statFields(pid);
  // Fields 14 and 15 of proc(5): utime, stime.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
}

/**
 * CPU milliseconds of a live process and of the children it has reaped (the kernel adds a reaped child's
 * times, and its own reaped children's, to the parent): for the daemon, its command worker once it exited,
 * and the hooks.
 */
export function processTreeCpuMs(pid) {
  const fields = statFields(pid);
  // Fields 14-17 of proc(5): utime, stime, cutime, cstime.
  return ((Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 1000) / clockTicks();
}

/** VmRSS and VmHWM of a live process, in KiB. */
export function processMemoryKb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
}

const OUTPUT_LIMIT = 64 * 1024;

/**
 * Runs `command args` to its end. With `usageFile`, the child is expected to be node started with the
 * usage preload (see agentCommand) and its VmHWM is read back. Rejects when the child fails, with the
 * tail of its output.
 */
export async function runMeasured(command, args, options = {}) {
  const { env = process.env, cwd, usageFile, allowFailure = false, timeoutMs = 600_000 } = options;
  if (usageFile) rmSync(usageFile, { force: true });
  const cpuBefore = reapedChildrenCpuMs();
  const started = performance.now();
  const child = spawn(command, args, {
    cwd,
    env: usageFile ? { ...env, CDA_BENCH_USAGE_FILE: usageFile } : env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk) => {
    output += chunk.toString('utf8');
    if (output.length > 2 * OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const { code, signal, wallMs } = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (exitCode, exitSignal) => resolve({ code: exitCode, signal: exitSignal, wallMs: performance.now() - started }));
  });
  clearTimeout(timer);
  const cpuMs = reapedChildrenCpuMs() - cpuBefore;
  await new Promise((resolve) => (child.stdout.readableEnded && child.stderr.readableEnded ? resolve() : child.once('close', resolve)));
  if ((code !== 0 || signal) && !allowFailure) {
    throw new Error(`${command} ${args.join(' ')} ended with ${signal ?? `exit code ${code}`}:\n${output.slice(-OUTPUT_LIMIT)}`);
  }
  let rssKb;
  if (usageFile) {
    try {
      rssKb = JSON.parse(readFileSync(usageFile, 'utf8')).hwmKb;
    } catch {
      rssKb = undefined;
    }
  }
  return { wallMs, cpuMs, rssKb, exitCode: code, signal, output };
}

/** `node [--import usage-preload] <agent bin> ...args` */
export function agentCommand(repoRoot, args, { withUsage = true } = {}) {
  const preload = new URL('./usage-preload.mjs', import.meta.url).href;
  return {
    command: process.execPath,
    args: [...(withUsage ? ['--import', preload] : []), join(repoRoot, 'bin', 'codedeploy-agent.mjs'), ...args],
  };
}

/** min / median / max of numbers (undefined entries ignored). */
export function summarize(values) {
  const sorted = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { min: sorted[0], median, max: sorted[sorted.length - 1], count: sorted.length };
}
