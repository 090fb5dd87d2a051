/**
 * What a bundle can cost (src/archive/bundle-limits.ts): a gzip bomb (10 GiB of zeros in about 10 MB,
 * generated here by streaming, never stored whole) and a zip bomb are refused within seconds with nothing
 * left in deployment-archive, by `deploy`, `deploy --dry-run` and `validate`, which writes nothing to $TMPDIR; the total size is
 * capped; an oversized appspec is refused; validate prints a capped list of any number of problems.
 */
import { createWriteStream, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import yazl from 'yazl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_BIN, runCli } from '../helpers/cli.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeTempDir } from '../helpers/tmp.js';

const tmp = makeTempDir('cda-bundle-limits-');
afterAll(tmp.cleanup);
const root = join(tmp.dir, 'root');
const configFile = join(tmp.dir, 'agent.yml');
writeAgentConfig(configFile, { root_dir: root, log_dir: join(tmp.dir, 'log') });

const GIB = 1024 ** 3;

/** A tar header block for one regular file of `size` bytes (ustar, checksum computed). */
function tarHeader(name: string, size: number): Buffer {
  const block = Buffer.alloc(512);
  block.write(name, 0, 'utf8');
  block.write('0000644\0', 100);
  block.write('0000000\0', 108);
  block.write('0000000\0', 116);
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  block.write(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`, 136);
  block.write('0', 156);
  block.write('ustar\0' + '00', 257, 'latin1');
  block.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

/**
 * A .tar.gz of an appspec and a file of `zeroBytes` zeros: gzip members concatenated (gunzip reads them as
 * one stream), the zeros as one 64 MiB member written over and over, so 10 GiB take ~10 MB and a second.
 */
async function gzipBomb(path: string, zeroBytes: number): Promise<void> {
  const chunk = 64 * 1024 * 1024;
  const zeros = gzipSync(Buffer.alloc(chunk), { level: 9 });
  const appspec = Buffer.from('version: 0.0\nos: linux\n');
  const head = gzipSync(Buffer.concat([tarHeader('appspec.yml', appspec.length), appspec, Buffer.alloc(512 - appspec.length), tarHeader('zeros.bin', zeroBytes)]));
  async function* members() {
    yield head;
    for (let written = 0; written < zeroBytes; written += chunk) yield zeros;
    yield gzipSync(Buffer.alloc(1024));
  }
  await pipeline(Readable.from(members()), createWriteStream(path));
}

/** A zip of an appspec and `zeroBytes` zeros, deflated by yazl from a stream. */
async function zipBomb(path: string, zeroBytes: number): Promise<void> {
  const zip = new yazl.ZipFile();
  zip.addBuffer(Buffer.from('version: 0.0\nos: linux\n'), 'appspec.yml');
  async function* zeros() {
    const chunk = Buffer.alloc(1024 * 1024);
    for (let written = 0; written < zeroBytes; written += chunk.length) yield chunk;
  }
  zip.addReadStream(Readable.from(zeros()), 'zeros.bin', { size: zeroBytes });
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(path));
}

function validateTempFolders(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith('codedeploy-validate-'));
}

describe('bundle limits', () => {
  const tgzBomb = join(tmp.dir, 'bomb.tar.gz');
  const zipFile = join(tmp.dir, 'bomb.zip');
  beforeAll(async () => {
    await gzipBomb(tgzBomb, 10 * GIB);
    await zipBomb(zipFile, 400 * 1024 * 1024);
  }, 120_000);

  it('the gzip bomb is what it says: 10 GiB of zeros in about 10 MB', () => {
    expect(statSync(tgzBomb).size).toBeLessThan(16 * 1024 * 1024);
  });

  it('deploy refuses a gzip bomb within seconds and leaves nothing in deployment-archive', async () => {
    const started = Date.now();
    const result = await runCli(['deploy', '-c', configFile, '-l', tgzBomb, '-g', 'bomb']);
    const tookMs = Date.now() - started;
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/DownloadBundle failed .*The bundle unpacks to more than 500 times its own size \(\d+(\.\d)? MB to at least 10240 MB; max_bundle_compression_ratio\), which no real bundle does: a compression bomb\? Refused at 'zeros\.bin'/);
    expect(tookMs).toBeLessThan(20_000);
    const [deployment] = readdirSync(join(root, 'bomb'));
    expect(existsSync(join(root, 'bomb', deployment, 'deployment-archive'))).toBe(false);
  });

  it('deploy --dry-run refuses it too, within seconds', async () => {
    const started = Date.now();
    const result = await runCli(['deploy', '--dry-run', '-c', configFile, '-l', tgzBomb, '-g', 'bomb-dry']);
    expect(result.exitCode).toBe(1);
    expect(result.all).toContain('a compression bomb?');
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('deploy refuses a zip bomb, and a bundle over max_bundle_unpacked_mb', async () => {
    const zipResult = await runCli(['deploy', '-c', configFile, '-l', zipFile, '-g', 'zip-bomb']);
    expect(zipResult.exitCode).toBe(1);
    expect(zipResult.stderr).toContain("a compression bomb? Refused at 'zeros.bin' (400 MB)");

    const small = join(tmp.dir, 'small.yml');
    writeAgentConfig(small, { root_dir: root, log_dir: join(tmp.dir, 'log'), max_bundle_unpacked_mb: 1 });
    const dir = join(tmp.dir, 'two-mb');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'appspec.yml'), 'version: 0.0\nos: linux\n');
    writeFileSync(join(dir, 'random.bin'), randomBytes(2 * 1024 * 1024));
    const tarball = join(tmp.dir, 'two-mb.tar');
    execFileSync('tar', ['-cf', tarball, '-C', dir, '.']);
    const result = await runCli(['deploy', '-c', small, '-l', tarball, '-g', 'too-big']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("The bundle unpacks to more than 1.0 MB (max_bundle_unpacked_mb): refused at './random.bin' (2.0 MB)");
    expect(result.stderr).toContain('raise :max_bundle_unpacked_mb: in the agent configuration');
  });

  it('validate refuses the bombs too, quickly, without leaving anything in $TMPDIR', async () => {
    const tmpdir = join(tmp.dir, 'validate-tmp');
    mkdirSync(tmpdir);
    for (const bomb of [tgzBomb, zipFile]) {
      const started = Date.now();
      const result = await runCli(['validate', bomb], { env: { TMPDIR: tmpdir } });
      expect(result.exitCode).toBe(1);
      expect(result.stdout).toContain('a compression bomb?');
      expect(Date.now() - started).toBeLessThan(20_000);
    }
    expect(validateTempFolders(tmpdir)).toEqual([]);
  });

  it('validate of a large archive writes nothing of it to $TMPDIR, and still sees a script\'s #! line', async () => {
    const dir = join(tmp.dir, 'large');
    mkdirSync(join(dir, 'scripts'), { recursive: true });
    writeFileSync(join(dir, 'appspec.yml'), 'version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: scripts/start.sh\n');
    writeFileSync(join(dir, 'scripts', 'start.sh'), '#!/bin/sh\r\necho hi\r\n', { mode: 0o755 });
    for (let i = 0; i < 4; i++) writeFileSync(join(dir, `data${i}.bin`), randomBytes(48 * 1024 * 1024));
    const tarball = join(tmp.dir, 'large.tar');
    execFileSync('tar', ['-cf', tarball, '-C', dir, '.']);
    const tmpdir = join(tmp.dir, 'validate-large-tmp');
    mkdirSync(tmpdir);
    const child = execa(process.execPath, [AGENT_BIN, 'validate', tarball], { reject: false, env: { TMPDIR: tmpdir } });
    let most = 0;
    while (child.exitCode === null) {
      try {
        most = Math.max(most, Number(execFileSync('du', ['-sb', tmpdir], { encoding: 'utf8' }).split('\t')[0]));
      } catch {
        // a file went while du counted
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (child.exitCode !== null) break;
      await Promise.race([child, new Promise((resolve) => setTimeout(resolve, 1))]);
    }
    const result = await child;
    // The check still sees the script's CRLF #! line, from the first bytes it kept in memory.
    expect(String(result.stdout)).toContain('has Windows (CRLF) line endings');
    expect(most).toBe(Number(execFileSync('du', ['-sb', tmpdir], { encoding: 'utf8' }).split('\t')[0]));
    expect(validateTempFolders(tmpdir)).toEqual([]);
  });
});

describe('appspec size and problem count', () => {
  it('refuses an appspec over 1 MiB with a clear error, in deploy and validate', async () => {
    const dir = join(tmp.dir, 'huge-appspec');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'appspec.yml'), `version: 0.0\nos: linux\n${'# padding\n'.repeat(120_000)}`);
    const deployed = await runCli(['deploy', '-c', configFile, '-l', dir, '-g', 'huge-appspec']);
    expect(deployed.exitCode).toBe(1);
    expect(deployed.stderr).toMatch(/the AppSpec file is 120\d{4} bytes; an AppSpec file is at most 1048576 bytes \(1 MiB\)/);
    const validated = await runCli(['validate', dir]);
    expect(validated.exitCode).toBe(1);
    expect(validated.stdout).toContain('an AppSpec file is at most 1048576 bytes');
  });

  it('validate reports 100,000 problems without a stack overflow, printing the first 200', async () => {
    const dir = join(tmp.dir, 'many-problems');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'appspec.yml'), `version: 0.0\nos: linux\nhooks:\n  BeforeInstall: [${'1,'.repeat(99_999)}1]\n`);
    const result = await runCli(['validate', dir]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe('');
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(202);
    expect(lines[200]).toBe('... 99800 more problems not shown (--json lists them all)');
    expect(lines[201]).toBe(`${dir}: 100000 errors, 0 warnings`);
    const json = await runCli(['validate', dir, '--json']);
    expect(JSON.parse(json.stdout).problems).toHaveLength(100_000);
  });
});
