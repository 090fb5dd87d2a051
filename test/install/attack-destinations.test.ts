import { execFileSync } from 'node:child_process';
import { chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deploymentPaths } from '../../src/deployment/layout.js';
import { runInstall } from '../../src/install/install.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { InstallError } from '../../src/report/errors.js';
import { hostileUserMissing, letEveryoneIn, useHostileUser } from '../helpers/hostile-user.js';
import { missingTool } from '../helpers/prerequisites.js';
import { makeTempDir } from '../helpers/tmp.js';
import { makeAppSpec, makeRevision, snapshot, type TreeSpec } from './install-fixtures.js';

/**
 * Install against a real unprivileged user who owns the destination's folder (`www`, as www-data owns
 * /var/www) and races the agent as fast as perl goes, for a few seconds per class of attack: a folder on
 * the path swapped for a symlink to a root-owned "sentinel" folder during Install, a file Install just
 * copied swapped before its permissions are set, a folder of the previous revision swapped before its
 * files are removed, and the same during a rollback. After every deployment the sentinel (bytes, modes,
 * owners, times, ACLs) must be as it was; each deployment either succeeded on the real folder or failed
 * with an InstallError that names the path (and, for a planted symlink, its owner).
 */
const missing = hostileUserMissing() ?? missingTool('perl');
const noSetfacl = missingTool('setfacl') !== undefined;
/*
 * The attacker's loops swap with random pauses of a few milliseconds in each state, so that both the
 * real folder and the planted link are met by some of the deployments (a swap back and forth in a few
 * microseconds would almost never be seen, and test nothing).
 */

/** How long each race runs: long enough for many deployments, bounded so the suite stays short. */
const RACE_MS = 6_000;

