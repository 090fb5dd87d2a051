import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Integration tests run the real bundled CLI, so build it once before the suite, and the single executable
 * for this machine (scripts/sea.mjs; cached in .build-cache/ by the hash of its inputs, so a second run
 * only copies it), whose path the test workers get in CDA_TEST_EXECUTABLE. Also makes one folder for the
 * whole run (inherited by the test workers through CDA_TEST_RUN_DIR) for files that outlive a single test,
 * such as the PKCS7 signer's keys, and removes it at the end: forked workers do not always run their own
 * exit handlers.
 */
export default function setup(): () => void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  execFileSync(process.execPath, [join(root, 'scripts/build.mjs')], { stdio: 'inherit' });
  const runDir = mkdtempSync(join(tmpdir(), 'cda-run-'));
  process.env.CDA_TEST_RUN_DIR = runDir;
  const executable = join(runDir, `linux-${process.arch}`, 'codedeploy-agent');
  execFileSync(process.execPath, [join(root, 'scripts/sea.mjs'), '--out', executable], { stdio: ['ignore', 'ignore', 'inherit'] });
  process.env.CDA_TEST_EXECUTABLE = executable;
  return () => rmSync(runDir, { recursive: true, force: true });
}
