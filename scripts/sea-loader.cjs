'use strict';
// The single executable's main script (Node.js 24 runs it as CommonJS). The agent itself is not in it: its
// modules are the esbuild chunks of the source build, turned into CommonJS and appended after the ELF image
// with a V8 code cache each (scripts/sea.mjs, moduleTable), and this loader compiles each one when it is
// first required, as the source build's dynamic imports do. So an idle `codedeploy-agent run` compiles and
// keeps only what it runs (docs/decisions.md, "Single executable").
//
// In a single executable, `require` loads built-in modules only; chunk-relative paths are resolved here.
const fs = require('node:fs');
const vm = require('node:vm');
const path = require('node:path');

const MAGIC = 'codedeploy-agent modules v1\n';
const builtinRequire = require;
const modules = new Map();

// The file this process runs, kept open: modules are read from it as they are needed, hours later for a
// deployment's, and by then an upgrade may have put another executable at the same path.
let fd;
try {
  fd = fs.openSync('/proc/self/exe', 'r');
} catch {
  fd = fs.openSync(process.execPath, 'r');
}

function readAt(position, length) {
  const bytes = Buffer.allocUnsafe(length);
  for (let done = 0; done < length;) {
    const read = fs.readSync(fd, bytes, done, length - done, position + done);
    if (read === 0) throw new Error(`codedeploy-agent: ${process.execPath} ends early (a damaged or stripped executable?)`);
    done += read;
  }
  return bytes;
}

const { tableStart, index } = (() => {
  const size = fs.fstatSync(fd).size;
  const tail = readAt(size - MAGIC.length - 8, MAGIC.length + 8);
  if (tail.toString('latin1', 8) !== MAGIC) {
    throw new Error(`codedeploy-agent: ${process.execPath} has no modules after its program (was it stripped?); reinstall it`);
  }
  const indexLength = tail.readUInt32LE(0);
  const start = size - tail.readUInt32LE(4);
  return { tableStart: start, index: JSON.parse(readAt(size - MAGIC.length - 8 - indexLength, indexLength).toString('latin1')) };
})();

function load(id) {
  const known = modules.get(id);
  if (known) return known.exports;
  const entry = index[id];
  if (!entry) throw new Error(`codedeploy-agent: the executable has no module ${id}`);
  const module = { exports: {} };
  modules.set(id, module);
  const [offset, length, cacheOffset, cacheLength] = entry;
  const source = readAt(tableStart + offset, length).toString('latin1');
  const cachedData = cacheLength ? readAt(tableStart + cacheOffset, cacheLength) : undefined;
  const script = new vm.Script(source, { filename: `/codedeploy-agent/${id}`, cachedData });
  const localRequire = (specifier) => (specifier.startsWith('./') || specifier.startsWith('../')
    ? load(path.posix.join(path.posix.dirname(id), specifier))
    : builtinRequire(specifier));
  script.runInThisContext()(module.exports, localRequire, module);
  return module.exports;
}

load('codedeploy-agent.js');