describe.skipIf(missing)('Install raced by the owner of the destination folder', () => {
  const attacker = useHostileUser('race');
  let tmp: string;
  let removeTmp: () => void;
  let root: string;
  let www: string;
  let sentinel: string;
  let sentinelBefore: string[];

  beforeEach(() => {
    ({ dir: tmp, cleanup: removeTmp } = makeTempDir('cda-attack-'));
    letEveryoneIn(tmp);
    root = join(tmp, 'root');
    www = join(tmp, 'www');
    mkdirSync(join(www, 'app'), { recursive: true });
    chownSync(www, attacker.uid, attacker.gid);
    chownSync(join(www, 'app'), attacker.uid, attacker.gid);
    sentinel = join(tmp, 'sentinel');
  });
  afterEach(async () => {
    await attacker.stopRaces();
    removeTmp();
  });

  /** A root-owned folder like /etc: what the attacker wants root to write, chmod, chown or delete. */
  function makeSentinel(names: readonly string[]): void {
    for (const name of names) {
      mkdirSync(join(sentinel, name, '..'), { recursive: true });
      writeFileSync(join(sentinel, name), `SENTINEL ${name}\n`, { mode: 0o600 });
    }
    sentinelBefore = sentinelState();
  }
  const sentinelState = () => [...snapshot(sentinel), ...(noSetfacl ? [] : [execFileSync('getfacl', ['-R', '-p', '-n', sentinel], { encoding: 'utf8' })])];

  /** Runs `perl` with `source` as the attacker, in a loop, for the race's time. */
  function race(name: string, source: string, ...args: string[]): void {
    const script = join(tmp, `${name}.pl`);
    writeFileSync(script, `use strict; use warnings;\n${source}`, { mode: 0o644 });
    const end = Math.ceil(Date.now() / 1000) + Math.ceil(RACE_MS / 1000) + 1;
    // exec: perl takes the loop's process, so stopRaces() ends perl itself.
    attacker.race(`exec perl ${[script, String(end), ...args].map((arg) => `'${arg}'`).join(' ')}`, Math.ceil(RACE_MS / 1000) + 2);
  }

  /**
   * The attacker's swap: the folder `$dir` away, a symlink to `$target` in its place for a moment, the
   * folder back; `guard` (perl) says when the folder is there to swap.
   */
  const swapFolder = (guard: string) => `my ($end, $dir, $target) = @ARGV;
while (time() < $end) {
  ${guard}
  next unless rename($dir, "$dir.real");
  symlink($target, "$dir.planted"); rename("$dir.planted", $dir);
  select(undef, undef, undef, rand(0.004));
  unlink($dir); rename("$dir.real", $dir);
  select(undef, undef, undef, rand(0.002));
}`;

  let deployments = 0;
  const install = (tree: TreeSpec, appspec: ReturnType<typeof makeAppSpec>) => {
    const id = `d-${++deployments}`;
    makeRevision(root, id, tree);
    return runInstall({ rootDir: root, groupId: 'grp', deploymentId: id, archiveDir: deploymentPaths(root, 'grp', id).archiveDir, appspec, fileExistsBehavior: 'OVERWRITE', logger: new MemoryLogger() });
  };

  /**
   * Deploys over and over while the attacker races, checking the sentinel after each deployment and
   * what each failure says. Returns how many succeeded and how many were refused.
   */
  async function deployWhileRacing(deploy: (round: number) => Promise<unknown>): Promise<{ succeeded: number; refused: number; messages: Set<string> }> {
    const outcome = { succeeded: 0, refused: 0, messages: new Set<string>() };
    const deadline = Date.now() + RACE_MS;
    for (let round = 0; Date.now() < deadline; round++) {
      try {
        await deploy(round);
        outcome.succeeded++;
      } catch (error) {
        outcome.refused++;
        expect(error).toBeInstanceOf(InstallError);
        const message = (error as Error).message;
        expect(message).toContain(www);
        if (/is a symbolic link/.test(message)) expect(message).toContain(`${attacker.name} (uid ${attacker.uid})`);
        outcome.messages.add(message.split('\n')[0].replace(/d-\d+/g, 'd-N'));
      }
      expect(sentinelState()).toEqual(sentinelBefore);
    }
    await attacker.stopRaces();
    return outcome;
  }

  it('a folder on the path swapped for a symlink to a root folder: nothing is written there', { timeout: 60_000 }, async () => {
    makeSentinel(['index.html', 'sub/page.html', 'new.txt']);
    const bundle: TreeSpec = { 'app/index.html': 'bundle', 'app/sub/page.html': 'bundle', 'app/new.txt': 'bundle' };
    race(
      'swap-folder',
      swapFolder(''),
      join(www, 'app'),
      sentinel,
    );
    const outcome = await deployWhileRacing(() => install(bundle, makeAppSpec([{ source: 'app', destination: join(www, 'app') }])));
    // The race really happened, and deployments that found the real folder went through.
    expect(outcome.refused, [...outcome.messages].join('\n')).toBeGreaterThan(0);
    expect(outcome.succeeded, [...outcome.messages].join('\n')).toBeGreaterThan(0);
    expect([...outcome.messages].some((message) => message.includes(`${join(www, 'app')} is a symbolic link`))).toBe(true);
  });

  it.skipIf(noSetfacl)(
    'a copied file swapped (for a symlink, or for the attacker\'s own file) before its mode, owner and ACL are set: none lands on anything else',
    { timeout: 60_000 },
    async () => {
      makeSentinel(['secret']);
      const bundle: TreeSpec = { 'app/tool': { content: 'bundle tool\n', mode: 0o755 }, 'app/data.txt': 'bundle data\n', 'app/more.txt': 'bundle more\n' };
      const appspec = makeAppSpec(
        [{ source: 'app', destination: join(www, 'app') }],
        [
          { object: join(www, 'app', 'tool'), type: ['file'], mode: 0o4755, owner: 'root' },
          { object: join(www, 'app'), pattern: '*.txt', type: ['file'], mode: 0o640, acls: [`user:${attacker.name}:rw-`] },
        ],
      );
      race(
        'swap-files',
        `my ($end, $dir, $target, @names) = @ARGV;
my $round = 0;
while (time() < $end) {
  for my $name (@names) {
    my $path = "$dir/$name";
    my @stats = lstat($path);
    next unless @stats && -f _ && $stats[4] == 0;
    if ($round++ % 2) { symlink($target, "$path.x"); }
    else { open(my $f, '>', "$path.x") or next; print $f "attacker\\n"; close $f; chmod 0755, "$path.x"; }
    rename("$path.x", $path);
  }
}`,
        join(www, 'app'),
        join(sentinel, 'secret'),
        'tool',
        'data.txt',
        'more.txt',
      );
      const outcome = await deployWhileRacing(() => install(bundle, appspec));
      expect(outcome.refused + outcome.succeeded).toBeGreaterThan(0);
      // Whatever is left: nothing of the attacker's became setuid, root's, or got the ACL.
      for (const name of readdirSync(join(www, 'app'))) {
        const path = join(www, 'app', name);
        const stats = lstatSync(path);
        if (!stats.isFile() || !readFileSync(path, 'utf8').startsWith('attacker')) continue;
        expect(stats.uid).toBe(attacker.uid);
        expect(stats.mode & 0o6000).toBe(0);
        expect(execFileSync('getfacl', ['-p', '-n', path], { encoding: 'utf8' })).not.toContain(`user:${attacker.uid}:`);
      }
    },
  );

  it('a folder of the previous revision swapped for a symlink before its files are removed: nothing there is deleted', { timeout: 60_000 }, async () => {
    makeSentinel(['a', 'b', 'deeper/c']);
    const withOld: TreeSpec = { 'app/keep.txt': 'keep', 'app/old/a': 'old a', 'app/old/b': 'old b', 'app/old/deeper/c': 'old c' };
    const withoutOld: TreeSpec = { 'app/keep.txt': 'keep' };
    const appspec = makeAppSpec([{ source: 'app', destination: join(www, 'app') }]);
    await install(withOld, appspec);
    race(
      'swap-old',
      swapFolder('next unless -d $dir && ! -l $dir;'),
      join(www, 'app', 'old'),
      sentinel,
    );
    // Remove the old folder (second deployment), put it back (first bundle again), and so on.
    const outcome = await deployWhileRacing((round) => install(round % 2 === 0 ? withoutOld : withOld, appspec));
    expect(outcome.refused, [...outcome.messages].join('\n')).toBeGreaterThan(0);
    expect(outcome.succeeded, [...outcome.messages].join('\n')).toBeGreaterThan(0);
  });

  it('a folder Install made swapped for a symlink while a failed Install is rolled back: the rollback removes nothing there', { timeout: 60_000 }, async () => {
    const names = Array.from({ length: 30 }, (_, index) => `f${String(index).padStart(2, '0')}`);
    makeSentinel(names);
    const bundle: TreeSpec = Object.fromEntries(names.map((name) => [`app/sub/${name}`, `bundle ${name}`]));
    // A failure after every file is copied: a context the (fake) semanage refuses.
    const bin = join(tmp, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'semanage'), '#!/bin/sh\necho "semanage: refused" >&2\nexit 1\n', { mode: 0o755 });
    writeFileSync(join(bin, 'restorecon'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin}:${savedPath}`;
    try {
      const appspec = makeAppSpec([{ source: 'app', destination: join(www, 'app') }], [{ object: join(www, 'app', 'sub', 'f00'), type: ['file'], context: { type: 'httpd_sys_content_t' } }]);
      race(
        'swap-made',
        // Only the folder Install made (root's): not the leftover of a rollback the swap made fail.
        swapFolder('my @stats = lstat($dir); next unless @stats && -d _ && $stats[4] == 0;'),
        join(www, 'app', 'sub'),
        sentinel,
      );
      const outcome = await deployWhileRacing(() => install(bundle, appspec));
      expect(outcome.succeeded).toBe(0);
      expect(outcome.refused).toBeGreaterThan(0);
    } finally {
      process.env.PATH = savedPath;
    }
  });

  it('a symlink of the operator\'s (root\'s, in a folder only root can change) is followed; the same link in the attacker\'s folder is not', async () => {
    const srv = join(tmp, 'srv');
    mkdirSync(join(srv, 'releases', 'r1'), { recursive: true });
    execFileSync('ln', ['-s', 'releases/r1', join(srv, 'current')]);
    await install({ 'app/index.html': 'v1' }, makeAppSpec([{ source: 'app', destination: join(srv, 'current', 'site') }]));
    expect(readFileSync(join(srv, 'releases', 'r1', 'site', 'index.html'), 'utf8')).toBe('v1');

    makeSentinel(['site/index.html']);
    execFileSync('ln', ['-s', sentinel, join(www, 'current')]);
    const error = await install({ 'app/index.html': 'v2' }, makeAppSpec([{ source: 'app', destination: join(www, 'current', 'site') }])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InstallError);
    expect((error as Error).message).toContain(`${join(www, 'current')} is a symbolic link (to ${sentinel}) in ${www}, which belongs to ${attacker.name} (uid ${attacker.uid})`);
    expect(sentinelState()).toEqual(sentinelBefore);
  });
});
