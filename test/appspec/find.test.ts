import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findAppSpec } from '../../src/appspec/find.js';
import { loadAppSpec, loadAppSpecFromDir } from '../../src/appspec/parse.js';
import { AppSpecError } from '../../src/report/errors.js';
import { makeTempDir } from '../helpers/tmp.js';

const VALID = 'version: 0.0\nos: linux\n';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = makeTempDir('cda-find-')));
afterEach(() => cleanup());

function caught(run: () => unknown): AppSpecError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(AppSpecError);
    return error as AppSpecError;
  }
  throw new Error('expected an AppSpecError');
}

describe('findAppSpec', () => {
  it('prefers the given name', () => {
    writeFileSync(join(dir, 'custom.yml'), VALID);
    writeFileSync(join(dir, 'appspec.yml'), VALID);
    expect(findAppSpec(dir, 'custom.yml')).toBe(join(dir, 'custom.yml'));
  });

  it('falls back to appspec.yml, then appspec.yaml (the same for Install and hooks)', () => {
    writeFileSync(join(dir, 'appspec.yaml'), VALID);
    expect(findAppSpec(dir)).toBe(join(dir, 'appspec.yaml'));
    expect(findAppSpec(dir, 'appspec.yml')).toBe(join(dir, 'appspec.yaml'));
    writeFileSync(join(dir, 'appspec.yml'), VALID);
    expect(findAppSpec(dir)).toBe(join(dir, 'appspec.yml'));
  });

  it('never uses appspec.yml in place of a name of its own that the revision lacks, and names it', () => {
    writeFileSync(join(dir, 'appspec.yml'), VALID);
    const error = caught(() => findAppSpec(dir, 'deploy-spec.yml'));
    expect(error.problems[0].message).toContain('at revision-relative path "deploy-spec.yml"');
    expect(error.problems[0].hint).toBe('the revision has no deploy-spec.yml, but it has appspec.yml: leave out --appspec-filename (-A) to use it, or add deploy-spec.yml to the bundle');
  });

  it('returns an absolute path for a relative folder', () => {
    writeFileSync(join(dir, 'appspec.yml'), VALID);
    expect(findAppSpec(relative(process.cwd(), dir))).toBe(join(dir, 'appspec.yml'));
  });

  it('ignores a folder named like the appspec', () => {
    mkdirSync(join(dir, 'appspec.yml'));
    writeFileSync(join(dir, 'appspec.yaml'), VALID);
    expect(findAppSpec(dir)).toBe(join(dir, 'appspec.yaml'));
  });

  it('fails with the message of AWS\'s agent and says the name of its own is missing', () => {
    const error = caught(() => findAppSpec(dir, 'app_spec'));
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0].message).toBe(
      `The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory at revision-relative path "app_spec". ` +
        `The revision was unpacked to directory "${dir}", and the AppSpec file was expected but not found at path "${join(dir, 'app_spec')}". ` +
        'Consult the AWS CodeDeploy Appspec documentation for more information at http://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file.html',
    );
    expect(error.problems[0].hint).toBe('the revision has no app_spec: add it at the top of the bundle, or fix the name given with --appspec-filename (-A)');
    expect(error.message).toContain('did not find an AppSpec file');
  });

  it('names appspec.yml as the expected file when no name is given', () => {
    const error = caught(() => findAppSpec(dir));
    expect(error.problems[0].message).toContain(`at revision-relative path "appspec.yml"`);
    expect(error.problems[0].hint).toContain('also looked for "appspec.yaml"');
  });

  it('points at an appspec one folder down (a bundle zipped from outside its folder)', () => {
    mkdirSync(join(dir, 'myapp'));
    writeFileSync(join(dir, 'myapp', 'appspec.yml'), VALID);
    expect(caught(() => findAppSpec(dir)).problems[0].hint).toContain('found myapp/appspec.yml, but the AppSpec file must be at the top');
  });
});

describe('loadAppSpec', () => {
  it('loads from a folder', () => {
    writeFileSync(join(dir, 'appspec.yml'), `${VALID}hooks:\n  AfterInstall:\n    - location: a.sh\n`);
    const spec = loadAppSpecFromDir(dir);
    expect(spec.path).toBe(join(dir, 'appspec.yml'));
    expect(spec.hooks.AfterInstall[0].location).toBe('a.sh');
  });

  it('throws every problem in one AppSpecError', () => {
    const file = join(dir, 'appspec.yml');
    writeFileSync(file, 'version: 1\nos: plan9\n');
    const error = caught(() => loadAppSpec(file));
    expect(error.problems.map((p) => [p.file, p.line, p.col])).toEqual([
      [file, 1, 10],
      [file, 2, 5],
    ]);
    expect(error.message.split('\n')).toHaveLength(2);
    expect(error.message).toContain(`${file}:1:10: The deployment failed because an invalid version value (1)`);
  });

  it('passes warnings to onWarning', () => {
    const file = join(dir, 'appspec.yml');
    writeFileSync(file, `${VALID}colour: blue\n`);
    const warnings: string[] = [];
    loadAppSpec(file, { onWarning: (w) => warnings.push(w.message) });
    expect(warnings).toEqual(['unknown top-level key colour is ignored']);
  });

  it('reports an unreadable file as an AppSpecError', () => {
    expect(caught(() => loadAppSpec(join(dir, 'nope.yml'))).problems[0].message).toMatch(/^cannot read the AppSpec file: ENOENT/);
  });
});
