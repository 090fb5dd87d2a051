import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseAppSpec, type ParseResult } from '../../src/appspec/parse.js';
import { anyText, fuzz, testTimeout } from './fuzz.js';

/**
 * The appspec parser reads whatever a bundle's author wrote. For any text it returns either an appspec
 * (and no problems) or problems, each with the file, a 1-based line and column and a message; it never
 * throws, takes long or holds the result of an alias bomb.
 */

const EVENTS = ['ApplicationStop', 'BeforeInstall', 'AfterInstall', 'ApplicationStart', 'ValidateService', 'BeforeBlockTraffic', 'Install', 'Custom'];
const SCALARS = [
  '0.0', '0', '"0.0"', 'linux', 'windows', 'Linux', 'true', 'false', 'yes', 'no', '~', 'null', '', '0644', '644', '4755', '7777', '08',
  'u:bob:rw-', 'd:g:www:5', 'm::rx', 's0-s3:c0.c5', 's0:c1023', 'c0.c2000', 'OVERWRITE', 'DISALLOW', 'RETAIN', 'overwrite', '300', '-1',
  '1e3', '.inf', '.nan', '3601', '1.5', '0x10', '0o17', '/', '/var/www', 'scripts/start.sh', 'www-data', 'file', 'directory', '"a\\u0000b"',
];

const scalar = fc.oneof(
  fc.constantFrom(...SCALARS),
  fc.integer().map(String),
  fc.double().map(String),
  fc.string({ maxLength: 12 }).map((text) => JSON.stringify(text)),
);

/** An appspec-shaped object: the right keys, values of every kind. */
const appSpecObject = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('list'), tie('map')),
  list: fc.array(tie('value'), { maxLength: 3 }),
  map: fc.dictionary(fc.oneof(fc.constantFrom('location', 'timeout', 'runas', 'sudo', 'source', 'destination', 'object', 'mode', 'acls', 'context', 'type', 'range', 'name', 'user', 'owner', 'except', 'pattern'), fc.string({ maxLength: 6 })), tie('value'), { maxKeys: 4 }),
  script: fc.record({ location: tie('value'), timeout: tie('value'), runas: tie('value'), sudo: tie('value') }, { requiredKeys: [] }),
  spec: fc.record(
    {
      version: fc.oneof(fc.constant('0.0'), tie('value')),
      os: fc.oneof(fc.constant('linux'), tie('value')),
      files: fc.oneof(fc.array(fc.record({ source: tie('value'), destination: tie('value') }, { requiredKeys: [] }), { maxLength: 3 }), tie('value')),
      hooks: fc.oneof(fc.dictionary(fc.constantFrom(...EVENTS), fc.oneof(fc.array(tie('script'), { maxLength: 3 }), tie('value')), { maxKeys: 3 }), tie('value')),
      permissions: fc.oneof(
        fc.array(fc.record({ object: tie('value'), pattern: tie('value'), except: tie('value'), type: tie('value'), owner: tie('value'), mode: tie('value'), acls: tie('value'), context: tie('map') }, { requiredKeys: [] }), { maxLength: 2 }),
        tie('value'),
      ),
      file_exists_behavior: tie('value'),
    },
    { requiredKeys: [] },
  ),
}));

/** A value in flow style, with anchors on collections and aliases to them (self-references and merges too). */
const ANCHORS = ['a', 'b', 'c'];
const flowYaml: fc.Arbitrary<string> = fc.letrec<{ node: string; seq: string; map: string }>((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, fc.constantFrom(...SCALARS.filter((s) => s !== '')), fc.constantFrom(...ANCHORS.map((a) => `*${a}`)), tie('seq'), tie('map')),
  seq: fc.tuple(fc.option(fc.constantFrom(...ANCHORS)), fc.array(tie('node'), { maxLength: 4 }))
    .map(([anchor, items]) => `${anchor ? `&${anchor} ` : ''}[${items.join(', ')}]`),
  map: fc.tuple(
    fc.option(fc.constantFrom(...ANCHORS)),
    fc.array(fc.tuple(fc.constantFrom('<<', 'location', 'source', 'destination', 'type', 'object', 'x'), tie('node')), { maxLength: 4 }),
  ).map(([anchor, pairs]) => `${anchor ? `&${anchor} ` : ''}{${pairs.map(([key, value]) => `${key}: ${value}`).join(', ')}}`),
})).node;

