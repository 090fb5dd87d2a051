// What the figures were measured on, and the folder they were measured in (a tmpfs when one can be mounted).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';

export function machineInfo() {
  const cpuinfo = safeRead('/proc/cpuinfo');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    node: process.version,
    cpu: model,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    loadAverage: os.loadavg(),
  };
}

function safeRead(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function memAvailableBytes() {
  const kb = Number(/^MemAvailable:\s+(\d+)/m.exec(safeRead('/proc/meminfo'))?.[1] ?? 0);
  return kb * 1024;
}

function isMountPoint(dir) {
  return safeRead('/proc/self/mounts').split('\n').some((line) => line.split(' ')[1] === dir);
}

/**
 * The work folder: a tmpfs of `sizeBytes` mounted on `dir` when running as root, `mount` works and the
 * memory is there; else a plain folder on the disk. `release()` unmounts (or empties) it.
 */
export function prepareWorkDir(dir, { sizeBytes, wantTmpfs = true, log = () => {} }) {
  if (isMountPoint(dir)) {
    // Left by an interrupted run.
    execFileSync('umount', [dir]);
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let tmpfs = false;
  let why = 'tmpfs not requested';
  if (wantTmpfs) {
    if (process.getuid?.() !== 0) {
      why = 'not root, cannot mount a tmpfs';
    } else if (memAvailableBytes() < sizeBytes + 2 * 2 ** 30) {
      why = `less than ${Math.round(sizeBytes / 2 ** 30) + 2} GiB of memory available for a tmpfs`;
    } else {
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil(sizeBytes / 2 ** 20)}m,mode=0755`, 'cda-bench', dir], { stdio: 'pipe' });
        tmpfs = true;
      } catch (error) {
        why = `mount -t tmpfs failed: ${String(error.stderr ?? error.message).trim()}`;
      }
    }
  }
  log(tmpfs ? `work folder ${dir}: tmpfs of ${(sizeBytes / 2 ** 30).toFixed(2).replace(/\.?0+$/, "")} GiB` : `work folder ${dir}: disk (${why})`);
  return {
    dir,
    tmpfs,
    storage: tmpfs ? 'tmpfs' : `disk (${why})`,
    release() {
      if (tmpfs && isMountPoint(dir)) {
        try {
          execFileSync('umount', [dir], { stdio: 'pipe' });
        } catch {
          // busy (a process of ours still inside): leave it; the next run unmounts it
          return;
        }
      }
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    },
  };
}
