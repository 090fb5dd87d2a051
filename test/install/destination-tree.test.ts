import { chmodSync, chownSync, fstatSync, lchownSync, mkdirSync, readdirSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DestinationTree, UnsafePathError } from '../../src/install/destination-tree.js';
import { descriptorPath } from '../../src/util/descriptor-path.js';
import { hostileUserMissing, letEveryoneIn, useHostileUser } from '../helpers/hostile-user.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * The rule for symlinks on the way to a destination, with real owners: followed when the link and its
 * folder are root's alone, refused (naming the link, its target and whose it is) otherwise.
 */
const missing = hostileUserMissing();

describe.skipIf(missing)('DestinationTree', () => {
  const user = useHostileUser('tree');
  let tmp: string;
  let removeTmp: () => void;
  let tree: DestinationTree;

  beforeEach(() => {
    ({ dir: tmp, cleanup: removeTmp } = makeTempDir('cda-tree-'));
    letEveryoneIn(tmp);
    tree = new DestinationTree();
  });
  afterEach(() => {
    tree.close();
    removeTmp();
  });

  /** A folder with a file in it, and what the path of that file leads to through the tree. */
  function target(name: string): string {
    const dir = join(tmp, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'marker'), name);
    return dir;
  }
  const markerThrough = (path: string) => readdirSync(descriptorPath(tree.directory(path)));

  it('follows a symlink that root made in a folder only root can change (an operator\'s `current`)', () => {
    target('releases/r42');
    symlinkSync('releases/r42', join(tmp, 'current'));
    expect(markerThrough(join(tmp, 'current'))).toEqual(['marker']);
    // Absolute targets and `..` resolve as the kernel would, by the same rules.
    mkdirSync(join(tmp, 'srv'));
    symlinkSync(join(tmp, 'releases'), join(tmp, 'srv', 'abs'));
    symlinkSync('../releases/r42/.', join(tmp, 'srv', 'rel'));
    expect(markerThrough(join(tmp, 'srv/abs/r42'))).toEqual(['marker']);
    expect(markerThrough(join(tmp, 'srv/rel'))).toEqual(['marker']);
  });

  it('follows root\'s symlink in a sticky folder everyone may write (others cannot replace root\'s entries there)', () => {
    target('real');
    const sticky = join(tmp, 'sticky');
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    symlinkSync('../real', join(sticky, 'link'));
    expect(markerThrough(join(sticky, 'link'))).toEqual(['marker']);
  });

  it('refuses a symlink another user made, naming it, its target and its owner', () => {
    target('sentinel');
    const www = join(tmp, 'www');
    mkdirSync(www);
    chownSync(www, user.uid, user.gid);
    symlinkSync('../sentinel', join(www, 'app'));
    lchownSync(join(www, 'app'), user.uid, user.gid);
    const error = captured(() => tree.directory(join(www, 'app', 'sub')));
    expect(error).toBeInstanceOf(UnsafePathError);
    expect(error).toMatchObject({ path: join(www, 'app'), ownerUid: user.uid });
    expect(error.message).toContain(`${join(www, 'app')} is a symbolic link (to ../sentinel) that belongs to ${user.name} (uid ${user.uid})`);
  });

  it('refuses a symlink of root\'s in a folder another user can write: they can replace it at any time', () => {
    target('sentinel');
    const www = join(tmp, 'www');
    mkdirSync(www);
    chownSync(www, user.uid, user.gid);
    symlinkSync('../sentinel', join(www, 'current'));
    const error = captured(() => tree.directory(join(www, 'current')));
    expect(error).toBeInstanceOf(UnsafePathError);
    expect(error.message).toContain(`in ${www}, which belongs to ${user.name} (uid ${user.uid}) (mode 0755)`);
    // Group- or world-writable is the same: another user can replace the link.
    const shared = join(tmp, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    symlinkSync('../sentinel', join(shared, 'link'));
    expect(captured(() => tree.directory(join(shared, 'link'))).message).toContain('which is writable by everyone (mode 0777)');
  });

  it('checks every link on the way, also inside a trusted link\'s target', () => {
    target('sentinel');
    const www = join(tmp, 'www');
    mkdirSync(www);
    chownSync(www, user.uid, user.gid);
    symlinkSync('../sentinel', join(www, 'planted'));
    lchownSync(join(www, 'planted'), user.uid, user.gid);
    symlinkSync('www/planted', join(tmp, 'operator-link'));
    expect(captured(() => tree.directory(join(tmp, 'operator-link')))).toMatchObject({ path: join(www, 'planted') });
  });

  it('says ENOENT and ENOTDIR for what is missing or not a folder, and ELOOP for a loop of trusted links', () => {
    writeFileSync(join(tmp, 'file'), 'x');
    expect(tree.existingDirectory(join(tmp, 'missing/below'))).toBeUndefined();
    expect(captured(() => tree.directory(join(tmp, 'file/below')))).toMatchObject({ code: 'ENOTDIR', path: join(tmp, 'file') });
    symlinkSync('b', join(tmp, 'a'));
    symlinkSync('a', join(tmp, 'b'));
    expect(captured(() => tree.directory(join(tmp, 'a')))).toMatchObject({ code: 'ELOOP' });
  });

  it('keeps working on the folder it opened when the path is swapped for a symlink, and refuses to open the path again as another folder', () => {
    const app = target('www/app');
    const fd = tree.directory(app);
    renameSync(app, join(tmp, 'www/app.moved'));
    target('sentinel');
    symlinkSync('../sentinel', app);
    writeFileSync(tree.entry(join(app, 'new')), 'through the descriptor');
    expect(readdirSync(join(tmp, 'www/app.moved')).sort()).toEqual(['marker', 'new']);
    expect(readdirSync(join(tmp, 'sentinel'))).toEqual(['marker']);
    expect(fstatSync(fd).ino).toBe(statSync(join(tmp, 'www/app.moved')).ino);
    // Closed and opened again (a trim, a rollback): the path must still be that folder.
    tree.trim();
    expect(captured(() => tree.directory(app)).message).toMatch(/was moved or replaced while Install was running/);
  });

  it('makes folders through the descriptor of the folder above, and keeps their descriptors', () => {
    const www = join(tmp, 'www');
    mkdirSync(www);
    const fd = tree.mkdir(join(www, 'new'));
    expect(fstatSync(fd).isDirectory()).toBe(true);
    expect(statSync(join(www, 'new')).uid).toBe(process.geteuid!());
  });
});

function captured(action: () => unknown): Error & { code?: string; path?: string } {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}
