/**
 * Paths and names as a hostile local user would try them against the agent (root): a `-g` that climbs
 * out of the deployment root, a configuration that points root_dir at a system folder, and a group
 * folder the user can write, seeded with a symlink named like a deployment, a folder of their own and a
 * folder that is not a deployment — and a user-owned folder inside an old revision swapped for a symlink
 * while retention deletes it. Every file that must not change is checked: bytes, mode and owner.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { hostileUserMissing, useHostileUser } from '../helpers/hostile-user.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeTempDir } from '../helpers/tmp.js';

const tmp = makeTempDir('cda-attack-paths-');
afterAll(tmp.cleanup);
const root = join(tmp.dir, 'root');
const configFile = join(tmp.dir, 'agent.yml');
writeAgentConfig(configFile, { root_dir: root, log_dir: join(tmp.dir, 'log'), pid_dir: join(tmp.dir, 'pid'), max_revisions: 1 });

function bundle(name: string): string {
  const dir = join(tmp.dir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'appspec.yml'), 'version: 0.0\nos: linux\n');
  return dir;
}

/** What must not change: bytes, mode and owner of every file under `dir` (and of `dir`). */
function snapshot(dir: string): string {
  const lines: string[] = [];
  const walk = (path: string) => {
    const stats = lstatSync(path);
    lines.push(`${path} ${stats.mode.toString(8)} ${stats.uid}:${stats.gid} ${stats.isFile() ? readFileSync(path, 'base64') : ''}`);
    if (stats.isDirectory()) for (const name of readdirSync(path).sort()) walk(join(path, name));
  };
  walk(dir);
  return lines.join('\n');
}

function victim(name: string): string {
  const dir = join(tmp.dir, name);
  mkdirSync(join(dir, 'inner'), { recursive: true });
  writeFileSync(join(dir, 'secret.txt'), 'root only\n', { mode: 0o600 });
  writeFileSync(join(dir, 'inner', 'data.bin'), Buffer.from([0, 1, 2, 3]), { mode: 0o644 });
  return dir;
}

describe('paths and names', () => {
  it.each(['../../etc', '..', 'a/b', 'deployment-instructions', ''])('refuses -g %j before anything is written', async (group) => {
    const result = await runCli(['deploy', '-c', configFile, '-l', bundle('plain'), '-g', group]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`-g ${JSON.stringify(group)} cannot be a deployment group`);
    expect(existsSync(root) ? readdirSync(root) : []).not.toContain('etc');
  });

  it('refuses a configuration whose root_dir is a system folder, and one named with -c that is empty', async () => {
    const bad = join(tmp.dir, 'bad.yml');
    writeFileSync(bad, ':root_dir: /usr\n');
    const refused = await runCli(['deploy', '-c', bad, '-l', bundle('plain'), '-g', 'x']);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('key root_dir has the value "/usr", which is the system folder /usr');
    writeFileSync(bad, '# all commented out\n# :root_dir: /opt/x\n');
    const empty = await runCli(['deploy', '-c', bad, '-l', bundle('plain'), '-g', 'x']);
    expect(empty.exitCode).toBe(1);
    expect(empty.stderr).toContain('is empty (or only comments): it sets no key');
  });

  it('says unknown and repeated configuration keys on the terminal', async () => {
    const noisy = join(tmp.dir, 'noisy.yml');
    writeFileSync(noisy, `:root_dir: ${root}\n:log_dir: ${join(tmp.dir, 'log')}\n:max_revison: 3\n:root_dir: ${root}\n`);
    const result = await runCli(['deploy', '-c', noisy, '-l', bundle('plain'), '-g', 'noisy']);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stderr).toContain(`warning: ${noisy}: unknown configuration key :max_revison is ignored`);
    expect(result.stderr).toContain(`warning: ${noisy}: key root_dir is set 2 times (lines 1, 4)`);
  });
});

