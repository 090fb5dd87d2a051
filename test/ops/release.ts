import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type Options } from 'execa';
import { REPO_ROOT } from '../helpers/cli.js';

const VERSION = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version as string;

/**
 * Release files for this machine's architecture in `dir` (scripts/package.mjs; the executable comes from the
 * build cache the global setup filled). Returns the paths it printed.
 */
export function buildRelease(dir: string, formats: string[] = ['tar']): string[] {
  const out = execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'package.mjs'), '--arch', process.arch, '--formats', formats.join(','), '--out-dir', dir], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
  });
  return out.trim().split('\n');
}

/** Builds the release tarball into `dir`. */
export function buildTarball(dir: string): string {
  return buildRelease(dir, ['tar']).find((file) => file.endsWith('.tar.gz'))!;
}

/** Unpacks the release tarball into `dir`; returns the release folder. */
export function unpackRelease(tarball: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  return join(dir, `codedeploy-agent-${VERSION}-linux-${process.arch}`);
}

/**
 * A copy of a release that says it is `version`: its bin/codedeploy-agent answers --version with it and runs
 * the real executable (kept beside it) for everything else, as a new build would.
 */
export function makeUpgradeRelease(release: string, target: string, version: string): string {
  cpSync(release, target, { recursive: true });
  const bin = join(target, 'bin', 'codedeploy-agent');
  const real = join(target, 'bin', `codedeploy-agent-${VERSION}`);
  if (!existsSync(real)) renameSync(bin, real);
  writeFileSync(bin, `#!/bin/sh\n# ${version}\nif [ "$1" = --version ]; then echo ${version}; exit 0; fi\nexec '${real}' "$@"\n`);
  chmodSync(bin, 0o755);
  return target;
}

/**
 * A folder for PATH holding a `systemctl` that records its arguments (one call a line) and answers
 * `is-active` from FAKE_SYSTEMD_ACTIVE. Nothing reaches the real systemd.
 */
export function makeFakeSystemctl(dir: string): { binDir: string; log: string; calls(): string[] } {
  const binDir = join(dir, 'fakebin');
  mkdirSync(binDir, { recursive: true });
  const log = join(dir, 'systemctl.log');
  writeFileSync(join(binDir, 'systemctl'), [
    '#!/bin/sh',
    `printf '%s\\n' "$*" >> '${log}'`,
    'case "$1" in is-active) [ "${FAKE_SYSTEMD_ACTIVE:-no}" = yes ]; exit $? ;; esac',
    'exit 0',
    '',
  ].join('\n'));
  chmodSync(join(binDir, 'systemctl'), 0o755);
  writeFileSync(log, '');
  return {
    binDir,
    log,
    calls: () => readFileSync(log, 'utf8').split('\n').filter(Boolean),
  };
}

export function runInstall(release: string, args: string[], env: Record<string, string>, options: Options = {}) {
  return execa('sh', [join(release, 'install.sh'), ...args], {
    reject: false,
    all: true,
    env: { CODEDEPLOY_INSTALL_POLL_SECONDS: '1', ...env },
    ...options,
  });
}
