// The esbuild options every build of the agent shares: dist/ (scripts/build.mjs) and the single
// executable's modules (scripts/sea.mjs) are the same code split the same way.
import { join } from 'node:path';
import { embedFileJobWorker } from './file-job-worker.mjs';
import { narrowSmithyCore } from './narrow-smithy-core.mjs';

/**
 * commander loads node:child_process when it is loaded, for subcommands that are programs of their own,
 * which the agent has none of; and node:child_process brings node:dgram with it (0.4 MB of an idle daemon).
 * commander gets a stand-in that loads the real module at its first use.
 */
const lazyChildProcessForCommander = {
  name: 'lazy-child-process-for-commander',
  setup(build) {
    build.onResolve({ filter: /^(node:)?child_process$/ }, (args) => (/[\\/]node_modules[\\/]commander[\\/]/.test(args.importer)
      ? { path: 'lazy-child-process', namespace: 'lazy-child-process' }
      : undefined));
    build.onLoad({ filter: /.*/, namespace: 'lazy-child-process' }, () => ({
      contents: "module.exports = new Proxy({}, { get: (_, name) => require('node:child_process')[name] });",
      loader: 'js',
    }));
  },
};

/**
 * One entry; each subcommand and each part loaded on demand in a chunk of its own (see build.mjs).
 *
 * - `mainFields: module first`: the ES module builds of the AWS SDK and Smithy packages (`dist-es`), which
 *   esbuild can tree-shake; their CommonJS builds `require()` whole `@smithy/core` submodules, which put
 *   90 KB more of protocol and serde code an idle daemon never runs into the chunks it loads
 *   (docs/decisions.md, "Single executable"). Packages with an `exports` map resolve through it as before.
 *   The rest of that code goes with narrowSmithyCore.
 * - `process.env.NODE_ENV` is "production": winston's internal diagnostics (@dabh/diagnostics) then take
 *   their no-op build instead of the development one with its colour libraries and `tty`. No other bundled
 *   package reads NODE_ENV, and hooks still get the environment the agent was started with.
 */
export function agentBundleOptions(root) {
  return {
    entryPoints: { 'codedeploy-agent': join(root, 'src/cli/entry.ts') },
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    mainFields: ['module', 'main'],
    define: { 'process.env.NODE_ENV': '"production"' },
    legalComments: 'none',
    logLevel: 'warning',
    // The file workers' text, embedded where the pool is (no worker file to ship).
    plugins: [embedFileJobWorker(root), lazyChildProcessForCommander, narrowSmithyCore],
  };
}
