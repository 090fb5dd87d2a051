import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Integration tests run the real bundled CLI, so build it once before the suite. Also makes one folder
 * for the whole run (inherited by the test workers through CDA_TEST_RUN_DIR) for files that outlive a
 * single test, such as the PKCS7 signer's keys, and removes it at the end: forked workers do not always
 * run their own exit handlers.
 */
export default function setup(): () => void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  execFileSync(process.execPath, [join(root, 'scripts/build.mjs')], { stdio: 'inherit' });
  const runDir = mkdtempSync(join(tmpdir(), 'cda-run-'));
  process.env.CDA_TEST_RUN_DIR = runDir;
  return () => rmSync(runDir, { recursive: true, force: true });
}
