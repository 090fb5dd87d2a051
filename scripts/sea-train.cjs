'use strict';
// Makes the executable's V8 code caches from a training run (scripts/sea.mjs, trainCodeCaches): run by the
// very Node.js binary the executable is built from (under qemu for another CPU), it loads the agent's
// CommonJS chunks as scripts/sea-loader.cjs does and runs `codedeploy-agent run` against a stand-in
// commands service on 127.0.0.1 until scripts/sea.mjs stops it. At exit each chunk's cache is written
// beside it as `<chunk>.cache`: for the chunks the daemon loaded, made after it ran, so the cache holds the
// functions it compiled on its way to its first polls (V8 otherwise compiles those lazily at every start,
// docs/decisions.md "Single executable"); for the others, made from the bare script as before.
//
//   node sea-train.cjs <modules folder> <ids.json> <agent arguments...>
const fs = require('node:fs');
const vm = require('node:vm');
const path = require('node:path');

const [dir, idsFile, ...agentArgs] = process.argv.slice(2);
const ids = JSON.parse(fs.readFileSync(idsFile, 'utf8'));
const builtinRequire = require;
const modules = new Map();
const scripts = new Map();

// As scripts/sea-loader.cjs's load(), from files (same source text and file names).
function load(id) {
  const known = modules.get(id);
  if (known) return known.exports;
  if (!ids.includes(id)) throw new Error(`sea-train: no module ${id}`);
  const module = { exports: {} };
  modules.set(id, module);
  const script = new vm.Script(fs.readFileSync(path.join(dir, id), 'latin1'), { filename: `/codedeploy-agent/${id}` });
  scripts.set(id, script);
  const localRequire = (specifier) => (specifier.startsWith('./') || specifier.startsWith('../')
    ? load(path.posix.join(path.posix.dirname(id), specifier))
    : builtinRequire(specifier));
  script.runInThisContext()(module.exports, localRequire, module);
  return module.exports;
}

process.on('exit', () => {
  for (const id of ids) {
    const file = path.join(dir, id);
    const script = scripts.get(id) ?? new vm.Script(fs.readFileSync(file, 'latin1'), { filename: `/codedeploy-agent/${id}` });
    fs.writeFileSync(`${file}.cache`, script.createCachedData());
  }
  process.stderr.write(`sea-train: ${scripts.size} of ${ids.length} modules trained\n`);
});

// The agent names itself after argv[1] (codedeploy-agent or codedeploy-local).
process.argv = [process.execPath, path.join(dir, 'codedeploy-agent'), ...agentArgs];
load('codedeploy-agent.js');
