#!/usr/bin/env node
// Entry point: checks the Node version before loading anything that needs a newer runtime.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  process.stderr.write(`codedeploy-agent needs Node.js 20.19 or newer; this is Node.js ${process.versions.node} (${process.execPath}).\n`);
  process.exit(1);
}
await import('../dist/codedeploy-agent.mjs');
