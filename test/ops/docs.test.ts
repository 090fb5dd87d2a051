import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { missingTool } from '../helpers/prerequisites.js';

/**
 * The man page, the shell completions and the README against `--help`: the first two are generated from
 * the program's own definitions (`npm run docs`) and committed, the README is written by hand; all of them
 * must name every subcommand and every flag that `--help` shows.
 */
const read = (file: string) => readFileSync(join(REPO_ROOT, file), 'utf8');

/** Each subcommand `--help` lists, with the flags its own `--help` shows (`-c`, `--config`, …). */
async function helpFlags(): Promise<Map<string, string[]>> {
  const top = (await runCli(['--help'])).stdout;
  const names = [...top.split('Commands:')[1].matchAll(/^ {2}(\w[\w-]*)/gm)].map((match) => match[1]).filter((name) => name !== 'help');
  const flags = new Map<string, string[]>();
  for (const name of names) {
    const help = (await runCli([name, '--help'])).stdout;
    const options = help.split('Options:')[1] ?? '';
    flags.set(name, [...options.matchAll(/^ {2}(?:(-\w), )?(--[\w-]+)/gm)].flatMap((match) => [match[1], match[2]].filter((flag): flag is string => flag !== undefined)));
  }
  return flags;
}

let flags: Map<string, string[]>;
beforeAll(async () => {
  flags = await helpFlags();
});

describe('generated from --help', () => {
  it('the committed man page and completions are what the program prints (run npm run docs after changing a flag)', async () => {
    for (const [file, args] of [
      ['man/codedeploy-agent.8', ['man']],
      ['completions/codedeploy-agent.bash', ['completion', 'bash']],
      ['completions/_codedeploy-agent', ['completion', 'zsh']],
    ] as const) {
      expect(read(file), `${file} is stale: run npm run docs`).toBe((await runCli([...args])).stdout + '\n');
    }
  });

  it('the man page names every subcommand and every flag', () => {
    const man = read('man/codedeploy-agent.8').replaceAll('\\-', '-');
    expect([...flags.keys()]).toEqual(expect.arrayContaining(['run', 'deploy', 'validate', 'status', 'stop', 'register', 'deregister', 'completion']));
    for (const [command, commandFlags] of flags) {
      const section = man.split(`.B codedeploy-agent ${command} `)[1]?.split('.SS')[0];
      expect(section, `the man page has no section for ${command}`).toBeDefined();
      for (const flag of commandFlags) expect(section, `${command} ${flag}`).toMatch(new RegExp(`^\\.B .*${flag}\\b`, 'm'));
    }
    expect(man).toContain('codedeploy-local.log');
  });

  it('bash completes subcommands, the flags of the subcommand, and files after -c', async () => {
    const complete = async (...words: string[]) => {
      const script = `source completions/codedeploy-agent.bash; COMP_WORDS=(${words.map((word) => `'${word}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _codedeploy_agent; printf '%s\\n' "\${COMPREPLY[@]}"`;
      return (await execa('bash', ['-c', script], { cwd: REPO_ROOT })).stdout.split('\n');
    };
    expect(await complete('codedeploy-agent', 'de')).toEqual(['deploy', 'deregister']);
    expect(await complete('codedeploy-agent', 'deploy', '--ty')).toEqual(['--type']);
    expect(await complete('codedeploy-agent', 'validate', '--js')).toEqual(['--json']);
    expect(await complete('codedeploy-local', '--bundle-l')).toEqual(['--bundle-location']);
    expect(await complete('codedeploy-agent', 'run', '-c', 'completions/codedeploy-agent.b')).toEqual(['completions/codedeploy-agent.bash']);
  });

  it.skipIf(missingTool('zsh'))('zsh loads the completion and offers the flags of deploy', async () => {
    // _arguments and _describe stubbed to print what they were given: zsh's completion system itself needs a terminal.
    const script = '_arguments() { if [[ $1 == -C ]]; then state=argument; else print -rl -- "$@"; fi }; _describe() { :; }; ' +
      'words=(deploy); service=codedeploy-agent; source completions/_codedeploy-agent';
    const { stdout } = await execa('zsh', ['-c', script], { cwd: REPO_ROOT });
    const specs = stdout.split('\n');
    expect(specs).toContain('(-l --bundle-location)--bundle-location[local folder or archive, s3\\://bucket/key\\[?versionId=..&etag=..\\], or a GitHub https URL]:location:_files');
    expect(specs).toContain('(-c --agent-configuration-file)-c[agent configuration file]:file:_files');
    expect(specs).toContain('--verbose[stream hook output to the terminal]');
  });
});

describe('the README', () => {
  const readme = read('README.md');

  it('lists every flag that --help shows, for every subcommand', () => {
    for (const [command, commandFlags] of flags) {
      for (const flag of commandFlags) {
        if (flag === '-h' || flag === '--help') continue;
        expect(readme, `README does not mention ${command} ${flag}`).toMatch(new RegExp(`\`[^\`]*${flag}(?![\\w-])[^\`]*\``));
      }
    }
  });

  it('lists only flags --help knows in its tables of deploy and the commands', () => {
    const known = new Set([...flags.values()].flat().concat('-v', '--version', '-h', '--help'));
    const sections = ['## Commands', '## Local deployments'].map((heading) => readme.split(heading)[1].split('\n## ')[0]);
    for (const section of sections) {
      for (const row of section.split('\n').filter((line) => line.startsWith('| `'))) {
        for (const flag of row.split('|').slice(1, 3).join(' ').replaceAll('\\|', ' ').match(/(?<![\w-])--?[a-zA-Z][\w-]*/g) ?? []) expect(known, `README lists ${flag}, which --help does not`).toContain(flag);
      }
    }
  });

  it('speaks of AWS\'s agent by name and links only to files in the repository', () => {
    expect(readme).not.toMatch(/anchor|§|\.\.\/shared|agent-spec|users-and-peers/);
    for (const [, target] of readme.matchAll(/\]\(([^)]+)\)/g)) {
      if (/^(https?:|#)/.test(target)) continue;
      expect(() => read(target.split('#')[0]), `README links to ${target}`).not.toThrow();
    }
  });
});
