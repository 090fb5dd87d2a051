import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/config/agent-config.js';
import { runEvent, type EngineContext } from '../../src/deployment/engine.js';
import { archiveAttributesFileFor, deploymentPaths, groupDir } from '../../src/deployment/layout.js';
import { writeLastSuccessfulInstall } from '../../src/deployment/markers.js';
import type { DeploymentSpec } from '../../src/deployment/spec-types.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { ArchiveError } from '../../src/report/errors.js';
import { runCli } from '../helpers/cli.js';
import { hostileUserMissing, letEveryoneIn, useHostileUser } from '../helpers/hostile-user.js';
import { missingTool } from '../helpers/prerequisites.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * The unpacked revision root runs hooks from (deployment-archive) belongs to root, whatever owners the
 * bundle carried, with a real user as the owner a tarball names: they race to change the hook scripts
 * while deployments run, and hold a writable descriptor of a script that an earlier agent left theirs.
 * The installed copies still get the bundle's owners and modes, with a warning for setuid and
 * world-writable ones.
 */
const missing = hostileUserMissing() ?? missingTool('perl');

describe.skipIf(missing)('deployment-archive belongs to root', () => {
  const user = useHostileUser('arch');
  let tmp: string;
  let removeTmp: () => void;
  let root: string;

  beforeEach(() => {
    ({ dir: tmp, cleanup: removeTmp } = makeTempDir('cda-archive-owner-'));
    letEveryoneIn(tmp);
    root = join(tmp, 'root');
  });
  afterEach(async () => {
    await user.stopRaces();
    removeTmp();
  });

  /** Lines the attacker's loop wrote: every change it managed to make. */
  const successes = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

  it('a tarball that names a user as owner: that user cannot change a script root runs, and the installed files are theirs with the bundle\'s modes', { timeout: 90_000 }, async () => {
    const src = join(tmp, 'src');
    const dest = join(tmp, 'dest');
    const record = join(tmp, 'record.txt');
    mkdirSync(join(src, 'scripts'), { recursive: true });
    mkdirSync(join(src, 'content', 'bin'), { recursive: true });
    writeFileSync(join(src, 'scripts', 'after.sh'), '#!/bin/sh\necho "after install ran" >> "$RECORD_FILE"\n', { mode: 0o775 });
    writeFileSync(join(src, 'content', 'index.html'), 'hello\n');
    chmodSync(join(src, 'content', 'index.html'), 0o664);
    writeFileSync(join(src, 'content', 'shared.txt'), 'anyone may write\n');
    chmodSync(join(src, 'content', 'shared.txt'), 0o666);
    writeFileSync(join(src, 'content', 'bin', 'tool'), '#!/bin/sh\n');
    chmodSync(join(src, 'content', 'bin', 'tool'), 0o4755);
    writeFileSync(
      join(src, 'appspec.yml'),
      `version: 0.0\nos: linux\nfiles:\n  - source: content\n    destination: ${dest}\nhooks:\n  AfterInstall:\n    - location: scripts/after.sh\n      timeout: 30\n`,
    );
    const bundle = join(tmp, 'bundle.tar');
    execFileSync('tar', ['--owner', `${user.name}:${user.uid}`, '--group', `${user.name}:${user.gid}`, '-cf', bundle, '-C', src, '.']);
    const config = join(tmp, 'agent.yml');
    writeFileSync(config, `:root_dir: ${root}\n:log_dir: ${join(tmp, 'log')}\n:pid_dir: ${join(tmp, 'pid')}\n`);

    // The user's loop: append to, replace, or chmod every script of every unpacked revision it can reach.
    const changed = join(tmp, 'changed.txt');
    writeFileSync(changed, '');
    chownSync(changed, user.uid, user.gid);
    const script = join(tmp, 'attack.pl');
    writeFileSync(
      script,
      `use strict; use warnings;
my ($end, $root, $out) = @ARGV;
open(my $log, '>>', $out) or die; $log->autoflush(1);
while (time() < $end) {
  for my $path (glob("$root/*/*/deployment-archive/scripts/*.sh")) {
    if (open(my $f, '>>', $path)) { print $f "\\necho evil >> \\"\\$RECORD_FILE\\"\\n"; close $f; print $log "appended $path\\n"; }
    if (chmod(0777, $path)) { print $log "chmod $path\\n"; }
    my $dir = $path; $dir =~ s{/[^/]+$}{};
    if (open(my $g, '>', "$dir/.evil")) { print $g "#!/bin/sh\\necho evil >> \\"\\$RECORD_FILE\\"\\n"; close $g; print $log "created in $dir\\n"; rename("$dir/.evil", $path) and print $log "replaced $path\\n"; }
  }
}
`,
      { mode: 0o644 },
    );
    const end = Math.ceil(Date.now() / 1000) + 30;
    // exec: perl takes the loop's process, so stopRaces() ends perl itself.
    user.race(`exec perl '${script}' ${end} '${root}' '${changed}'`, 32);

    for (let round = 0; round < 3; round++) {
      rmSync(dest, { recursive: true, force: true });
      const result = await runCli(['deploy', '-c', config, '-l', bundle, '-t', 'tar', '-g', `group-${round}`, '-b', 'OVERWRITE'], { env: { RECORD_FILE: record } });
      expect(result.exitCode, result.all).toBe(0);
      expect(result.stderr).toMatch(/installs 1 setuid or setgid file\(s\): .*bin\/tool \(4755\)/);
      expect(result.stderr).toMatch(/1 world-writable file\(s\) or folder\(s\): .*shared\.txt \(0666\)/);
      // The installed copies: the tarball's owner and modes, as `tar -p` and AWS's agent give them.
      for (const [name, mode] of [['index.html', 0o664], ['shared.txt', 0o666], ['bin/tool', 0o4755]] as const) {
        expect(lstatSync(join(dest, name))).toMatchObject({ uid: user.uid, gid: user.gid });
        expect(lstatSync(join(dest, name)).mode & 0o7777).toBe(mode);
      }
    }
    await user.stopRaces();
    expect(successes(changed)).toEqual([]);
    expect(readFileSync(record, 'utf8')).toBe('after install ran\n'.repeat(3));
    // Every unpacked revision: the agent's, nothing setuid, nothing others may write.
    for (let round = 0; round < 3; round++) {
      const [deployment] = readdirSync(groupDir(root, `group-${round}`));
      const archive = join(groupDir(root, `group-${round}`), deployment, 'deployment-archive');
      const entries = execFileSync('find', [archive, '-printf', '%U:%G %m %p\\n'], { encoding: 'utf8' }).trim().split('\n');
      for (const entry of entries) expect(entry).toMatch(/^0:0 (7[0-5][0-5]|6[0-4][0-4]|[0-7][0-5][0-5]) /);
      expect(readFileSync(join(archive, 'scripts', 'after.sh'), 'utf8')).toBe(readFileSync(join(src, 'scripts', 'after.sh'), 'utf8'));
      // Unpacked ahead (staged) and put in place at DownloadBundle's turn: the record stays beside it, so the
      // next deployment's ApplicationStop finds it root's and Install finds the bundle's owners.
      expect(readFileSync(join(groupDir(root, `group-${round}`), deployment, 'archive-attributes.json'), 'utf8')).toContain(`${user.uid}`);
    }
  });

  describe('a revision an earlier agent left with its bundle\'s owners', () => {
    const group = 'group-1';
    const previous = () => deploymentPaths(root, group, 'd-PREVIOUS');
    const spec = (deploymentId: string): DeploymentSpec => ({
      deploymentId,
      deploymentGroupId: group,
      deploymentGroupName: 'Group',
      applicationName: 'App',
      deploymentCreator: 'user',
      deploymentType: 'IN_PLACE',
      appSpecFilename: 'appspec.yml',
      revision: { type: 'Local Directory', location: join(tmp, 'unused'), bundleType: 'directory' },
    });
    const context = (record: string): EngineContext => ({
      config: { ...defaultConfig(), root_dir: root },
      logger: new MemoryLogger(),
      baseEnv: { PATH: process.env.PATH, RECORD_FILE: record },
    });

    /** deployment-archive as AWS's agent (tar -xp as root) leaves it: the user's files, the last successful install. */
    function leaveOldRevision(stop: string): string {
      const { archiveDir, deploymentDir } = previous();
      mkdirSync(join(archiveDir, 'scripts'), { recursive: true });
      writeFileSync(join(archiveDir, 'appspec.yml'), 'version: 0.0\nos: linux\nhooks:\n  ApplicationStop:\n    - location: scripts/stop.sh\n');
      writeFileSync(join(archiveDir, 'scripts', 'stop.sh'), stop);
      for (const path of [join(archiveDir, 'scripts'), join(archiveDir, 'scripts', 'stop.sh'), join(archiveDir, 'appspec.yml')]) chownSync(path, user.uid, user.gid);
      chmodSync(join(archiveDir, 'scripts', 'stop.sh'), 0o4775);
      writeLastSuccessfulInstall(root, group, deploymentDir);
      return archiveDir;
    }

    it('is made root\'s before its ApplicationStop runs: a descriptor the user opened for writing before cannot change the script that runs', { timeout: 60_000 }, async () => {
      const record = join(tmp, 'record.txt');
      const original = '#!/bin/sh\necho "original stop" >> "$RECORD_FILE"\n';
      const archive = leaveOldRevision(original);
      const stop = join(archive, 'scripts', 'stop.sh');
      // The user opens the script for writing while it is theirs, waits, and writes through that descriptor.
      const theirs = join(tmp, 'theirs');
      mkdirSync(theirs);
      chownSync(theirs, user.uid, user.gid);
      const ready = join(theirs, 'ready');
      const go = join(tmp, 'go');
      const outcome = join(theirs, 'outcome.txt');
      const script = join(tmp, 'hold.pl');
      writeFileSync(
        script,
        `use strict; use warnings;
my ($end, $path, $ready, $go, $out) = @ARGV;
open(my $held, '+<', $path) or die "open: $!";
open(my $r, '>', $ready) or die; close $r;
select(undef, undef, undef, 0.01) until -e $go or time() > $end;
seek($held, 0, 0); print $held "#!/bin/sh\\necho evil >> \\"\\$RECORD_FILE\\"\\n"; close $held;
open(my $log, '>', $out) or die;
print $log (open(my $again, '>>', $path) ? "reopened\\n" : "refused\\n");
close $log;
`,
        { mode: 0o644 },
      );
      const end = Math.ceil(Date.now() / 1000) + 30;
      user.race(`exec perl '${script}' ${end} '${stop}' '${ready}' '${go}' '${outcome}'`, 30);
      await until(() => existsSync(ready));

      const engine = context(record);
      // ApplicationStop of the next deployment: the previous revision is made root's first (a new inode for
      // the script), then the user writes through their old descriptor, then the script runs.
      const started = runEvent(spec('d-NEXT'), 'ApplicationStop', {
        ...engine,
        onScriptStart: () => {
          writeFileSync(go, '');
        },
      });
      await started;
      await until(() => existsSync(outcome));
      expect(readFileSync(outcome, 'utf8')).toBe('refused\n');
      expect(readFileSync(record, 'utf8')).toBe('original stop\n');
      expect(readFileSync(stop, 'utf8')).toBe(original);
      expect(lstatSync(stop)).toMatchObject({ uid: 0, gid: 0 });
      expect(lstatSync(stop).mode & 0o7777).toBe(0o755);
      expect(lstatSync(join(archive, 'scripts'))).toMatchObject({ uid: 0, gid: 0 });
      // What the bundle had is kept for an Install from it, and the folder is not walked again.
      const attributes = JSON.parse(readFileSync(archiveAttributesFileFor(archive), 'utf8')) as { entries: unknown[] };
      expect(attributes.entries).toContainEqual(['scripts/stop.sh', 0o4775, user.uid, user.gid]);
      expect((engine.logger as MemoryLogger).text()).toMatch(/was unpacked by an earlier agent with its bundle's owners and modes \(3 entries, e\.g\. appspec\.yml, scripts, scripts\/stop\.sh\)/);
    });

    it('holding a symlink that leads out of it, or a FIFO, is refused: its scripts do not run', async () => {
      const record = join(tmp, 'record.txt');
      const archive = leaveOldRevision('#!/bin/sh\necho "original stop" >> "$RECORD_FILE"\n');
      const evil = join(tmp, 'evil.sh');
      writeFileSync(evil, '#!/bin/sh\necho evil >> "$RECORD_FILE"\n', { mode: 0o755 });
      rmSync(join(archive, 'scripts', 'stop.sh'));
      symlinkSync(evil, join(archive, 'scripts', 'stop.sh'));
      const error = await runEvent(spec('d-NEXT'), 'ApplicationStop', context(record)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ArchiveError);
      expect((error as Error).message).toContain(`${archive} was changed after its bundle was unpacked: the entry 'scripts/stop.sh': it is a symbolic link to the absolute path '${evil}'`);
      expect(existsSync(record)).toBe(false);

      rmSync(join(archive, 'scripts', 'stop.sh'));
      execFileSync('mkfifo', [join(archive, 'scripts', 'stop.sh')]);
      const fifo = await runEvent(spec('d-NEXT'), 'ApplicationStop', context(record)).catch((e: unknown) => e);
      expect((fifo as Error).message).toContain("'scripts/stop.sh' is a FIFO, socket or device, which no unpacked bundle holds");
      expect(existsSync(record)).toBe(false);
    });
  });
});

async function until(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
