import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkBundle } from '../../src/appspec/check-bundle.js';
import { parseAppSpec } from '../../src/appspec/parse.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = makeTempDir('cda-bundle-')));
afterEach(() => cleanup());

function put(path: string, text: string, mode = 0o755): void {
  mkdirSync(dirname(join(dir, path)), { recursive: true });
  writeFileSync(join(dir, path), text);
  chmodSync(join(dir, path), mode);
}

function check(yaml: string) {
  const parsed = parseAppSpec(`version: 0.0\nos: linux\n${yaml}`, 'appspec.yml', { platform: 'linux' });
  const result = checkBundle(parsed.sections!, parsed.positions, dir);
  const show = (list: typeof result.problems) => list.map((p) => `${p.line}:${p.col} ${p.message}`);
  return { problems: show(result.problems), warnings: show(result.warnings), hints: [...result.problems, ...result.warnings].map((p) => p.hint) };
}

describe('checkBundle', () => {
  it('is quiet when every script and source is there', () => {
    put('scripts/start.sh', '#!/bin/sh\necho\n');
    put('app/index.html', 'hi');
    expect(check('files:\n  - source: app\n    destination: /srv\n  - source: /\n    destination: /srv\nhooks:\n  ApplicationStart:\n    - location: scripts/start.sh\n')).toEqual({
      problems: [],
      warnings: [],
      hints: [],
    });
  });

  it('reports a missing script at its location, with a case-insensitive suggestion', () => {
    put('scripts/Start.sh', '#!/bin/sh\n');
    const result = check('hooks:\n  ApplicationStart:\n    - location: scripts/start.sh\n  ValidateService:\n    - location: scripts/check.sh\n');
    expect(result.problems).toEqual([
      '5:17 the ApplicationStart script scripts/start.sh does not exist in the bundle',
      '7:17 the ValidateService script scripts/check.sh does not exist in the bundle',
    ]);
    expect(result.hints[0]).toBe('did you mean scripts/Start.sh? Names are case-sensitive');
    expect(result.hints[1]).toMatch(/relative to the folder that holds the appspec/);
  });

  it('reports a script used by several events once', () => {
    const result = check('hooks:\n  BeforeInstall:\n    - location: s.sh\n  AfterInstall:\n    - location: s.sh\n');
    expect(result.problems).toEqual(['5:17 the BeforeInstall script s.sh does not exist in the bundle']);
  });

  it('refuses a folder as a script', () => {
    mkdirSync(join(dir, 'scripts'));
    expect(check('hooks:\n  AfterInstall:\n    - location: scripts\n').problems).toEqual(['5:17 the AfterInstall script scripts is a folder, not a script']);
  });

  it('warns about a script that is not executable or has CRLF line endings', () => {
    put('a.sh', '#!/bin/bash\r\necho hi\r\n', 0o644);
    expect(check('hooks:\n  AfterInstall:\n    - location: a.sh\n').warnings).toEqual([
      '5:17 the AfterInstall script a.sh is not executable; the agent will make it executable',
      '5:17 the AfterInstall script a.sh has Windows (CRLF) line endings, so its #! line names an interpreter that does not exist',
    ]);
  });

  it('warns about a script outside the bundle', () => {
    const result = check('hooks:\n  AfterInstall:\n    - location: ../elsewhere.sh\n');
    expect(result.warnings).toEqual(['5:17 the AfterInstall script ../elsewhere.sh lies outside the bundle']);
  });

  it('reports a missing or escaping files source', () => {
    const result = check('files:\n  - source: app\n    destination: /srv\n  - source: ../../etc\n    destination: /srv\n');
    expect(result.problems).toEqual(['4:13 files[0].source app does not exist in the bundle', '6:13 files[1].source ../../etc lies outside the bundle']);
  });

  it('still checks scripts when other parts of the appspec have problems', () => {
    const parsed = parseAppSpec('version: 2\nos: linux\nhooks:\n  AfterInstall:\n    - location: gone.sh\n', 'appspec.yml', { platform: 'linux' });
    expect(parsed.spec).toBeUndefined();
    expect(checkBundle(parsed.sections!, parsed.positions, dir).problems.map((p) => p.line)).toEqual([5]);
  });
});
