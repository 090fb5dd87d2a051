import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { motoMissingReason } from '../doubles/moto.js';

const tmp = makeTempDir('cda-bench-smoke-');
afterAll(() => tmp.cleanup());

/**
 * `npm run bench` on tiny bundles, one run of each scenario, so the bench scripts keep working as the
 * agent changes. Nothing here looks at the figures: timing is the bench's business, not a test's.
 */
describe('bench smoke', () => {
  it('runs every scenario on tiny input and writes the table', async () => {
    const out = join(tmp.dir, 'BENCHMARKS.md');
    const result = await execa(
      process.execPath,
      [
        join(REPO_ROOT, 'bench', 'run.mjs'),
        '--scale', 'tiny',
        '--no-tmpfs',
        '--work-dir', join(tmp.dir, 'work'),
        '--cache-dir', join(tmp.dir, 'cache'),
        '--out', out,
      ],
      { reject: false, all: true, env: { AWS_EC2_METADATA_DISABLED: 'true' } },
    );
    expect(result.exitCode, String(result.all)).toBe(0);
    const written = readFileSync(out, 'utf8');
    for (const scenario of ['start', 'small', 'hook-output', 'background', 'many-files (directory)', 'many-files (tgz)', 'many-files (zip)',
      'big-file (directory)', 'big-file (tgz)', 'idle', 'deployment after a pause', 'poll-to-ack', 'start (executable)', 'idle (executable)',
      'deployment after a pause (executable)', 'poll-to-ack (executable)']) {
      expect(written, `${scenario} row`).toContain(`| ${scenario} |`);
    }
    expect(written).toContain(`Node.js ${process.version}`);
    expect(written).toContain('disk (tmpfs not requested)');

    // The soak (5 deployments) and the fleet (3 agents, 5 s outage) write sections of their own, with
    // their series and plots beside the file.
    const soak = written.slice(written.indexOf('<!-- bench:soak:begin'), written.indexOf('<!-- bench:soak:end -->'));
    if (motoMissingReason) {
      expect(soak).toContain('Skipped: moto_server is not on PATH');
    } else {
      expect(soak).toMatch(/5 deployments in .*: \d+ succeeded, \d+ failed/);
      expect(soak).toContain('| every deployment ended as its hooks say | 4 succeeded, 1 failed | yes |');
      expect(readFileSync(join(tmp.dir, 'bench', 'results', 'soak.csv'), 'utf8').split('\n')[0]).toMatch(/^phase,deployments,seconds,rss_mib,/);
      expect(readFileSync(join(tmp.dir, 'bench', 'results', 'soak.svg'), 'utf8')).toMatch(/^<svg [^]*<polyline [^]*<\/svg>\n$/);
    }
    const fleet = written.slice(written.indexOf('<!-- bench:fleet:begin'), written.indexOf('<!-- bench:fleet:end -->'));
    expect(fleet).toContain('| every agent kept running through the outage | 3 of 3 | yes |');
    expect(fleet).toMatch(/\| every agent resumed polling after the outage \| 3 of 3;/);
    expect(existsSync(join(tmp.dir, 'bench', 'results', 'fleet.svg'))).toBe(true);
  }, 420_000);
});