const aliasedAppSpec = fc
  .array(fc.tuple(fc.constantFrom('version', 'os', 'files', 'hooks', 'permissions', 'file_exists_behavior', '<<', 'ApplicationStart'), flowYaml), { minLength: 1, maxLength: 6 })
  .map((lines) => lines.map(([key, value]) => `${key}: ${value}`).join('\n'));

/** Edits at the character level: a valid appspec with a few characters inserted, removed or replaced. */
function mutatedText(text: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const edit = fc.record({
    at: fc.nat(),
    remove: fc.nat({ max: 4 }),
    insert: fc.constantFrom('', ' ', '  ', '\t', '\n', '-', ':', '&a ', '*a', '<<: *a\n', '[', ']', '{', '}', '"', "'", '#', '!!binary ', '? ', '|', '---\n', '...\n', '%YAML 1.2\n'),
  });
  return fc.tuple(text, fc.array(edit, { minLength: 1, maxLength: 5 })).map(([source, edits]) => {
    let result = source;
    for (const { at, remove, insert } of edits) {
      const position = result.length === 0 ? 0 : at % (result.length + 1);
      result = result.slice(0, position) + insert + result.slice(position + remove);
    }
    return result;
  });
}

const validAppSpec = appSpecObject.spec.map((spec) => stringify(spec, { version: '1.1' }));

function checkResult(result: ParseResult, text: string): void {
  if (result.spec) {
    expect(result.problems).toEqual([]);
    expect(result.spec.version).toBe('0.0');
    expect(result.spec.os).toBe('linux');
    for (const file of result.spec.files) {
      expect(typeof file.source).toBe('string');
      expect(typeof file.destination).toBe('string');
    }
    for (const scripts of Object.values(result.spec.hooks)) {
      for (const script of scripts) {
        expect(script.location.trim()).not.toBe('');
        expect(Number.isInteger(script.timeout) && script.timeout > 0).toBe(true);
        expect(typeof script.sudo).toBe('boolean');
      }
    }
    for (const permission of result.spec.permissions) {
      if (permission.mode !== undefined) expect(permission.mode >= 0 && permission.mode <= 0o7777).toBe(true);
    }
  } else {
    expect(result.problems.length).toBeGreaterThan(0);
  }
  const lines = text.split(/\r\n|\r|\n/).length;
  for (const problem of [...result.problems, ...result.warnings]) {
    expect(problem.message.trim()).not.toBe('');
    expect(problem.file).toBe('appspec.yml');
    expect(problem.line).toBeGreaterThanOrEqual(1);
    expect(problem.line).toBeLessThanOrEqual(lines + 1);
    expect(problem.col).toBeGreaterThanOrEqual(1);
  }
}

function parseWithinDeadline(text: string): void {
  const started = performance.now();
  const result = parseAppSpec(text, 'appspec.yml', { platform: 'linux' });
  const elapsed = performance.now() - started;
  if (elapsed > 5_000) throw new Error(`parsing took ${Math.round(elapsed)} ms`);
  checkResult(result, text);
}

describe('fuzz: appspec', () => {
  const budget = { runs: 400, timeMs: 2_500 };

  it('any text', { timeout: testTimeout(budget.timeMs) }, async () => {
    await fuzz(import.meta.url, fc.property(anyText(300), parseWithinDeadline), budget);
  });

  it('appspec-shaped YAML', { timeout: testTimeout(budget.timeMs) }, async () => {
    await fuzz(import.meta.url, fc.property(validAppSpec, parseWithinDeadline), budget);
  });

  it('appspec-shaped YAML with characters inserted, removed or replaced', { timeout: testTimeout(budget.timeMs) }, async () => {
    await fuzz(import.meta.url, fc.property(mutatedText(validAppSpec), parseWithinDeadline), budget);
  });

  it('anchors, aliases and merge keys (self-references, alias bombs)', { timeout: testTimeout(budget.timeMs) }, async () => {
    await fuzz(import.meta.url, fc.property(aliasedAppSpec, parseWithinDeadline), budget);
  });
});
