// What the soak and fleet scenarios read of a running daemon: its resident set, threads and open file
// descriptors from /proc, its heap through the memory probe (bench/lib/memory-probe.mjs), and the size
// of a folder on the disk.
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * VmRSS, VmHWM and its anonymous and file-backed parts (KiB: RssFile is mostly the node binary's code
 * pages, shared with every other node process), Threads of a live process, and how many descriptors it
 * has open.
 */
export function processFigures(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return {
    rssKb: field('VmRSS'),
    hwmKb: field('VmHWM'),
    anonKb: field('RssAnon'),
    fileKb: field('RssFile'),
    threads: field('Threads'),
    fds: readdirSync(`/proc/${pid}/fd`).length,
  };
}

/**
 * The pids of the daemon's command worker (`codedeploy-agent command-worker`, a child of the daemon that
 * runs lifecycle events and exits when idle): none, or one (two briefly, while an idle one exits).
 */
export function commandWorkers(pid) {
  let children;
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return children.filter((child) => {
    try {
      return readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').includes('command-worker');
    } catch {
      return false; // exited meanwhile
    }
  });
}

export function isAlive(pid) {
  return existsSync(`/proc/${pid}/status`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

/**
 * Asks the probe in `pid` for its figures (SIGUSR2: a full collection, then the file) and waits for the
 * answer numbered `sequence`. Undefined when it does not come within `timeoutMs`.
 */
export async function probeHeap(pid, file, sequence, timeoutMs = 10_000) {
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const figures = JSON.parse(readFileSync(file, 'utf8'));
      if (figures.sequence >= sequence) return figures;
    } catch {
      // not written yet
    }
    await delay(10);
  }
  return undefined;
}

/** Bytes of every file under `path` (lstat sizes; links not followed) and how many entries. */
export function folderSize(path) {
  let bytes = 0;
  let entries = 0;
  const walk = (dir) => {
    let names;
    try {
      names = readdirSync(dir);
    } catch {
      return; // removed meanwhile
    }
    for (const name of names) {
      const full = join(dir, name);
      let stat;
      try {
        stat = lstatSync(full);
      } catch {
        continue;
      }
      entries++;
      if (stat.isDirectory()) walk(full);
      else bytes += stat.size;
    }
  };
  if (existsSync(path)) walk(path);
  return { bytes, entries };
}

/** Least-squares slope of y over x. */
export function slope(points) {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return sxx === 0 ? 0 : sxy / sxx;
}
