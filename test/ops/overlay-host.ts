import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * A throw-away copy of this machine to install packages into for real: this machine's own file system,
 * bound read-only (not recursively) under an overlay whose writes go to a temporary folder, entered with
 * chroot in a private mount namespace (unshare), so dpkg and rpm and their maintainer scripts change the
 * copy only and every mount disappears with the command. Each `run` mounts it afresh over the same upper
 * folder: state carries from one command to the next.
 *
 * systemd does not run here, as in an image build; `bootSystemd()` makes it look as if it did for the
 * maintainer scripts: /run/systemd/system exists and a recording `systemctl` replaces the real one (answering
 * `is-active` from /run/fake-systemd-active). A real systemd is issue 11's harness.
 */
export class OverlayHost {
  readonly dir: string;
  private readonly cleanupDir: () => void;
  readonly upper: string;

  constructor(prefix: string, private readonly shared: string) {
    const tmp = makeTempDir(prefix);
    this.dir = tmp.dir;
    this.cleanupDir = tmp.cleanup;
    this.upper = join(this.dir, 'upper');
    for (const name of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(this.dir, name));
  }

  /** Why such a copy cannot be made here, or undefined. */
  static missingReason(): string | undefined {
    if (process.getuid?.() !== 0) return 'not root (a copy of the machine needs mount and chroot)';
    const probe = spawnSync('unshare', ['--mount', '--propagation', 'private', 'true']);
    if (probe.status !== 0) return 'unshare --mount is not allowed here';
    if (spawnSync('sh', ['-c', 'grep -qw overlay /proc/filesystems']).status !== 0) return 'the kernel has no overlay file system';
    return undefined;
  }

  /** Runs `script` (sh) as root inside the copy; `shared` (a host folder) is at /shared there. */
  run(script: string, env: Record<string, string> = {}) {
    const d = this.dir;
    const setup = [
      'set -e',
      `mount --bind / '${d}/lower'`,
      `mount -o remount,bind,ro '${d}/lower'`,
      `mount -t overlay overlay -o 'lowerdir=${d}/lower,upperdir=${d}/upper,workdir=${d}/work' '${d}/merged'`,
      `mount -t proc proc '${d}/merged/proc'`,
      `mount --rbind /dev '${d}/merged/dev'`,
      `mkdir -p '${d}/merged/shared'`,
      `mount --bind '${this.shared}' '${d}/merged/shared'`,
      `exec chroot '${d}/merged' /bin/sh -c "$CDA_SCRIPT"`,
    ].join('\n');
    return execa('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', setup], {
      reject: false,
      all: true,
      stdin: 'ignore',
      stripFinalNewline: false,
      extendEnv: false,
      env: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        LANG: 'C.UTF-8',
        DEBIAN_FRONTEND: 'noninteractive',
        CODEDEPLOY_INSTALL_POLL_SECONDS: '1',
        CDA_SCRIPT: script,
        ...env,
      },
    });
  }

  /** Makes the maintainer scripts see a running systemd (see above); `active` answers is-active. */
  async bootSystemd(active = false): Promise<void> {
    const result = await this.run([
      // In place of the real one: rpm runs scriptlets with a PATH of its own.
      'mkdir -p /run/systemd/system',
      "rm -f /usr/bin/systemctl && cat > /usr/bin/systemctl <<'EOF'",
      '#!/bin/sh',
      'printf "%s\\n" "$*" >> /var/log/systemctl.calls',
      'case "$1" in is-active) [ -e /run/fake-systemd-active ]; exit $? ;; esac',
      'exit 0',
      'EOF',
      'chmod 0755 /usr/bin/systemctl',
      active ? ': > /run/fake-systemd-active' : 'rm -f /run/fake-systemd-active',
      ': > /var/log/systemctl.calls',
    ].join('\n'));
    if (result.exitCode !== 0) throw new Error(String(result.all));
  }

  /** The systemctl calls recorded since the last bootSystemd() or clearCalls(). */
  async calls(): Promise<string[]> {
    const result = await this.run('cat /var/log/systemctl.calls 2>/dev/null || true');
    return String(result.stdout).split('\n').filter(Boolean);
  }

  async clearCalls(): Promise<void> {
    await this.run(': > /var/log/systemctl.calls');
  }

  /** Writes `text` to `path` inside the copy. */
  async write(path: string, text: string): Promise<void> {
    const staged = join(this.shared, `.write-${process.pid}`);
    writeFileSync(staged, text);
    const result = await this.run(`mkdir -p "$(dirname '${path}')" && cp /shared/.write-${process.pid} '${path}'`);
    if (result.exitCode !== 0) throw new Error(String(result.all));
  }

  async read(path: string): Promise<string | undefined> {
    const result = await this.run(`cat '${path}'`);
    return result.exitCode === 0 ? String(result.stdout) : undefined;
  }

  async exists(path: string): Promise<boolean> {
    return (await this.run(`[ -e '${path}' ] || [ -L '${path}' ]`)).exitCode === 0;
  }

  cleanup(): void {
    this.cleanupDir();
  }
}
