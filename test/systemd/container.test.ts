import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';
import {
  containerLeftovers, SystemdContainer, sweepLeftovers, systemdContainerUnavailable,
} from '../helpers/systemd-container.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * The container helper itself: what the scenarios rely on (a booted systemd that runs units and keeps a
 * journal, commands with a clean environment, files in and out, two containers at once) and that it never
 * leaves a container, a cgroup, a mount or a folder behind, even when the test process is killed.
 */
const unavailable = systemdContainerUnavailable();

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function hostMounts(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}

describe.skipIf(unavailable !== undefined)('the systemd container helper', () => {
  const work = makeTempDir('cda-systemd-helper-');
  afterAll(() => work.cleanup());

  it('boots two systemd containers at once, runs units in them, and removes everything when halted', async () => {
    const [first, second] = await Promise.all([SystemdContainer.boot(), SystemdContainer.boot()]);
    try {
      expect(first.name).not.toBe(second.name);
      for (const container of [first, second]) {
        expect((await container.exec(['cat', '/proc/1/comm'])).stdout).toBe('systemd\n');
        expect((await container.exec(['systemctl', 'is-system-running'])).stdout.trim()).toMatch(/^(running|degraded)$/);
      }
      // Each has its own overlay: a file written in one is not in the other, nor on the host.
      await first.writeFile('/etc/cda-helper-test/only-here', 'first\n', 0o600);
      expect(await first.readFile('/etc/cda-helper-test/only-here')).toBe('first\n');
      expect(await first.sh('stat -c %a /etc/cda-helper-test/only-here')).toBe('600\n');
      expect(await second.exists('/etc/cda-helper-test/only-here')).toBe(false);
      expect(existsSync('/etc/cda-helper-test')).toBe(false);

      // A unit runs, logs to the journal, stops.
      await first.writeFile('/etc/systemd/system/cda-echo.service', '[Service]\nType=oneshot\nExecStart=/bin/echo hello from a unit\n');
      await first.sh('systemctl daemon-reload && systemctl start cda-echo');
      expect(await first.journal('-u', 'cda-echo', '-o', 'cat')).toContain('hello from a unit');

      // Commands get a clean environment, not the test's; files go in with copyIn, the shared folder both ways.
      process.env.CDA_HELPER_LEAK = 'leaked';
      try {
        const env = await first.exec(['env'], { env: { CHOSEN: 'yes' } });
        expect(env.stdout).toContain('CHOSEN=yes');
        expect(env.stdout).not.toContain('CDA_HELPER_LEAK');
      } finally {
        delete process.env.CDA_HELPER_LEAK;
      }
      const source = join(work.dir, 'payload');
      mkdirSync(source);
      writeFileSync(join(source, 'tool.sh'), '#!/bin/sh\necho tool ran\n', { mode: 0o755 });
      const copied = await first.copyIn(source, '/root/in');
      expect((await first.exec([join(copied, 'tool.sh')])).stdout).toBe('tool ran\n');
      await first.sh(`echo from-inside > ${first.shared}/out.txt`);
      expect(readFileSync(join(first.shared, 'out.txt'), 'utf8')).toBe('from-inside\n');
    } finally {
      await Promise.all([first.halt(), second.halt()]);
    }
    for (const container of [first, second]) {
      expect(isRunning(container.nspawnPid!)).toBe(false);
      expect(isRunning(container.pid)).toBe(false);
      expect(containerLeftovers(container.name)).toEqual({ cgroups: [], folders: [] });
      // The read-only bind of / lived in nspawn's own mount namespace: never in the host's table.
      expect(hostMounts()).not.toContain(container.name);
    }
  });

  it('halts the container of a test process that dies by SIGKILL; the next one removes its cgroups and folder', async () => {
    // The helper bundled into a small program (vitest stubbed out) that boots a container and waits.
    const stub = join(work.dir, 'vitest-stub.mjs');
    writeFileSync(stub, 'export const beforeAll = () => {}; export const afterAll = () => {};\n');
    const program = join(work.dir, 'boot-and-wait.mjs');
    await build({
      stdin: {
        contents: [
          "import { SystemdContainer } from './systemd-container.ts';",
          'const container = await SystemdContainer.boot();',
          'process.stdout.write(JSON.stringify({ name: container.name, pid: container.pid, nspawn: container.nspawnPid }) + "\\n");',
          'setInterval(() => {}, 60_000);',
        ].join('\n'),
        resolveDir: join(REPO_ROOT, 'test', 'helpers'),
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: program,
      alias: { vitest: stub },
      // The prerequisites list is found from the script that reads it, wherever this bundle is written.
      define: { 'import.meta.url': JSON.stringify(pathToFileURL(join(REPO_ROOT, 'scripts', 'test-prerequisites.mjs')).href) },
      // execa's CommonJS dependencies call require().
      banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
      logLevel: 'error',
    });
    const child = spawn(process.execPath, [program], { stdio: ['ignore', 'pipe', 'inherit'] });
    const booted = await new Promise<{ name: string; pid: number; nspawn: number }>((resolve, reject) => {
      let text = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('\n')) resolve(JSON.parse(text));
      });
      child.once('exit', (code) => reject(new Error(`the program exited (${code}) before booting`)));
    });
    expect(isRunning(booted.nspawn)).toBe(true);
    child.kill('SIGKILL');

    // The parent-death signal halts the container; its cgroups and folder stay until someone sweeps.
    const deadline = Date.now() + 20_000;
    while ((isRunning(booted.nspawn) || isRunning(booted.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(isRunning(booted.nspawn)).toBe(false);
    expect(isRunning(booted.pid)).toBe(false);
    expect(containerLeftovers(booted.name).cgroups).not.toEqual([]);
    expect(hostMounts()).not.toContain(booted.name);
    sweepLeftovers(true);
    expect(containerLeftovers(booted.name)).toEqual({ cgroups: [], folders: [] });
  });
});
