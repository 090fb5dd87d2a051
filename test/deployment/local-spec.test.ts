import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildLocalSpec, LocalDeployError, localDeploymentId, revisionFromLocation } from '../../src/deployment/local-spec.js';
import { makeTempDir } from '../helpers/tmp.js';

const tmp = makeTempDir();
afterAll(tmp.cleanup);
const bundleDir = join(tmp.dir, 'bundle');
mkdirSync(bundleDir);
writeFileSync(join(bundleDir, 'appspec.yml'), 'version: 0.0\nos: linux\n');
const emptyDir = join(tmp.dir, 'empty');
mkdirSync(emptyDir);
const archive = join(tmp.dir, 'bundle.tgz');
writeFileSync(archive, 'x');

describe('codedeploy-local locations', () => {
  it('local folders and files', () => {
    expect(revisionFromLocation(bundleDir, 'directory')).toEqual({ type: 'Local Directory', location: bundleDir, bundleType: 'directory' });
    expect(revisionFromLocation(archive, 'tgz')).toEqual({ type: 'Local File', location: archive, bundleType: 'tgz' });
    expect(revisionFromLocation(`file://${archive}`, 'tgz')).toMatchObject({ type: 'Local File', location: archive });
  });

  it('AWS\'s messages for bad locations', () => {
    expect(() => revisionFromLocation(bundleDir, 'rar')).toThrow('type rar is not a valid type. Must be one of tgz,tar,zip,directory');
    expect(() => revisionFromLocation('http://example.com/x.tgz', 'tgz')).toThrow('cannot be http, only encrypted (https) url endpoints supported');
    expect(() => revisionFromLocation(join(tmp.dir, 'nope'), 'tgz')).toThrow('is specified as a file or directory which does not exist');
    expect(() => revisionFromLocation(archive, 'directory')).toThrow('is specified with type directory but it is a file');
    expect(() => revisionFromLocation(bundleDir, 'zip')).toThrow('is specified as a compressed local file but it is a directory');
    expect(() => revisionFromLocation(emptyDir, 'directory')).toThrow(`Expecting appspec file at location ${emptyDir}/appspec.yml or ${emptyDir}/appspec.yaml but it is not found there`);
    expect(() => revisionFromLocation(bundleDir, 'directory', 'other.yml')).toThrow(`Expecting appspec file at location ${bundleDir}/other.yml`);
    expect(() => revisionFromLocation('ftp://host/x', 'tgz')).toThrow('cannot be determined to be S3, Github, or a local file / directory');
    expect(() => revisionFromLocation('s3://bucket', 'tgz')).toThrow("not in the expected format of 's3://bucket/key'");
  });

  it('without a type: a folder is a directory, an archive is read from its contents, else its name, and the choice is said', () => {
    const notes: string[] = [];
    const note = (text: string) => notes.push(text);
    expect(revisionFromLocation(bundleDir, undefined, undefined, note)).toMatchObject({ type: 'Local Directory', bundleType: 'directory' });
    const zipAsTar = join(tmp.dir, 'really-a-zip.tar');
    writeFileSync(zipAsTar, Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.alloc(100)]));
    expect(revisionFromLocation(zipAsTar, undefined, undefined, note)).toMatchObject({ type: 'Local File', bundleType: 'zip' });
    expect(revisionFromLocation(archive, undefined, undefined, note)).toMatchObject({ bundleType: 'tgz' });
    expect(revisionFromLocation('s3://b/app.tar.gz', undefined, undefined, note)).toMatchObject({ type: 'S3', bundleType: 'tgz' });
    expect(notes).toEqual([
      `${zipAsTar} is a zip archive (by its contents): deploying it as -t zip`,
      `${archive} is a gzip-compressed tar (tgz) (by its name): deploying it as -t tgz`,
      's3://b/app.tar.gz is a gzip-compressed tar (tgz) (by its name): deploying it as -t tgz',
    ]);
    expect(() => revisionFromLocation(zipAsTar, 'tar')).toThrow(`location ${zipAsTar} is specified with type tar but it looks like a zip archive: give -t zip, or leave out -t`);
    const unknown = join(tmp.dir, 'bundle.bin');
    writeFileSync(unknown, 'not an archive');
    expect(() => revisionFromLocation(unknown, undefined)).toThrow(`cannot tell what kind of archive ${unknown} is`);
    expect(() => revisionFromLocation('s3://b/app', undefined)).toThrow("the key's name does not say what kind of archive it is: give its --type (tgz, tar or zip)");
    expect(revisionFromLocation('https://github.com/octo/app', undefined)).toMatchObject({ type: 'GitHub', bundleType: 'zip' });
  });

  it('S3 locations with version and ETag', () => {
    expect(revisionFromLocation('s3://my-bucket/path/app.zip?versionId=v1&etag=abc', 'zip')).toEqual({
      type: 'S3', bucket: 'my-bucket', key: 'path/app.zip', bundleType: 'zip', version: 'v1', etag: 'abc',
    });
  });

  it('S3 locations: an encoded key is decoded, quotes in an ETag are kept for the comparison, and a folder type is refused', () => {
    expect(revisionFromLocation('s3://b-1/releases/my%20app.tgz?etag=%22abc%22', 'tgz')).toEqual({
      type: 'S3', bucket: 'b-1', key: 'releases/my app.tgz', bundleType: 'tgz', etag: '"abc"',
    });
    expect(() => revisionFromLocation('s3://b-1/app.tgz', 'directory')).toThrow('is an S3 object: give its --type (tgz, tar or zip)');
    expect(() => revisionFromLocation('s3://b-1/', 'tgz')).toThrow("not in the expected format of 's3://bucket/key'");
  });

  it('GitHub locations: .git is dropped, a bare owner is refused, other hosts are unknown', () => {
    expect(revisionFromLocation('https://github.com/owner/repo.git', 'zip')).toMatchObject({ account: 'owner', repository: 'repo', commitId: 'HEAD', bundleType: 'zip' });
    expect(() => revisionFromLocation('https://github.com/owner', 'zip')).toThrow('not in the expected format');
    expect(() => revisionFromLocation('https://api.github.com/repos/owner/repo', 'zip')).toThrow('not in the expected format');
    expect(() => revisionFromLocation('https://gitlab.com/owner/repo', 'zip')).toThrow('cannot be determined to be S3, Github, or a local file / directory');
  });

  it('GitHub locations', () => {
    expect(revisionFromLocation('https://github.com/owner/repo', 'tar')).toEqual({
      type: 'GitHub', account: 'owner', repository: 'repo', commitId: 'HEAD', bundleType: 'tar',
    });
    expect(revisionFromLocation('https://api.github.com/repos/owner/repo/tarball/abc123', 'directory')).toEqual({
      type: 'GitHub', account: 'owner', repository: 'repo', commitId: 'abc123', bundleType: 'zip',
    });
  });

  it('builds the simulated deployment specification', () => {
    const spec = buildLocalSpec({ bundleLocation: bundleDir, type: 'directory', deploymentGroup: 'g', fileExistsBehavior: 'overwrite' }, 'd-ABCDEFGHI-local');
    expect(spec).toMatchObject({
      deploymentId: 'd-ABCDEFGHI-local', deploymentGroupId: 'g', deploymentGroupName: 'LocalFleet', applicationName: bundleDir,
      appSpecFilename: 'appspec.yml', fileExistsBehavior: 'OVERWRITE', deploymentCreator: 'user', deploymentType: 'IN_PLACE',
    });
    expect(localDeploymentId()).toMatch(/^d-[A-Z0-9]{9}-local$/);
  });
});

