/**
 * Run in a separate Node process by output-volume.test.ts (bundled with esbuild), so its memory is
 * measured without the test runner's. Prints `{ "baselineRss", "peakRss", "logBytes" }` (logBytes: scripts.log and its rotations) as JSON.
 * argv: <world root> <bytes of output> <"accumulate" to simulate a runner that keeps all output>
 */
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ScriptsLog } from '../../src/hooks/scripts-log.js';
import { hookWorld, runHooks, writeScript } from './fixtures.js';

const [root, bytes, mode] = process.argv.slice(2);
const world = hookWorld(root);
writeScript(world, 'scripts/loud.sh', `yes 'the quick brown fox jumps over the lazy dog 0123456789' | head -c ${Number(bytes)}\necho done >&2`);
const scriptsLog = ScriptsLog.open(world.scriptsLogPath, { deploymentsLogPath: world.deploymentsLogPath });
const kept: string[] = [];
if (mode === 'accumulate') {
  const append = scriptsLog.append.bind(scriptsLog);
  scriptsLog.append = (messages, deploymentId) => {
    kept.push(...messages);
    return append(messages, deploymentId);
  };
}
const baselineRss = process.memoryUsage().rss;
let peakRss = baselineRss;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 5);
await runHooks(world, [{ location: 'scripts/loud.sh', timeout: 120 }], { scriptsLog });
await scriptsLog.close();
/** scripts.log and its rotated generations. */
function logBytes(): number {
  const dir = dirname(world.scriptsLogPath);
  return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
}
clearInterval(sampler);
peakRss = Math.max(peakRss, process.memoryUsage().rss);
process.stdout.write(JSON.stringify({ baselineRss, peakRss, logBytes: logBytes(), kept: kept.length }));
