// The file worker (src/util/file-jobs/worker.ts) as one self-contained script, for the bundle to embed:
// workers are started from its text (`new Worker(text, { eval: true })`), so neither dist/ nor the
// single executable needs a worker file. `embedFileJobWorker()` is the esbuild plugin that replaces
// src/util/file-jobs/worker-text.ts (which compiles the worker itself when run from source) with that text;
// any esbuild build of src/ must use it. The options match worker-text.ts's (a test checks the texts agree).
import { build } from 'esbuild';
import { join } from 'node:path';

const WORKER_TEXT_MODULE = /[\\/]src[\\/]util[\\/]file-jobs[\\/]worker-text\.ts$/;

/** The worker's script and the source files it was built from. */
export async function buildFileJobWorker(root) {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [join(root, 'src/util/file-jobs/worker.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    legalComments: 'none',
    logLevel: 'warning',
    write: false,
    metafile: true,
  });
  return { text: result.outputFiles[0].text, inputs: Object.keys(result.metafile.inputs).map((file) => join(root, file)) };
}

export function embedFileJobWorker(root) {
  return {
    name: 'file-job-worker',
    setup(esbuild) {
      esbuild.onLoad({ filter: WORKER_TEXT_MODULE }, async () => {
        const { text, inputs } = await buildFileJobWorker(root);
        return { contents: `export function fileJobWorkerText() {\n  return ${JSON.stringify(text)};\n}\n`, loader: 'js', watchFiles: inputs };
      });
    },
  };
}
