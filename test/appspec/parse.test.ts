import { describe, expect, it } from 'vitest';
import { parseAppSpec } from '../../src/appspec/parse.js';
import type { AppSpecProblem } from '../../src/report/errors.js';

const HEAD = 'version: 0.0\nos: linux\n';

/** `line:col text` → the problem must sit at line:col and its message must contain text. */
function expectProblems(actual: AppSpecProblem[], expected: string[]): void {
  expect(actual.map((p) => `${p.line}:${p.col} ${p.message}`), 'problems').toHaveLength(expected.length);
  expected.forEach((want, index) => {
    const [position, ...words] = want.split(' ');
    const problem = actual[index];
    expect(`${problem.line}:${problem.col}`, want).toBe(position);
    expect(problem.message, want).toContain(words.join(' '));
    expect(problem.file).toBe('appspec.yml');
  });
}

function parse(yaml: string, platform: 'linux' | 'windows' = 'linux') {
  return parseAppSpec(yaml, 'appspec.yml', { platform });
}

describe('parseAppSpec: valid appspecs', () => {
  it('reads a minimal appspec with the defaults', () => {
    const result = parse(HEAD);
    expect(result.problems).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.spec).toEqual({ version: '0.0', os: 'linux', files: [], permissions: [], hooks: {}, path: 'appspec.yml' });
  });

  it.each(['0', '0.0', '"0.0"', "'0'", '0.00'])('accepts version: %s', (version) => {
    expect(parse(`version: ${version}\nos: linux\n`).spec?.version).toBe('0.0');
  });

  it('reads files, hooks and file_exists_behavior', () => {
    const result = parse(`${HEAD}files:
  - source: /
    destination: /var/www/app
  - source: config/app.conf
    destination: /etc/app
file_exists_behavior: RETAIN
hooks:
  ApplicationStop:
  BeforeInstall: []
  AfterInstall:
    - location: scripts/after.sh
  ApplicationStart:
    - location: "  scripts/start.sh  "
      timeout: "300"
      runas: " www-data "
    - location: scripts/warm.sh
      timeout: 120
      sudo: yes
`);
    expect(result.problems).toEqual([]);
    expect(result.spec).toMatchObject({
      files: [
        { source: '/', destination: '/var/www/app' },
        { source: 'config/app.conf', destination: '/etc/app' },
      ],
      fileExistsBehavior: 'RETAIN',
      hooks: {
        AfterInstall: [{ location: 'scripts/after.sh', timeout: 3600, sudo: false }],
        ApplicationStart: [
          { location: 'scripts/start.sh', timeout: 300, runas: 'www-data', sudo: false },
          { location: 'scripts/warm.sh', timeout: 120, sudo: true },
        ],
      },
    });
    // Events without scripts are dropped, as AWS's agent drops a null event.
    expect(Object.keys(result.spec!.hooks)).toEqual(['AfterInstall', 'ApplicationStart']);
  });

  it.each([
    ['0644', 0o644],
    ['"0644"', 0o644],
    ['644', 0o644],
    ['4755', 0o4755],
    ['0000', 0],
    ['7', 0o7],
  ])('mode: %s means the octal digits written, not what YAML 1.1 makes of it', (written, mode) => {
    const result = parse(`${HEAD}permissions:\n  - object: /var/www\n    mode: ${written}\n`);
    expect(result.problems).toEqual([]);
    expect(result.spec!.permissions[0].mode).toBe(mode);
  });

  it.each([
    ['true', true],
    ['yes', true],
    ['"true"', true],
    ['false', false],
    ['no', false],
    ['"false"', false],
    ['"no"', false],
    ['off', false],
    ['~', false],
  ])('sudo: %s means %s', (written, sudo) => {
    const result = parse(`${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      sudo: ${written}\n`);
    expect(result.problems).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.spec!.hooks.AfterInstall[0].sudo).toBe(sudo);
  });

  it('reads a full permission entry with canonical acls and SELinux range', () => {
    const result = parse(`${HEAD}permissions:
  - object: /var/www/app
    pattern: "*.sh"
    except: [skip.sh, "old*"]
    owner: www-data
    group: 1000
    mode: 0755
    type: [file]
    acls:
      - d:u:bob:7
      - m:0
      - g:www:r-x
    context:
      name: unconfined_u
      type: httpd_sys_content_t
      range: s3-s7:c5,c8,c9,c10,c17
  - object: /var/log/app
`);
    expect(result.problems).toEqual([]);
    expect(result.spec!.permissions).toEqual([
      {
        object: '/var/www/app',
        pattern: '*.sh',
        except: ['skip.sh', 'old*'],
        type: ['file'],
        owner: 'www-data',
        group: '1000',
        mode: 0o755,
        acls: ['default:user:bob:rwx', 'mask::---', 'group:www:r-x'],
        context: { user: 'unconfined_u', type: 'httpd_sys_content_t', range: 's3-s7:c5,c8.c10,c17' },
      },
      { object: '/var/log/app', pattern: '**', except: [], type: ['file', 'directory'] },
    ]);
  });

  it('takes the SELinux user from user as AWS documents it, as well as from name as AWS\'s agent reads it', () => {
    const result = parse(`${HEAD}permissions:\n  - object: /srv\n    context: { user: system_u, type: var_t }\n`);
    expect(result.spec!.permissions[0].context).toEqual({ user: 'system_u', type: 'var_t' });
  });

  it('follows anchors and merge keys', () => {
    const result = parse(`${HEAD}x-script: &defaults
  timeout: 60
  runas: app
hooks:
  AfterInstall:
    - <<: *defaults
      location: a.sh
    - <<: *defaults
      location: b.sh
      timeout: 90
`);
    expect(result.problems).toEqual([]);
    expect(result.spec!.hooks.AfterInstall).toEqual([
      { location: 'a.sh', timeout: 60, runas: 'app', sudo: false },
      { location: 'b.sh', timeout: 90, runas: 'app', sudo: false },
    ]);
  });

  it('accepts os: windows on a Windows agent', () => {
    expect(parse('version: 0.0\nos: windows\n', 'windows').spec?.os).toBe('windows');
  });

  it('records where each script location and files source was written', () => {
    const result = parse(`${HEAD}files:\n  - source: app\n    destination: /srv\nhooks:\n  AfterInstall:\n    - location: a.sh\n`);
    const spec = result.spec!;
    expect(result.positions.get(spec.files[0])).toEqual({ file: 'appspec.yml', line: 4, col: 13 });
    expect(result.positions.get(spec.hooks.AfterInstall[0])).toEqual({ file: 'appspec.yml', line: 8, col: 17 });
  });
});