describe('codedeploy-local locations that are not well-formed URLs (found by test/fuzz/locators.test.ts)', () => {
  it.each([
    ['s3:///%', "s3 location s3:///% not in the expected format of 's3://bucket/key': its path has a malformed %-escape"],
    ['s3://bucket/%E0%A4%A', "s3 location s3://bucket/%E0%A4%A not in the expected format of 's3://bucket/key': its path has a malformed %-escape"],
    ['s3://[/key', "s3 location s3://[/key not in the expected format of 's3://bucket/key'"],
    ['file:///tmp/%zz', 'file location file:///tmp/%zz is not a valid file:// URL: its path has a malformed %-escape'],
    ['file://[/x', 'file location file://[/x is not a valid file:// URL'],
    ['https://github.com/a/%E0', "github location https://github.com/a/%E0 not in the expected format of 'https://github.com/<account>/<repository>' or 'https://api.github.com/repos/<account>/<repository>/<tarball|zipball>/<commit>'"],
    ['https://github.com/a/.git', "github location https://github.com/a/.git not in the expected format of 'https://github.com/<account>/<repository>' or 'https://api.github.com/repos/<account>/<repository>/<tarball|zipball>/<commit>'"],
  ])('%s is a LocalDeployError, not a URIError or TypeError', (location, message) => {
    expect(() => revisionFromLocation(location, 'zip')).toThrow(LocalDeployError);
    expect(() => revisionFromLocation(location, 'zip')).toThrow(message);
  });

  it('GitHub path segments are read decoded, so the archive URL does not encode them twice', () => {
    expect(revisionFromLocation('https://github.com/owner/my%20repo', 'zip')).toMatchObject({ account: 'owner', repository: 'my repo' });
  });
});
