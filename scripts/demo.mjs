#!/usr/bin/env node
// `npm run demo`: deploys examples/sample-app twice into a temporary deployment root through the whole
// lifecycle (no AWS account, no root, no network), then shows where everything landed.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'codedeploy-demo-'));
const destination = join(work, 'installed-app');
const configFile = join(work, 'codedeployagent.yml');
writeFileSync(configFile, [
  `:root_dir: ${join(work, 'deployment-root')}`,
  `:log_dir: ${join(work, 'log')}`,
  `:pid_dir: ${join(work, 'pid')}`,
  ':verbose: false',
  '',
].join('\n'));

/** Installed only by revision 1: the cleanup before revision 2's Install removes it. */
const FIRST_ONLY = 'public/retired-page.html';

/** A copy of the sample revision whose appspec points at the temporary destination. */
function makeRevision(version) {
  const dir = join(work, `revision-${version}`);
  cpSync(join(repo, 'examples/sample-app'), dir, { recursive: true });
  const appspec = join(dir, 'appspec.yml');
  writeFileSync(appspec, readFileSync(appspec, 'utf8').replaceAll('/tmp/codedeploy-sample-app', destination));
  writeFileSync(join(dir, 'app/VERSION'), `${version}\n`);
  if (version === 1) writeFileSync(join(dir, 'app', FIRST_ONLY), '<p>only revision 1 has this page</p>\n');
  return dir;
}

function deploy(revisionDir, title) {
  console.log(`\n=== ${title} ===`);
  execFileSync(process.execPath, [
    join(repo, 'bin/codedeploy-agent.mjs'), 'deploy',
    '--bundle-location', revisionDir, '--type', 'directory',
    '--deployment-group', 'demo-group', '--application-name', 'SampleApp',
    '--agent-configuration-file', configFile, '--verbose',
  ], { stdio: 'inherit' });
}

function tree(dir, indent = '  ') {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const st = statSync(path);
    console.log(`${indent}${name}${st.isDirectory() ? '/' : ''}  ${(st.mode & 0o7777).toString(8).padStart(4, '0')}`);
    if (st.isDirectory()) tree(path, `${indent}  `);
  }
}

const cleanupFile = join(work, 'deployment-root', 'deployment-instructions', 'demo-group-cleanup');
try {
  deploy(makeRevision(1), 'First deployment (ApplicationStop has no previous revision: nothing to run)');
  const recorded = readFileSync(cleanupFile, 'utf8').split('\n').filter(Boolean).length;
  console.log(`\nRevision 1 installed ${FIRST_ONLY}: ${existsSync(join(destination, FIRST_ONLY)) ? 'yes' : 'no'}; ` +
    `deployment-instructions/demo-group-cleanup lists the ${recorded} paths it created`);
  deploy(makeRevision(2), 'Second deployment (ApplicationStop runs revision 1\'s script; Install first removes what revision 1 installed)');
  console.log(`\nCleanup: ${FIRST_ONLY} (revision 1 only) is ${existsSync(join(destination, FIRST_ONLY)) ? 'STILL THERE' : 'gone'} after revision 2`);
} catch {
  console.error(`\nThe demo deployment failed; everything it made is in ${work} (remove it with: rm -rf ${work})`);
  process.exit(1);
}

console.log('\n=== Where everything landed ===');
console.log(`Installed files (${destination}):`);
tree(destination);
const root = join(work, 'deployment-root');
console.log(`Deployment root (${root}), same layout as AWS's agent:`);
console.log(`  ${join(root, 'deployment-instructions')}/: ${readdirSync(join(root, 'deployment-instructions')).sort().join(', ')}`);
for (const deployment of readdirSync(join(root, 'demo-group')).sort()) {
  console.log(`  ${join(root, 'demo-group', deployment)}/: ${readdirSync(join(root, 'demo-group', deployment)).sort().join(', ')}`);
}
console.log(`Agent log: ${join(work, 'log', 'codedeploy-local.log')}`);
console.log(`All hooks' output: ${join(root, 'deployment-logs', 'codedeploy-agent-deployments.log')}`);
console.log(`\nEverything the demo made is in ${work} (nothing outside it); remove it with: rm -rf ${work}`);