describe('parseAppSpec: warnings (the appspec still works)', () => {
  it.each<[string, string, string[], RegExp?]>([
    ['unknown top-level key with a suggestion', `${HEAD}hook: {}\n`, ['3:1 unknown top-level key hook is ignored'], /did you mean hooks\?/],
    ['unknown top-level key without a suggestion', `${HEAD}colour: blue\n`, ['3:1 unknown top-level key colour'], /the keys are version, os/],
    ['custom event close to a lifecycle event', `${HEAD}hooks:\n  AplicationStart:\n    - location: a.sh\n`, ['4:3 AplicationStart is not a CodeDeploy lifecycle event'], /did you mean ApplicationStart\?/],
    ['custom event in the wrong case', `${HEAD}hooks:\n  validateservice:\n    - location: a.sh\n`, ['4:3 validateservice is not a CodeDeploy lifecycle event'], /did you mean ValidateService\?/],
    ['custom event far from any', `${HEAD}hooks:\n  WarmCaches:\n    - location: a.sh\n`, ['4:3 WarmCaches is not a CodeDeploy lifecycle event'], /the lifecycle events are BeforeBlockTraffic/],
    ['unknown script key', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      runAs: bob\n`, ['6:7 hooks.AfterInstall[0] has an unknown key runAs'], /did you mean runas\?/],
    ['fractional timeout', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 30.9\n`, ['6:16 hooks.AfterInstall[0].timeout 30.9 is not a whole number; the agent uses 30 seconds']],
    ['empty runas', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      runas: ""\n`, ["6:14 hooks.AfterInstall[0].runas is empty"]],
    ['odd sudo value', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      sudo: maybe\n`, ['6:13 hooks.AfterInstall[0].sudo maybe is read as true']],
    ['overwrite inside a files entry', `${HEAD}files:\n  - source: /\n    destination: /srv\n    overwrite: yes\n`, ['6:5 files[0] has an unknown key overwrite'], /file_exists_behavior/],
    ['relative destination', `${HEAD}files:\n  - source: /\n    destination: srv/app\n`, ['5:18 files[0].destination srv/app is not an absolute path'], /\/srv\/app/],
    ['relative object', `${HEAD}permissions:\n  - object: srv\n`, ['4:13 permissions[0].object srv is not an absolute path']],
    ['pattern with a slash', `${HEAD}permissions:\n  - object: /srv\n    pattern: "bin/*.sh"\n`, ['5:14 permissions[0].pattern bin/*.sh contains /']],
    ['unknown context key', `${HEAD}permissions:\n  - object: /srv\n    context: { type: var_t, rnage: s0 }\n`, ['5:29 permissions[0].context has an unknown key rnage'], /did you mean range\?/],
    ['scripts without timeouts that may outrun an event', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n    - location: b.sh\n      timeout: 60\n`, ['4:3 the AfterInstall scripts may run for 3660 seconds together (each script without a timeout gets 3600)'], /give every AfterInstall script a timeout/],
    ['repeated key', `${HEAD}os: linux\n`, ['3:1 os appears more than once in the same mapping; the last one is used']],
    ['second YAML document', `${HEAD}---\nversion: 1\n`, ['4:1 the file holds more than one YAML document; only the first is read']],
  ])('%s', (_name, yaml, warnings, hint) => {
    const result = parse(yaml);
    expect(result.problems).toEqual([]);
    expect(result.spec).toBeDefined();
    expectProblems(result.warnings, warnings);
    if (hint) expect(result.warnings[0].hint).toMatch(hint);
  });
});

const NO_LOCATION = 'specifies a script with no location value';
const BAD_TIMEOUT = 'an invalid timeout value was provided for a script';
const NO_SOURCE = 'specifies a destination file, but no source file';
const NO_OBJECT = 'a permission listed in the application specification file has no object value';

describe('parseAppSpec: problems, each with its position and a hint', () => {
  it.each<[string, string, string[]]>([
    // the document
    ['empty file', '', ["1:1 The deployment failed because the application specification file was empty. Make sure your AppSpec file defines at minimum the 'version' and 'os' properties."]],
    ['whitespace only', ' \n\n', ['1:1 the application specification file was empty']],
    ['comments only', '# nothing yet\n', ['1:1 the application specification file was empty']],
    ['document marker only', '---\n', ['1:1 the application specification file was empty']],
    ['false document', 'false\n', ['1:1 the application specification file was empty']],
    ['a list instead of a mapping', '- version: 0.0\n', ['1:1 the AppSpec file must be a mapping of keys such as version, os, files and hooks, but it is a list']],
    ['a text instead of a mapping', 'hello\n', ['1:1 the AppSpec file must be a mapping']],
    ['tab indentation', `${HEAD}hooks:\n\tAfterInstall: []\n`, ['4:1 YAML syntax error: Tabs are not allowed as indentation']],
    ['unclosed flow list', `${HEAD}files: [ { source: / }\n`, ['4:1 YAML syntax error']],
    // version and os
    ['version missing', 'os: linux\n', ['1:1 The deployment failed because an invalid version value () was entered in the application specification file. Make sure your AppSpec file specifies "0.0" as the version, and then try again.']],
    ['version 1.0', 'version: 1.0\nos: linux\n', ['1:10 invalid version value (1.0)']],
    ['version "1.0"', 'version: "1.0"\nos: linux\n', ['1:10 invalid version value (1.0)']],
    ['version as a list', 'version: [0.0]\nos: linux\n', ['1:10 invalid version value ([0])']],
    ['os missing', 'version: 0.0\n', ['1:1 The deployment failed because the application specification file specifies an unsupported operating system (). Specify either "linux" or "windows" in the os section of the AppSpec file, and then try again.']],
    ['os windows on Linux', 'version: 0.0\nos: windows\n', ['2:5 unsupported operating system (windows)']],
    ['os Linux in capitals', 'version: 0.0\nos: Linux\n', ['2:5 unsupported operating system (Linux)']],
    ['os linux on Windows', 'version: 0.0\nos: linux\n', ['2:5 unsupported operating system (linux)']],
    // hooks
    ['hooks as a list', `${HEAD}hooks:\n  - AfterInstall\n`, ['4:3 hooks must be a mapping of lifecycle event names to lists of scripts, but it is a list']],
    ['scripts without a dash', `${HEAD}hooks:\n  AfterInstall:\n    location: a.sh\n`, ['5:5 hooks.AfterInstall must be a list of scripts, but it is a mapping']],
    ['a script path instead of a list', `${HEAD}hooks:\n  AfterInstall: a.sh\n`, ['4:17 hooks.AfterInstall must be a list of scripts, but it is the text "a.sh"']],
    ['a script path instead of a mapping', `${HEAD}hooks:\n  AfterInstall:\n    - a.sh\n`, ['5:7 hooks.AfterInstall[0] must be a mapping with a location']],
    ['an empty script item', `${HEAD}hooks:\n  AfterInstall:\n    -\n`, [`5:6 ${NO_LOCATION}`]],
    ['script without location', `${HEAD}hooks:\n  AfterInstall:\n    - timeout: 30\n`, [`5:7 The deployment failed because the application specification file ${NO_LOCATION}. Specify the location in the hooks section of the AppSpec file, and then try again.`]],
    ['location null', `${HEAD}hooks:\n  AfterInstall:\n    - location: ~\n`, [`5:7 ${NO_LOCATION}`]],
    ['location blank', `${HEAD}hooks:\n  AfterInstall:\n    - location: "  "\n`, [`5:17 ${NO_LOCATION}`]],
    ['location as a list', `${HEAD}hooks:\n  AfterInstall:\n    - location: [a.sh]\n`, ['5:17 hooks.AfterInstall[0].location must be a single value, but it is a list']],
    ['timeout 0', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 0\n`, [`6:16 The deployment failed because ${BAD_TIMEOUT} in the application specification file. Make corrections in the hooks section of the AppSpec file, and then try again.`]],
    ['timeout negative', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: -5\n`, [`6:16 ${BAD_TIMEOUT}`]],
    ['timeout not a number', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: foo\n`, [`6:16 ${BAD_TIMEOUT}`]],
    ['timeout with a unit (AWS\'s agent reads "30s" as 30)', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 30s\n`, [`6:16 ${BAD_TIMEOUT}`]],
    ['timeout yes', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: yes\n`, [`6:16 ${BAD_TIMEOUT}`]],
    ['timeout as a list', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: [30]\n`, ['6:16 hooks.AfterInstall[0].timeout must be a number of seconds, but it is a list']],
    ['timeouts of one event over 3600', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 3000\n    - location: b.sh\n      timeout: 601\n`, ['4:3 the timeouts of the AfterInstall scripts add up to 3601 seconds; CodeDeploy allows at most 3600 seconds for one lifecycle event']],
    ['one timeout over 3600', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 7200\n`, ['4:3 the timeouts of the AfterInstall scripts add up to 7200 seconds']],
    ['scripts for Install', `${HEAD}hooks:\n  Install:\n    - location: a.sh\n`, ['4:3 Install is a step the agent performs itself; it cannot run scripts']],
    ['scripts for BlockTraffic', `${HEAD}hooks:\n  BlockTraffic:\n    - location: a.sh\n`, ['4:3 BlockTraffic is a step the agent performs itself']],
    ['scripts for DownloadBundle', `${HEAD}hooks:\n  DownloadBundle:\n    - location: a.sh\n`, ['4:3 DownloadBundle is a step the agent performs itself']],
    ['sudo as a list', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      sudo: [true]\n`, ['6:13 hooks.AfterInstall[0].sudo must be true or false, but it is a list']],
    ['runas as a mapping', `${HEAD}hooks:\n  AfterInstall:\n    - location: a.sh\n      runas: { user: bob }\n`, ['6:14 hooks.AfterInstall[0].runas must be a single value, but it is a mapping']],
    // files
    ['files as a mapping', `${HEAD}files:\n  source: /\n  destination: /srv\n`, ['4:3 files must be a list of source/destination pairs, but it is a mapping']],
    ['files item as text', `${HEAD}files:\n  - /srv\n`, ['4:5 files[0] must be a mapping with source and destination, but it is the text "/srv"']],
    ['files empty item', `${HEAD}files:\n  -\n`, [`4:4 ${NO_SOURCE}`]],
    ['source missing', `${HEAD}files:\n  - destination: /srv\n`, [`4:5 The deployment failed because the application specification file ${NO_SOURCE}. Update the files section of the AppSpec file, and then try again.`]],
    ['destination missing', `${HEAD}files:\n  - source: app\n`, ['4:5 The deployment failed because the application specification file specifies only a source file (app). Add the name of the destination file to the files section of the AppSpec file, and then try again.']],
    ['destination null', `${HEAD}files:\n  - source: app\n    destination:\n`, ['5:5 specifies only a source file (app)']],
    ['source as a list', `${HEAD}files:\n  - source: [a, b]\n    destination: /srv\n`, ['4:13 files[0].source must be a single value, but it is a list']],
    // permissions
    ['permissions as a mapping', `${HEAD}permissions:\n  object: /srv\n`, ['4:3 permissions must be a list of permission entries, but it is a mapping']],
    ['permission item as text', `${HEAD}permissions:\n  - /srv\n`, ['4:5 permissions[0] must be a mapping with an object']],
    ['object missing', `${HEAD}permissions:\n  - mode: 644\n`, [`4:5 The deployment failed because ${NO_OBJECT}. Update the permissions section of the AppSpec file, and then try again.`]],
    ['object blank', `${HEAD}permissions:\n  - object: " "\n`, [`4:13 ${NO_OBJECT}`]],
    ['type as text (theme 21)', `${HEAD}permissions:\n  - object: /srv\n    type: file\n`, ['5:11 permissions[0].type must be a list of file and/or directory, but it is the text "file"']],
    ['type not supported', `${HEAD}permissions:\n  - object: /srv\n    type: [file, link]\n`, ['5:18 The deployment failed because the application specification file specifies a permission for an object type not supported for permissions (link). Update the permissions section of the AppSpec file, and then try again.']],
    ['except as text', `${HEAD}permissions:\n  - object: /srv\n    except: tmp\n`, ['5:13 permissions[0].except must be a list, but it is the text "tmp"']],
    ['mode with an 8', `${HEAD}permissions:\n  - object: /srv\n    mode: 648\n`, ['5:11 The deployment failed because the permissions mode (648) in the application specification file contains an invalid character (8).']],
    ['mode too long', `${HEAD}permissions:\n  - object: /srv\n    mode: "00644"\n`, ['5:11 the length of a permissions mode (00644) in the application specification file is invalid']],
    ['mode as a list', `${HEAD}permissions:\n  - object: /srv\n    mode: [6, 4, 4]\n`, ['5:11 permissions[0].mode must be a single value, but it is a list']],
    ['acls as text', `${HEAD}permissions:\n  - object: /srv\n    acls: u:bob:7\n`, ['5:11 permissions[0].acls must be a list, but it is the text "u:bob:7"']],
    ['acls with a base entry and a bad one', `${HEAD}permissions:\n  - object: /srv\n    acls:\n      - u:bob:7\n      - u::7\n      - x:bob:7\n`, ['7:9 Use mode to set the base acl entry (u::7)', '8:9 Invalid acl entry (x:bob:7)']],
    ['an empty except entry', `${HEAD}permissions:\n  - object: /srv\n    except: [tmp, ~]\n`, ['5:19 permissions[0].except[1] is empty']],
    ['an acl with an invalid permission letter', `${HEAD}permissions:\n  - object: /srv\n    acls:\n      - u:bob:rwz\n`, ['6:9 the access control list (ACL) named u:bob:rwz in the application specification file contains an invalid character (z)']],
    ['pattern as a list', `${HEAD}permissions:\n  - object: /srv\n    pattern: ["*.sh"]\n`, ['5:14 permissions[0].pattern must be a single value, but it is a list']],
    ['context without type', `${HEAD}permissions:\n  - object: /srv\n    context:\n      name: unconfined_u\n      range: s0\n`, ['6:7 The deployment failed because the application specification file specifies an invalid context type ({"name"=>"unconfined_u", "range"=>"s0"}). Update the permissions section of the AppSpec file, and then try again.']],
    ['context as text', `${HEAD}permissions:\n  - object: /srv\n    context: httpd_sys_content_t\n`, ['5:14 permissions[0].context must be a mapping with type']],
    ['SELinux range backwards', `${HEAD}permissions:\n  - object: /srv\n    context: { type: var_t, range: s3-s1 }\n`, ['5:36 problem with the SELinux range specified (s3-s1)']],
    ['SELinux category out of range', `${HEAD}permissions:\n  - object: /srv\n    context: { type: var_t, range: "s0:c1024" }\n`, ['5:36 invalid category c1024']],
    ['two different SELinux users', `${HEAD}permissions:\n  - object: /srv\n    context: { name: a_u, user: b_u, type: var_t }\n`, ['5:27 permissions[0].context names two different SELinux users']],
    // file_exists_behavior
    ['file_exists_behavior in lower case', `${HEAD}file_exists_behavior: overwrite\n`, ['3:23 The deployment failed because an invalid file_exists_behavior value (overwrite) was entered in the application specification file. Make sure your AppSpec file specifies one of DISALLOW,OVERWRITE,RETAIN as the file_exists_behavior, and then try again.']],
    ['file_exists_behavior unknown', `${HEAD}file_exists_behavior: REPLACE\n`, ['3:23 invalid file_exists_behavior value (REPLACE)']],
    ['file_exists_behavior as a list', `${HEAD}file_exists_behavior: [RETAIN]\n`, ['3:23 invalid file_exists_behavior value (["RETAIN"])']],
  ])('%s', (name, yaml, problems) => {
    const result = parse(yaml, name.endsWith('on Windows') ? 'windows' : 'linux');
    expect(result.spec).toBeUndefined();
    expectProblems(result.problems, problems);
    for (const problem of result.problems) expect(problem.hint, problem.message).toMatch(/\w/);
  });

  it('refuses permissions on Windows with AWS\'s message', () => {
    const result = parse('version: 0.0\nos: windows\npermissions:\n  - object: C:\\app\n', 'windows');
    expectProblems(result.problems, ['3:1 The deployment failed because the application specification file specifies file permissions, but the deployment is targeting one or more Windows Server instances.']);
  });

  it('reports every problem at once, in file order', () => {
    const result = parse(`version: 1
os: ubuntu
hooks:
  Install:
    - location: a.sh
  AfterInstall:
    - timeout: 0
files:
  - source: app
permissions:
  - object: /srv
    mode: 9
    type: file
file_exists_behavior: sometimes
`);
    expectProblems(result.problems, [
      '1:10 invalid version value (1)',
      '2:5 unsupported operating system (ubuntu)',
      '4:3 Install is a step the agent performs itself',
      `7:7 ${NO_LOCATION}`,
      `7:16 ${BAD_TIMEOUT}`,
      '9:5 specifies only a source file (app)',
      '13:11 permissions[0].type must be a list',
      '12:11 the permissions mode (009) in the application specification file contains an invalid character (9)',
      '14:23 invalid file_exists_behavior value (sometimes)',
    ]);
    // The scripts that could be read are still offered for bundle checks.
    expect(result.sections?.hooks.Install).toEqual([{ location: 'a.sh', timeout: 3600, sudo: false }]);
  });
});

describe('parseAppSpec: hostile YAML (found by test/fuzz/appspec.test.ts)', () => {
  it('a mapping merged into itself is a problem, not a stack overflow', () => {
    const result = parse(`${HEAD}hooks: &a\n  <<: *a\n`);
    expectProblems(result.problems, ['4:7 this merge key (<<) merges a mapping into itself']);
    expect(parse('&a {version: 0.0, os: linux, <<: *a}').problems.map((p) => p.message)).toEqual(['this merge key (<<) merges a mapping into itself']);
  });

  it('a list that contains itself is printed as Ruby prints it', () => {
    expectProblems(parse('version: &v [*v]\nos: linux\n').problems, ['1:13 invalid version value ([[...]])']);
  });

  it('an alias to an anchor set later reads as nil', () => {
    expectProblems(parse('version: [[[*a]]]\nos: linux\npermissions: &a []\n').problems, ['1:10 invalid version value ([[[nil]]])']);
  });

  it('an alias bomb is cut short in the message instead of being expanded', () => {
    const bomb = ['a: &a [x,x,x,x,x,x,x,x,x]'];
    for (const [name, previous] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd'], ['f', 'e']]) {
      bomb.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(',')}]`);
    }
    const result = parse(`${bomb.join('\n')}\nversion: [*f, *f]\nos: linux\n`);
    const message = result.problems.find((p) => p.message.includes('invalid version value'))?.message ?? '';
    expect(message).toContain('invalid version value ([[[[[[["x", "x"');
    expect(message.length).toBeLessThan(600);
  });

  it('a key that is a list holding an unresolved alias is named, not thrown on', () => {
    const result = parse(`${HEAD}? [*nowhere]\n: 1\n`);
    expect(result.problems).toEqual([]);
    expect(result.warnings.map((w) => w.message)).toEqual(['unknown top-level key [nil] is ignored']);
  });
});
