import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cleanupFile, deploymentPaths, installJsonFile } from '../../src/deployment/layout.js';
import { runInstall } from '../../src/install/install.js';
import { MemoryLogger } from '../helpers/memory-logger.js';
import { InstallError } from '../../src/report/errors.js';
import { missingTool } from '../helpers/prerequisites.js';
import { makeTempDir } from '../helpers/tmp.js';
import { DEPLOYMENT_FOLDER_AFTER_INSTALL, makeAppSpec, makeRevision, readOptional, snapshot, writeTree } from './install-fixtures.js';

/** The ACL tests need setfacl and getfacl (Debian's acl package). */
const noSetfacl = missingTool('setfacl') !== undefined;

const USER = `cdainstu${process.pid % 100000}`;
const GROUP = `cdainstg${process.pid % 100000}`;

function removeAccounts(): void {
  try {
    execFileSync('userdel', [USER], { stdio: 'ignore' });
  } catch {
    // not there
  }
  try {
    execFileSync('groupdel', [GROUP], { stdio: 'ignore' });
  } catch {
    // not there
  }
}

let uid: number;
let gid: number;
beforeAll(() => {
  removeAccounts();
  execFileSync('groupadd', [GROUP]);
  execFileSync('useradd', ['--no-create-home', '--no-user-group', '--shell', '/usr/sbin/nologin', USER]);
  uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());
  gid = Number(execFileSync('getent', ['group', GROUP], { encoding: 'utf8' }).split(':')[2]);
});
afterAll(() => removeAccounts());

let tmp: string;
let removeTmp: () => void;
let root: string;
let dest: string;
beforeEach(() => {
  ({ dir: tmp, cleanup: removeTmp } = makeTempDir('cda-install-'));
  root = join(tmp, 'root');
  dest = join(tmp, 'dest');
});
afterEach(() => removeTmp());

function install(deploymentId: string, appspec: ReturnType<typeof makeAppSpec>, fileExistsBehavior?: string, logger = new MemoryLogger()) {
  return runInstall({ rootDir: root, groupId: 'grp', deploymentId, archiveDir: deploymentPaths(root, 'grp', deploymentId).archiveDir, appspec, fileExistsBehavior, logger });
}

const cleanupOf = () => readOptional(cleanupFile(root, 'grp'));
/** Copies run in parallel, so their lines come in any order (directories always before their contents). */
const sortedCleanup = () => (cleanupOf() ?? '').split('\n').filter(Boolean).sort();
const getfacl = (path: string) => execFileSync('getfacl', ['--omit-header', '--absolute-names', path], { encoding: 'utf8' });

