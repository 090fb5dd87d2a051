import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll } from 'vitest';

/**
 * A real unprivileged user who tries to turn the agent (root) against its host: created with useradd
 * (name suffixed with the pid, so parallel runs do not collide), running shell snippets through setpriv,
 * removed afterwards. Attacks race the agent in loops bounded in time.
 */
const isRoot = process.getuid?.() === 0;
let warned = false;

/** Why attacker tests cannot run here (undefined when they can); said once. CI runs as root. */
export function hostileUserMissing(): string | undefined {
  if (isRoot) return undefined;
  const reason = 'attacker tests create real users and need root: run them as root (sudo npx vitest run ...), as CI does';
  if (process.env.CI) throw new Error(`${reason}. CI never skips`);
  if (!warned) {
    warned = true;
    console.warn(`skipped: ${reason}`);
  }
  return reason;
}

export class HostileUser {
  private readonly loops: ResultPromise[] = [];

  private constructor(readonly name: string, readonly uid: number, readonly gid: number) {}

  /** Creates `cda<label><pid>` with no home and no login shell of its own. */
  static create(label: string): HostileUser {
    const name = `cda${label}${process.pid % 100000}`.slice(0, 32);
    execFileSync('useradd', ['--no-create-home', '--user-group', '--shell', '/bin/sh', name]);
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return new HostileUser(name, uid, gid);
  }

  private command(script: string): [string, string[]] {
    return ['setpriv', [`--reuid=${this.uid}`, `--regid=${this.gid}`, '--init-groups', '--', '/bin/sh', '-c', script]];
  }

  /** Runs `script` as this user to its end. */
  async sh(script: string, env: Record<string, string> = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const [file, args] = this.command(script);
    const result = await execa(file, args, { reject: false, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...env }, extendEnv: false });
    return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
  }

  /**
   * Runs `body` as this user over and over, as fast as it goes, for at most `seconds` (or until stop()):
   * a race against the agent, bounded in time.
   */
  race(body: string, seconds = 30): void {
    const script = `end=$(( $(date +%s) + ${seconds} )); while [ "$(date +%s)" -lt "$end" ]; do ${body}; done`;
    const [file, args] = this.command(script);
    this.loops.push(execa(file, args, { reject: false, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, extendEnv: false }));
  }

  /** Ends the races this user runs (by pid) and waits for them. */
  async stopRaces(): Promise<void> {
    for (const loop of this.loops.splice(0)) {
      loop.kill('SIGKILL');
      await loop.catch(() => undefined);
    }
  }

  async remove(): Promise<void> {
    await this.stopRaces();
    try {
      execFileSync('userdel', [this.name], { stdio: 'ignore' });
    } catch {
      // best effort: already gone
    }
  }
}

/** mkdtemp makes 0700 folders: the attacker must be able to reach what the test lets them reach. */
export function letEveryoneIn(...dirs: string[]): void {
  for (const dir of dirs) chmodSync(dir, 0o755);
}

/**
 * The hostile user of the enclosing `describe`: created before its first test, with `dirs` opened to
 * everyone, and removed (its races ended) after its last. Use it inside tests only.
 */
export function useHostileUser(label: string, ...dirs: string[]): HostileUser {
  let user: HostileUser | undefined;
  beforeAll(() => {
    user = HostileUser.create(label);
    letEveryoneIn(...dirs);
  });
  afterAll(async () => {
    await user?.remove();
  });
  return new Proxy({} as HostileUser, {
    get(_target, key) {
      if (!user) throw new Error(`the hostile user '${label}' exists only inside the tests of its describe`);
      const value: unknown = Reflect.get(user, key, user);
      return typeof value === 'function' ? value.bind(user) : value;
    },
  });
}
