import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LogFollower, ScriptsLogParser, logGenerations } from '../../src/hooks/scripts-log-reader.js';
import { RotatingAppendFile } from '../../src/hooks/rotating-file.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * What `codedeploy-agent logs` reads: scripts.log lines tied to their event, the rotated files in
 * order, and a follower that loses and repeats nothing across rotation, idleness and split writes.
 */
const tmp = makeTempDir('cda-log-reader-');
afterAll(tmp.cleanup);
let counter = 0;
const fresh = () => {
  const dir = join(tmp.dir, `log-${++counter}`);
  mkdirSync(dir);
  return join(dir, 'scripts.log');
};

describe('ScriptsLogParser', () => {
  it('ties each line to the event and script above it', () => {
    const parser = new ScriptsLogParser('BeforeInstall');
    const lines = [
      '2024-05-01 12:00:00 [stdout]left over from the event running when reading started',
      '2024-05-01 12:00:01 LifecycleEvent - AfterInstall',
      '2024-05-01 12:00:01 Script - scripts/a.sh',
      '2024-05-01 12:00:02 [stdout]hello [world]',
      '2024-05-01 12:00:02 [stderr]oops',
      '2024-05-01 12:00:03 Script at specified location: scripts/a.sh timed out',
    ].map((raw) => parser.parse(raw));
    expect(lines.map(({ event, kind, script, text }) => [event, kind, script, text])).toEqual([
      ['BeforeInstall', 'stdout', undefined, 'left over from the event running when reading started'],
      ['AfterInstall', 'event', undefined, 'LifecycleEvent - AfterInstall'],
      ['AfterInstall', 'script', 'scripts/a.sh', 'Script - scripts/a.sh'],
      ['AfterInstall', 'stdout', 'scripts/a.sh', 'hello [world]'],
      ['AfterInstall', 'stderr', 'scripts/a.sh', 'oops'],
      ['AfterInstall', 'agent', 'scripts/a.sh', 'Script at specified location: scripts/a.sh timed out'],
    ]);
    expect(lines[3].time).toBe('2024-05-01 12:00:02');
  });

  it('logGenerations: the oldest rotated file first, the live one last', async () => {
    const path = fresh();
    const file = new RotatingAppendFile(path, 20, 4);
    for (let index = 0; index < 6; index++) await file.append(`line ${index} is long\n`);
    await file.close();
    expect(logGenerations(path)).toEqual([`${path}.3`, `${path}.2`, `${path}.1`, path]);
  });
});

describe('LogFollower', () => {
  it('returns whole lines only, holding a line (and a character) cut in two', () => {
    const path = fresh();
    const follower = new LogFollower(path, 'start');
    expect(follower.poll()).toEqual([]);
    writeFileSync(path, 'one\ntw');
    expect(follower.poll()).toEqual(['one']);
    const euro = Buffer.from('€');
    appendFileSync(path, Buffer.concat([Buffer.from('o '), euro.subarray(0, 1)]));
    expect(follower.poll()).toEqual([]);
    appendFileSync(path, Buffer.concat([euro.subarray(1), Buffer.from('\nthree\n')]));
    expect(follower.poll()).toEqual(['two €', 'three']);
    follower.close();
  });

  it('from the end, or the last lines; a file that appears later is read from its start', () => {
    const path = fresh();
    const late = new LogFollower(path, 'end');
    expect(late.poll()).toEqual([]);
    writeFileSync(path, 'a\nb\nc\nd\n');
    expect(new LogFollower(path, 'end').poll()).toEqual([]);
    expect(new LogFollower(path, 2).poll()).toEqual(['c', 'd']);
    expect(new LogFollower(path, 10).poll()).toEqual(['a', 'b', 'c', 'd']);
    expect(late.poll()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('follows a rotating log written between polls, once or several rotations at a time, idle or not', async () => {
    const path = fresh();
    const follower = new LogFollower(path, 'start');
    const file = new RotatingAppendFile(path, 200, 20);
    const written: string[] = [];
    const seen: string[] = [];
    let next = 0;
    // Bursts of 0 to 40 lines between polls: some polls see no rotation, some several, some leave the follower idle.
    for (const burst of [3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 1, 40, 0, 7, 25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 30, 2]) {
      for (let index = 0; index < burst; index++) {
        const line = `line ${String(next++).padStart(4, '0')} ${'x'.repeat(next % 30)}`;
        written.push(line);
        await file.append(`${line}\n`);
      }
      seen.push(...follower.poll());
    }
    await file.close();
    seen.push(...follower.poll());
    expect(seen).toEqual(written);
    follower.close();
  });

  it('a log kept in one file (rotation unlinks it) loses nothing either', async () => {
    const path = fresh();
    const follower = new LogFollower(path, 'start');
    const file = new RotatingAppendFile(path, 100, 1);
    const written: string[] = [];
    const seen: string[] = [];
    for (let index = 0; index < 30; index++) {
      written.push(`line ${index} ${'y'.repeat(20)}`);
      await file.append(`${written[written.length - 1]}\n`);
      if (index % 2 === 0) seen.push(...follower.poll());
    }
    await file.close();
    seen.push(...follower.poll());
    expect(seen).toEqual(written);
  });
});