describe('runInstall', () => {
  it.skipIf(noSetfacl)('copies files with their modes, times and owners, keeps links as links, sets permissions and ACLs', async () => {
    const archive = makeRevision(root, 'd-1', {
      'appspec.yml': 'version: 0.0',
      'app/index.html': '<html/>',
      'app/run.sh': { content: '#!/bin/sh\n', mode: 0o755 },
      'app/bin/suid': { content: 'suid', mode: 0o4755 },
      'app/sub/data.txt': 'data',
      'app/current': { link: 'sub/data.txt' },
      'app/etc-link': { link: '/etc' },
      'app/dangling': { link: '../nowhere' },
    });
    chownSync(join(archive, 'app/index.html'), uid, gid);
    utimesSync(join(archive, 'app/sub/data.txt'), 1_000_000, 1_000_000);

    const appspec = makeAppSpec(
      [{ source: 'app', destination: dest }],
      [
        { object: dest, pattern: '*.sh', owner: USER, group: GROUP, mode: 0o750 },
        { object: join(dest, 'bin/suid'), mode: 0o4755, owner: USER },
        { object: dest, pattern: 'sub', type: ['directory'], mode: 0o770, acls: [`user:${USER}:rwx`, `default:user:${USER}:r-x`] },
        { object: join(dest, 'sub'), type: ['file'], acls: [`group:${GROUP}:r--`] },
      ],
    );
    const result = await install('d-1', appspec);
    expect(result).toMatchObject({ filesCopied: 4, linksCreated: 3, directoriesCreated: 3, removed: 0 });

    expect(readFileSync(join(dest, 'index.html'), 'utf8')).toBe('<html/>');
    expect(statSync(join(dest, 'index.html'))).toMatchObject({ uid, gid });
    expect(statSync(join(dest, 'sub/data.txt')).mtimeMs).toBe(1_000_000_000);

    const script = statSync(join(dest, 'run.sh'));
    expect([script.mode & 0o7777, script.uid, script.gid]).toEqual([0o750, uid, gid]);
    // chmod 4755 then chown: the setuid bit survives (the anchor's order lost it).
    const suid = statSync(join(dest, 'bin/suid'));
    expect([suid.mode & 0o7777, suid.uid]).toEqual([0o4755, uid]);

    expect(readlinkSync(join(dest, 'current'))).toBe('sub/data.txt');
    expect(readlinkSync(join(dest, 'etc-link'))).toBe('/etc');
    expect(readlinkSync(join(dest, 'dangling'))).toBe('../nowhere');
    expect(lstatSync(join(dest, 'etc-link')).isSymbolicLink()).toBe(true);

    const subAcl = getfacl(join(dest, 'sub'));
    expect(subAcl).toContain(`user:${USER}:rwx`);
    expect(subAcl).toContain(`default:user:${USER}:r-x`);
    expect(statSync(join(dest, 'sub')).mode & 0o777).toBe(0o770);
    expect(getfacl(join(dest, 'sub/data.txt'))).toContain(`group:${GROUP}:r--`);

    const listed = cleanupOf()!.split('\n').filter(Boolean);
    expect(listed.slice(0, 3)).toEqual([dest, join(dest, 'bin'), join(dest, 'sub')]);
    expect(new Set(listed)).toEqual(
      new Set([dest, join(dest, 'bin'), join(dest, 'sub'), ...['index.html', 'run.sh', 'bin/suid', 'sub/data.txt', 'current', 'etc-link', 'dangling'].map((f) => join(dest, f))]),
    );
    const json = JSON.parse(readFileSync(installJsonFile(root, 'grp'), 'utf8'));
    expect(json.instructions[0]).toEqual({ type: 'mkdir', directory: dest });
    expect(json.instructions).toContainEqual({ type: 'chmod', mode: '4755', file: join(dest, 'bin/suid') });
    expect(json.instructions).toContainEqual({ type: 'chown', owner: USER, group: GROUP, file: join(dest, 'run.sh') });
    expect(json.instructions).toContainEqual({ type: 'setfacl', acl: [`group:${GROUP}:r--`], file: join(dest, 'sub/data.txt') });
    expect(readdirSync(deploymentPaths(root, 'grp', 'd-1').deploymentDir)).toEqual(DEPLOYMENT_FOLDER_AFTER_INSTALL);
  });

  it('a second deployment removes the first one\'s files first, so they never conflict', async () => {
    makeRevision(root, 'd-1', { 'app/a.txt': 'one', 'app/old/only-in-one.txt': 'old', 'app/keep/x': 'x' });
    await install('d-1', makeAppSpec([{ source: 'app', destination: dest }]));
    writeFileSync(join(dest, 'keep', 'users-own-file'), 'mine');

    makeRevision(root, 'd-2', { 'app/a.txt': 'two', 'app/new.txt': 'new' });
    const result = await install('d-2', makeAppSpec([{ source: 'app', destination: dest }]));
    // x, only-in-one.txt, old/ and a.txt; keep/ (and so dest) still hold the user's file and stay.
    expect(result.removed).toBe(4);

    expect(readFileSync(join(dest, 'a.txt'), 'utf8')).toBe('two');
    expect(existsSync(join(dest, 'old'))).toBe(false);
    expect(readFileSync(join(dest, 'keep', 'users-own-file'), 'utf8')).toBe('mine');
    expect(existsSync(join(dest, 'keep', 'x'))).toBe(false);
    // dest existed this time, so (as in the anchor) it is no longer this group's to remove.
    expect(sortedCleanup()).toEqual([join(dest, 'a.txt'), join(dest, 'new.txt')]);
    expect(readdirSync(deploymentPaths(root, 'grp', 'd-2').deploymentDir)).toEqual(DEPLOYMENT_FOLDER_AFTER_INSTALL);
  });

  it('OVERWRITE replaces a file that was there before; RETAIN keeps it and does not track it', async () => {
    writeTree(dest, { 'conf.ini': 'local', 'other.txt': 'local' });
    makeRevision(root, 'd-1', { 'app/conf.ini': 'from revision', 'app/new.txt': 'new' });

    await install('d-1', makeAppSpec([{ source: 'app', destination: dest }], [], 'RETAIN'), 'OVERWRITE');
    expect(readFileSync(join(dest, 'conf.ini'), 'utf8')).toBe('local');
    expect(cleanupOf()).toBe(`${join(dest, 'new.txt')}\n`);

    makeRevision(root, 'd-2', { 'app/conf.ini': 'from revision', 'app/new.txt': 'new' });
    await install('d-2', makeAppSpec([{ source: 'app', destination: dest }]), 'overwrite');
    expect(readFileSync(join(dest, 'conf.ini'), 'utf8')).toBe('from revision');
    expect(readFileSync(join(dest, 'other.txt'), 'utf8')).toBe('local');
    expect(sortedCleanup()).toEqual([join(dest, 'conf.ini'), join(dest, 'new.txt')]);
    // The replaced file's backup is gone once Install succeeded.
    expect(readdirSync(deploymentPaths(root, 'grp', 'd-2').deploymentDir)).toEqual(DEPLOYMENT_FOLDER_AFTER_INSTALL);
  });

  it('never follows a link to a directory in the bundle (#152)', async () => {
    const secret = join(tmp, 'secret');
    writeTree(secret, { 'password.txt': 'hunter2' });
    makeRevision(root, 'd-1', { 'app/a.txt': 'a', 'app/leak': { link: secret } });
    await install('d-1', makeAppSpec([{ source: 'app', destination: dest }], [{ object: dest, mode: 0o700, owner: USER }]));
    expect(readlinkSync(join(dest, 'leak'))).toBe(secret);
    expect(readdirSync(dest).sort()).toEqual(['a.txt', 'leak']);
    // The link's target kept its own mode and owner.
    expect(statSync(secret)).toMatchObject({ uid: 0 });
    expect(statSync(secret).mode & 0o777).not.toBe(0o700);
    expect(lstatSync(join(dest, 'leak')).uid).toBe(uid);
  });

  it('gives files the revision\'s owner also below a setgid folder, as cp -a does', async () => {
    mkdirSync(dest);
    chownSync(dest, 0, gid);
    chmodSync(dest, 0o2775);
    makeRevision(root, 'd-1', { 'app/root-owned.txt': 'r', 'app/sub/deep.txt': 'd' });
    await install('d-1', makeAppSpec([{ source: 'app', destination: dest }]));
    expect(statSync(join(dest, 'root-owned.txt'))).toMatchObject({ uid: 0, gid: 0 });
    expect(statSync(join(dest, 'sub/deep.txt'))).toMatchObject({ uid: 0, gid: 0 });
    // Directories are created as the anchor creates them: the setgid folder's group is inherited.
    expect(statSync(join(dest, 'sub')).gid).toBe(gid);
  });

  it.skipIf(noSetfacl)('sets one ACL on many files (batched setfacl), each completed from its own mode', async () => {
    const tree: Record<string, { content: string; mode: number }> = {};
    for (let index = 0; index < 30; index++) tree[`app/f-${index}`] = { content: String(index), mode: index % 2 ? 0o640 : 0o600 };
    makeRevision(root, 'd-1', tree);
    await install('d-1', makeAppSpec([{ source: 'app', destination: dest }], [{ object: dest, acls: [`user:${USER}:r--`] }]));
    expect(getfacl(join(dest, 'f-1'))).toBe(`user::rw-\nuser:${USER}:r--\ngroup::r--\nmask::r--\nother::---\n\n`);
    expect(getfacl(join(dest, 'f-2'))).toBe(`user::rw-\nuser:${USER}:r--\t#effective:---\ngroup::---\nmask::---\nother::---\n\n`);
    for (let index = 0; index < 30; index++) expect(getfacl(join(dest, `f-${index}`))).toContain(`user:${USER}:r--`);
  });

  it.skipIf(noSetfacl)('gives large files (copied descriptor to descriptor) the bundle\'s and the appspec\'s mode, owner and ACL', async () => {
    const big = Buffer.alloc(300 * 1024, 7);
    makeRevision(root, 'd-1', { 'app/big.bin': { content: big, mode: 0o640 }, 'app/also-big.bin': { content: big, mode: 0o600 } });
    const appspec = makeAppSpec(
      [{ source: 'app', destination: dest }],
      [{ object: join(dest, 'big.bin'), type: ['file'], mode: 0o4750, owner: USER, group: GROUP, acls: [`user:${USER}:r--`] }],
    );
    await install('d-1', appspec);
    expect(readFileSync(join(dest, 'big.bin')).equals(big)).toBe(true);
    const stats = statSync(join(dest, 'big.bin'));
    expect([stats.mode & 0o7777, stats.uid, stats.gid]).toEqual([0o4750, uid, gid]);
    expect(getfacl(join(dest, 'big.bin'))).toContain(`user:${USER}:r--`);
    expect(statSync(join(dest, 'also-big.bin')).mode & 0o7777).toBe(0o600);
  });

  it('runs one Install at a time: two groups racing for one file get a clean win and a clean refusal', async () => {
    makeRevision(root, 'd-a', { 'app/shared.txt': 'from a', 'app/a-only.txt': 'a' }, 'grp-a');
    makeRevision(root, 'd-b', { 'app/shared.txt': 'from b', 'app/b-only.txt': 'b' }, 'grp-b');
    const run = (group: string, id: string) =>
      runInstall({ rootDir: root, groupId: group, deploymentId: id, archiveDir: deploymentPaths(root, group, id).archiveDir, appspec: makeAppSpec([{ source: 'app', destination: dest }]), logger: new MemoryLogger() });
    const results = await Promise.allSettled([run('grp-a', 'd-a'), run('grp-b', 'd-b')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect(readFileSync(join(dest, 'shared.txt'), 'utf8')).toBe('from a');
    expect(readdirSync(dest).sort()).toEqual(['a-only.txt', 'shared.txt']);
  });

  describe('a refused deployment leaves the host untouched', () => {
    async function expectRefusal(appspec: ReturnType<typeof makeAppSpec>, message: RegExp | string) {
      makeRevision(root, 'd-1', { 'app/a.txt': 'one', 'app/sub/b.txt': 'b' });
      await install('d-1', makeAppSpec([{ source: 'app', destination: dest }]));
      writeFileSync(join(dest, 'existing.txt'), 'pre-existing');
      const before = snapshot(tmp);
      const cleanupBefore = cleanupOf();
      const jsonBefore = readOptional(installJsonFile(root, 'grp'));

      const error = await install('d-2', appspec).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InstallError);
      expect((error as Error).message).toMatch(message);
      expect(snapshot(tmp)).toEqual(before);
      expect(cleanupOf()).toBe(cleanupBefore);
      expect(readOptional(installJsonFile(root, 'grp'))).toBe(jsonBefore);
    }

    it('an unknown user', async () => {
      makeRevision(root, 'd-2', { 'app/a.txt': 'two' });
      await expectRefusal(makeAppSpec([{ source: 'app', destination: dest }], [{ object: dest, owner: 'cdainst-nobody' }]), /no user named cdainst-nobody/);
    });

    it('an unknown group', async () => {
      makeRevision(root, 'd-2', { 'app/a.txt': 'two' });
      await expectRefusal(makeAppSpec([{ source: 'app', destination: dest }], [{ object: dest, group: 'cdainst-nogroup' }]), /no group named cdainst-nogroup/);
    });

    it('a DISALLOW conflict', async () => {
      makeRevision(root, 'd-2', { 'app/a.txt': 'two', 'app/existing.txt': 'clash' });
      await expectRefusal(
        makeAppSpec([{ source: 'app', destination: dest }]),
        `The deployment failed because a specified file already exists at this location: ${join(dest, 'existing.txt')}`,
      );
    });

    it('an SELinux context without semanage on the host', async () => {
      makeRevision(root, 'd-2', { 'app/a.txt': 'two' });
      await expectRefusal(
        makeAppSpec([{ source: 'app', destination: dest }], [{ object: dest, context: { type: 'httpd_sys_content_t' } }]),
        /semanage is not installed/,
      );
    });

    it('a file-permission validation error', async () => {
      makeRevision(root, 'd-2', { 'app/a.txt': 'two' });
      await expectRefusal(makeAppSpec([{ source: 'app', destination: dest }], [{ object: join(dest, 'a.txt'), pattern: '*.txt' }]), /with an invalid pattern \(\*\.txt\)/);
    });
  });

  it.skipIf(noSetfacl)('rolls back when setfacl fails half-way: files restored, new files gone, cleanup file as before', async () => {
    makeRevision(root, 'd-1', { 'app/a.txt': 'one', 'app/sub/b.txt': 'b', 'app/link': { link: 'a.txt' } });
    await install('d-1', makeAppSpec([{ source: 'app', destination: dest }]));
    writeTree(dest, { 'conf.ini': 'local', 'sub/users.txt': 'mine' });
    chmodSync(join(dest, 'conf.ini'), 0o600);
    const before = snapshot(dest);
    const cleanupBefore = cleanupOf();
    const jsonBefore = readOptional(installJsonFile(root, 'grp'));

    makeRevision(root, 'd-2', { 'app/a.txt': 'two', 'app/conf.ini': 'new conf', 'app/z/deep/c.txt': 'c' });
    // A name setfacl rejects, which nothing checks before: the failure comes after every file was copied.
    const appspec = makeAppSpec([{ source: 'app', destination: dest }], [{ object: join(dest, 'z'), acls: ['user:cdainst-no-such-user:rwx'] }], 'OVERWRITE');
    const logger = new MemoryLogger();
    const error = await install('d-2', appspec, undefined, logger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InstallError);
    expect((error as Error).message).toContain('Failed command: setfacl --set user:cdainst-no-such-user:rwx,');
    expect((error as Error).message).toContain('Everything Install had changed was undone.');

    expect(snapshot(dest)).toEqual(before);
    expect(cleanupOf()).toBe(cleanupBefore);
    expect(readOptional(installJsonFile(root, 'grp'))).toBe(jsonBefore);
    expect(readdirSync(deploymentPaths(root, 'grp', 'd-2').deploymentDir)).toEqual(DEPLOYMENT_FOLDER_AFTER_INSTALL);
  });

  describe('SELinux contexts through semanage and restorecon (fake tools on PATH)', () => {
    let savedPath: string | undefined;
    let calls: string;
    beforeEach(() => {
      const bin = join(tmp, 'bin');
      calls = join(tmp, 'calls.log');
      mkdirSync(bin);
      for (const tool of ['semanage', 'restorecon']) {
        writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> '${calls}'\n`, { mode: 0o755 });
      }
      savedPath = process.env.PATH;
      process.env.PATH = `${bin}:${savedPath}`;
    });
    afterEach(() => {
      process.env.PATH = savedPath;
    });

    it('adds the rule with argv (no shell), records it in the cleanup file, and the next deployment deletes it', async () => {
      makeRevision(root, 'd-1', { 'app/my file.html': 'x' });
      const target = join(dest, 'my file.html');
      await install('d-1', makeAppSpec([{ source: 'app', destination: dest }], [{ object: target, context: { type: 'httpd_sys_content_t', user: 'system_u' } }]));
      expect(readFileSync(calls, 'utf8')).toBe(`semanage fcontext -a -s system_u -t httpd_sys_content_t ${target}\nrestorecon -v ${target}\n`);
      expect(cleanupOf()).toBe(`${dest}\n${target}\nsemanage\0${target}\n`);
      const json = JSON.parse(readFileSync(installJsonFile(root, 'grp'), 'utf8'));
      expect(json.instructions).toContainEqual({ type: 'semanage', context: { user: 'system_u', role: null, type: 'httpd_sys_content_t', range: null }, file: target });

      makeRevision(root, 'd-2', { 'app/other.html': 'y' });
      await install('d-2', makeAppSpec([{ source: 'app', destination: dest }]));
      expect(readFileSync(calls, 'utf8').split('\n')).toContain(`semanage fcontext -d ${target}`);
      expect(existsSync(target)).toBe(false);
    });
  });
});
