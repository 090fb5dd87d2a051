import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeLastSuccessfulInstall } from '../../src/deployment/markers.js';
import { cleanupOldRevisions, selectRevisionsToDelete } from '../../src/deployment/retention.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { makeTempDir } from '../helpers/tmp.js';

const entries = (...names: string[]) => names.map((name, index) => ({ name, mtimeMs: (index + 1) * 1000 }));

describe('selectRevisionsToDelete (agent-spec §3.6)', () => {
  it.each([
    ['under the limit', entries('a', 'b', 'cur'), 'cur', undefined, 5, []],
    ['exactly at the limit (current included)', entries('a', 'b', 'c', 'd', 'cur'), 'cur', undefined, 5, []],
    ['one over: the oldest goes', entries('a', 'b', 'c', 'd', 'e', 'cur'), 'cur', undefined, 5, ['a']],
    ['the last successful is kept even when oldest', entries('a', 'b', 'c', 'd', 'e', 'cur'), 'cur', 'a', 5, ['b']],
    ['the current is never deleted, whatever its age', entries('cur', 'a', 'b'), 'cur', undefined, 1, ['a', 'b']],
    ['keep one: only the current remains, plus the protected one', entries('a', 'b', 'c', 'cur'), 'cur', 'b', 1, ['a', 'c']],
    ['current not yet on disk', entries('a', 'b', 'c'), 'new', undefined, 2, ['a', 'b']],
  ])('%s', (_name, list, current, lastSuccessful, max, expected) => {
    expect(selectRevisionsToDelete(list, current, lastSuccessful, max)).toEqual(expected);
  });

  it('sorts by mtime, not by name', () => {
    const list = [
      { name: 'z', mtimeMs: 1 },
      { name: 'a', mtimeMs: 3 },
      { name: 'm', mtimeMs: 2 },
    ];
    expect(selectRevisionsToDelete(list, 'cur', undefined, 2)).toEqual(['z', 'm']);
  });
});

describe('cleanupOldRevisions', () => {
  let root: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir: root, cleanup } = makeTempDir('cda-retention-')));
  afterEach(() => cleanup());

  it('deletes the oldest folders of the group, keeping the current and the last successful one', async () => {
    const group = join(root, 'grp');
    const [d1, d2, d3, d4, cur] = ['d-AAAAAAAA1', 'd-AAAAAAAA2', 'd-AAAAAAAA3', 'd-AAAAAAAA4-local', 'd-CURRENT00'];
    [d1, d2, d3, d4, cur].forEach((name, index) => {
      mkdirSync(join(group, name, 'deployment-archive'), { recursive: true });
      writeFileSync(join(group, name, 'deployment-archive', 'f'), 'x');
      utimesSync(join(group, name), 1000 + index, 1000 + index);
    });
    writeLastSuccessfulInstall(root, 'grp', join(group, d1));
    const logger = new MemoryLogger();
    const deleted = await cleanupOldRevisions(root, 'grp', join(group, cur), 3, logger);
    expect(deleted).toEqual([join(group, d2), join(group, d3)]);
    expect(readdirSync(group).sort()).toEqual([d1, d4, cur].sort());
    expect(logger.text()).toContain(`Deleting old revision ${join(group, d2)}`);
  });

  it('does nothing when the group has no folder yet', async () => {
    expect(await cleanupOldRevisions(root, 'nope', join(root, 'nope', 'cur'), 5, new MemoryLogger())).toEqual([]);
    expect(existsSync(join(root, 'nope'))).toBe(false);
  });
});
