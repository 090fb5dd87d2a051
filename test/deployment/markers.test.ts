import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/util/atomic-write.js';
import { readLastSuccessfulInstall, readMarker, readMostRecentInstall, writeLastSuccessfulInstall, writeMarker, writeMostRecentInstall } from '../../src/deployment/markers.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('pointer files', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = makeTempDir('cda-markers-')));
  afterEach(() => cleanup());

  it('are written without a trailing newline, atomically, under the anchor names', () => {
    writeLastSuccessfulInstall(dir, 'grp', '/root/grp/d-1');
    writeMostRecentInstall(dir, 'grp', '/root/grp/d-2');
    expect(readFileSync(join(dir, 'deployment-instructions', 'grp_last_successful_install'), 'utf8')).toBe('/root/grp/d-1');
    expect(readLastSuccessfulInstall(dir, 'grp')).toBe('/root/grp/d-1');
    expect(readMostRecentInstall(dir, 'grp')).toBe('/root/grp/d-2');
    expect(readdirSync(join(dir, 'deployment-instructions')).sort()).toEqual(['grp_last_successful_install', 'grp_most_recent_install']);
  });

  it('read strips a trailing newline; missing or empty reads as undefined', () => {
    const file = join(dir, 'pointer');
    writeFileSync(file, '/root/grp/d-3\n');
    expect(readMarker(file)).toBe('/root/grp/d-3');
    writeFileSync(file, '');
    expect(readMarker(file)).toBeUndefined();
    expect(readMarker(join(dir, 'missing'))).toBeUndefined();
  });

  it('overwrite the previous value and leave no temp file', () => {
    const file = join(dir, 'pointer');
    writeMarker(file, 'one');
    writeMarker(file, 'two');
    expect(readMarker(file)).toBe('two');
    expect(readdirSync(dir)).toEqual(['pointer']);
  });

  it('writeFileAtomic sets the exact mode and cleans up after a failure', async () => {
    const file = join(dir, 'data');
    await writeFileAtomic(file, 'x', 0o600);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await expect(writeFileAtomic(join(dir, 'no-such-dir', 'f'), 'x')).rejects.toThrow(/ENOENT/);
    await expect(writeFileAtomic(join(dir), 'x')).rejects.toThrow();
    expect(readdirSync(dir)).toEqual(['data']);
  });
});
