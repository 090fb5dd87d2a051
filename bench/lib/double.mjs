// The test doubles the daemon scenarios need — the commands service (test/doubles/commands-service.ts),
// its PKCS7 signer and moto (test/doubles/moto.ts) — bundled with esbuild (a dev dependency) into the
// work folder, then loaded into this process.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Leaves modules matching `filter` out of the bundle, imported from where they are in the repository:
 * scripts/test-prerequisites.mjs finds test/prerequisites.txt beside itself (moto.ts asks it where
 * moto_server is), which it could not do from the work folder.
 */
function keepInRepo(repoRoot, filter) {
  return {
    name: 'keep-in-repo',
    setup(build) {
      build.onResolve({ filter }, (args) => ({ path: pathToFileURL(resolve(args.resolveDir, args.path)).href, external: true }));
    },
  };
}

export async function loadCommandsServiceDouble(repoRoot, outDir) {
  const { build } = await import('esbuild');
  mkdirSync(outDir, { recursive: true });
  const outfile = join(outDir, 'commands-service-double.mjs');
  await build({
    stdin: {
      contents: [
        "export * from './test/doubles/commands-service.ts';",
        "export { signJson, makeSigningIdentity } from './test/doubles/pkcs7.ts';",
        "export { findMotoServer, startMoto } from './test/doubles/moto.ts';",
      ].join('\n'),
      resolveDir: repoRoot,
      sourcefile: 'bench-double-entry.ts',
      loader: 'ts',
    },
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    plugins: [keepInRepo(repoRoot, /\/scripts\/test-prerequisites\.mjs$/)],
  });
  return import(pathToFileURL(outfile).href);
}

/** An on-premises identity file (the keys the double checks SigV4 with, the host's IAM user ARN) at `path`. */
export function writeOnPremisesFile(path, credentials, host) {
  writeFileSync(path, [
    `aws_access_key_id: ${credentials.accessKeyId}`,
    `aws_secret_access_key: ${credentials.secretAccessKey}`,
    `iam_user_arn: ${host}`,
    'region: us-east-1',
  ].join('\n'));
}
