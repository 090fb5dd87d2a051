'use strict';
// The single executable's main script (Node.js 24 runs it as CommonJS). The agent itself is not in it: its
// modules are the esbuild chunks of the source build, turned into CommonJS and stored as the executable's
// assets, and this loader compiles each one when it is first required, as the source build's dynamic
// imports do. So an idle `codedeploy-agent run` compiles and keeps only what it runs (docs/decisions.md,
// "Single executable"), and each chunk starts from a V8 code cache made at build time by this same binary.
//
// In a single executable, `require` loads built-in modules only; chunk-relative paths are resolved here.
const sea = require('node:sea');
const vm = require('node:vm');
const path = require('node:path');

const builtinRequire = require;
const modules = new Map();
const keys = new Set(sea.getAssetKeys());

function load(id) {
  const known = modules.get(id);
  if (known) return known.exports;
  if (!keys.has(id)) throw new Error(`codedeploy-agent: the executable has no module ${id}`);
  const module = { exports: {} };
  modules.set(id, module);
  // Raw assets are views of the executable's own mapped pages: no copy before the source string is made.
  const source = Buffer.from(sea.getRawAsset(id)).toString('latin1');
  const cacheKey = `${id}.cache`;
  const cachedData = keys.has(cacheKey) ? Buffer.from(sea.getRawAsset(cacheKey)) : undefined;
  const script = new vm.Script(source, { filename: `/codedeploy-agent/${id}`, cachedData });
  const localRequire = (specifier) => (specifier.startsWith('./') || specifier.startsWith('../')
    ? load(path.posix.join(path.posix.dirname(id), specifier))
    : builtinRequire(specifier));
  script.runInThisContext()(module.exports, localRequire, module);
  return module.exports;
}

load('codedeploy-agent.js');