describe.skipIf(hostileUserMissing())('retention against a hostile user', () => {
  const mallory = useHostileUser('ret', tmp.dir);

  it('deletes only the agent\'s own deployment folders from a group folder the user can write', async () => {
    const group = 'shared-web';
    const first = await runCli(['deploy', '-c', configFile, '-l', bundle('plain'), '-g', group]);
    expect(first.exitCode, first.all).toBe(0);
    const groupDir = join(root, group);
    const [ownDeployment] = readdirSync(groupDir);
    // The next one becomes the last successful deployment, which retention keeps besides the current one.
    expect((await runCli(['deploy', '-c', configFile, '-l', bundle('plain'), '-g', group])).exitCode).toBe(0);
    // A misconfigured host: the group folder belongs to the user.
    chownSync(groupDir, mallory.uid, mallory.gid);
    const target = victim('victim-retention');
    const before = snapshot(target);
    const planted = await mallory.sh([
      `cd '${groupDir}'`,
      `ln -s '${target}' d-AAAAAAAAA`,
      'mkdir -p d-BBBBBBBBB/deployment-archive && echo mine > d-BBBBBBBBB/deployment-archive/f',
      'mkdir important && echo keep > important/notes.txt',
      'touch d-CCCCCCCCC',
    ].join(' && '));
    expect(planted.exitCode, planted.stderr).toBe(0);
    const theirs = snapshot(join(groupDir, 'd-BBBBBBBBB'));
    const important = snapshot(join(groupDir, 'important'));

    const second = await runCli(['deploy', '-c', configFile, '-l', bundle('plain'), '-g', group]);
    expect(second.exitCode, second.all).toBe(0);
    // max_revisions 1: the agent's oldest deployment went (the last successful one stays), nothing else did.
    expect(existsSync(join(groupDir, ownDeployment))).toBe(false);
    expect(lstatSync(join(groupDir, 'd-AAAAAAAAA')).isSymbolicLink()).toBe(true);
    expect(snapshot(target)).toBe(before);
    expect(snapshot(join(groupDir, 'd-BBBBBBBBB'))).toBe(theirs);
    expect(snapshot(join(groupDir, 'important'))).toBe(important);
    expect(existsSync(join(groupDir, 'd-CCCCCCCCC'))).toBe(true);
    expect(readFileSync(join(tmp.dir, 'log', 'codedeploy-local.log'), 'utf8')).toMatch(/which the agent did not make as a deployment folder; retention leaves them alone/);
  });

  it('never deletes through a symlink swapped into an old revision while retention deletes it', async () => {
    // An archive that carries the user's uid: as root, its folders are unpacked owned by the user.
    const source = join(tmp.dir, 'owned-bundle');
    mkdirSync(join(source, 'data', 'sub'), { recursive: true });
    writeFileSync(join(source, 'appspec.yml'), 'version: 0.0\nos: linux\n');
    for (let i = 0; i < 3000; i++) writeFileSync(join(source, 'data', 'sub', `f${i}`), 'x');
    const tarball = join(tmp.dir, 'owned.tar');
    execFileSync('tar', ['--owner', mallory.name, '--group', mallory.name, '-cf', tarball, '-C', source, '.']);
    const target = victim('victim-race');
    // Names the revision's folder has too: a delete that went through the link would find them.
    for (let i = 0; i < 3000; i += 10) writeFileSync(join(target, `f${i}`), `victim ${i}\n`, { mode: 0o600 });
    chmodSync(target, 0o755);
    const before = snapshot(target);
    const group = 'race-web';
    const deadline = Date.now() + 15_000;
    let rounds = 0;
    while (Date.now() < deadline && rounds < 4) {
      rounds++;
      const deployed = await runCli(['deploy', '-c', configFile, '-l', tarball, '-t', 'tar', '-g', group]);
      expect(deployed.exitCode, deployed.all).toBe(0);
      // Swap data/sub (the user's own folder inside the revision) for a link to the victim, over and over,
      // while the next deploy's retention deletes this revision.
      await mallory.stopRaces();
      mallory.race(`for d in '${join(root, group)}'/d-*/deployment-archive/data; do mv "$d/sub" "$d/sub.x" 2>/dev/null; ln -s '${target}' "$d/sub" 2>/dev/null; rm -f "$d/sub" 2>/dev/null; mv "$d/sub.x" "$d/sub" 2>/dev/null; done`, 20);
    }
    await mallory.stopRaces();
    expect(snapshot(target)).toBe(before);
  });
});
