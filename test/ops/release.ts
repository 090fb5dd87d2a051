import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type Options } from 'execa';
import { REPO_ROOT } from '../helpers/cli.js';

/** Builds the release tarball into `dir` (the bundle itself is built by vitest's globalSetup). */
export function buildTarball(dir: string): string {
  const out = execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'package.mjs'), '--out-dir', dir], { encoding: 'utf8' });
  return out.trim().split('\n').pop()!;
}

/** Unpacks the release tarball into `dir`; returns the release folder. */
export function unpackRelease(tarball: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
  return join(dir, `codedeploy-agent-${pkg.version}`);
}

/** A copy of a release with another version number and a changed bundle (an upgrade). */
export function makeUpgradeRelease(release: string, target: string, version: string): string {
  cpSync(release, target, { recursive: true });
  const pkgFile = join(target, 'package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
  writeFileSync(pkgFile, `${JSON.stringify({ ...pkg, version }, null, 2)}\n`);
  appendFileSync(join(target, 'dist', 'codedeploy-agent.mjs'), `\n// ${version}\n`);
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
