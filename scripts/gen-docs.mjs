#!/usr/bin/env node
// `npm run docs`: writes the man page and the shell completions from the built program's own
// definitions (the same ones `--help` prints), to the paths the packages install them from:
//   man/codedeploy-agent.8              -> /usr/share/man/man8/codedeploy-agent.8
//   completions/codedeploy-agent.bash   -> /usr/share/bash-completion/completions/codedeploy-agent (and codedeploy-local)
//   completions/_codedeploy-agent       -> /usr/share/zsh/vendor-completions/_codedeploy-agent
// test/ops/docs.test.ts fails when the committed files differ from what the program prints.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = (...args) => execFileSync(process.execPath, [join(repo, 'bin/codedeploy-agent.mjs'), ...args], { encoding: 'utf8' });

export const GENERATED = [
  ['man/codedeploy-agent.8', ['man']],
  ['completions/codedeploy-agent.bash', ['completion', 'bash']],
  ['completions/_codedeploy-agent', ['completion', 'zsh']],
];

for (const [file, args] of GENERATED) {
  mkdirSync(dirname(join(repo, file)), { recursive: true });
  writeFileSync(join(repo, file), cli(...args));
  console.log(`wrote ${file}`);
}
