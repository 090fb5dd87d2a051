#!/usr/bin/env node
// `npm run package`: builds release/codedeploy-agent-<version>.tar.gz from the esbuild bundle (run
// `npm run build` first; the npm script does). The tarball holds everything a host needs and nothing else:
// no node_modules, the bundle is self-contained.
//
//   codedeploy-agent-<version>/
//     install.sh                        sudo ./install.sh [--region R] ...
//     bin/codedeploy-agent.mjs          checks the Node.js version, then loads the bundle
//     dist/codedeploy-agent.mjs(.map)   what every command needs
//     dist/chunks/*.mjs(.map)           loaded on demand (subcommands, S3, GitHub, archives, PKCS7, ...):
//                                       exactly those the bundle imports, not older builds' leftovers
//     systemd/codedeploy-agent.service
//     conf/codedeployagent.yml          the default configuration
//     package.json                      name and version (install.sh reads the version)
//     README.md
//
// Options: --out-dir DIR (default release/). SOURCE_DATE_EPOCH fixes the timestamps inside the archive.
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create } from 'tar';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out-dir');
const outDir = resolve(outIndex >= 0 && args[outIndex + 1] ? args[outIndex + 1] : join(root, 'release'));

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const name = `codedeploy-agent-${pkg.version}`;

const files = [
  // [source in the repository, path in the release, mode]
  ['install.sh', 'install.sh', 0o755],
  ['bin/codedeploy-agent.mjs', 'bin/codedeploy-agent.mjs', 0o755],
  ['dist/codedeploy-agent.mjs', 'dist/codedeploy-agent.mjs', 0o644],
  ['dist/codedeploy-agent.mjs.map', 'dist/codedeploy-agent.mjs.map', 0o644, 'optional'],
  ['systemd/codedeploy-agent.service', 'systemd/codedeploy-agent.service', 0o644],
  ['conf/codedeployagent.yml', 'conf/codedeployagent.yml', 0o644],
  ['README.md', 'README.md', 0o644],
  ['LICENSE', 'LICENSE', 0o644, 'optional'],
];

/** Every chunk the bundle imports, statically or on demand, directly or through other chunks. */
function chunksOf(entry) {
  const seen = new Set();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop();
    if (seen.has(file) || !existsSync(file)) continue;
    seen.add(file);
    for (const match of readFileSync(file, 'utf8').matchAll(/\b(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+\.mjs)"/g)) {
      queue.push(resolve(dirname(file), match[1]));
    }
  }
  seen.delete(entry);
  return [...seen].map((file) => relative(root, file)).sort();
}

const entry = join(root, 'dist/codedeploy-agent.mjs');
if (existsSync(entry)) {
  for (const chunk of chunksOf(entry)) {
    files.push([chunk, chunk, 0o644]);
    files.push([`${chunk}.map`, `${chunk}.map`, 0o644, 'optional']);
  }
}

const missing = files.filter(([source, , , optional]) => !optional && !existsSync(join(root, source))).map(([source]) => source);
if (missing.length > 0) {
  process.stderr.write(`package: missing ${missing.join(', ')}${missing.some((f) => f.startsWith('dist/')) ? ' (run npm run build first)' : ''}\n`);
  process.exit(1);
}

const staging = mkdtempSync(join(tmpdir(), 'codedeploy-agent-package-'));
try {
  const top = join(staging, name);
  for (const [source, target, mode, optional] of files) {
    if (optional && !existsSync(join(root, source))) continue;
    mkdirSync(dirname(join(top, target)), { recursive: true });
    copyFileSync(join(root, source), join(top, target));
    chmodSync(join(top, target), mode);
  }
  const releasePkg = {
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    license: pkg.license,
    type: pkg.type,
    engines: pkg.engines,
  };
  writeFileSync(join(top, 'package.json'), `${JSON.stringify(releasePkg, null, 2)}\n`);
  chmodSync(join(top, 'package.json'), 0o644);

  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${name}.tar.gz`);
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  await create(
    {
      gzip: true,
      file,
      cwd: staging,
      portable: true,
      ...(Number.isFinite(epoch) && epoch > 0 ? { mtime: new Date(epoch * 1000) } : {}),
    },
    [name],
  );
  process.stdout.write(`${file}\n`);
} finally {
  rmSync(staging, { recursive: true, force: true });
}
