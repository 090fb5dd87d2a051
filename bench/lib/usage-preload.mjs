// Loaded into the agent with `node --import` by the bench: at exit, writes the process's own peak
// resident set (VmHWM) to the file named by CDA_BENCH_USAGE_FILE. The variable is removed at once, so
// hooks and other children never see it.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.env.CDA_BENCH_USAGE_FILE;
delete process.env.CDA_BENCH_USAGE_FILE;
if (file) {
  process.on('exit', () => {
    const status = readFileSync('/proc/self/status', 'utf8');
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    writeFileSync(file, JSON.stringify({ hwmKb: field('VmHWM'), rssKb: field('VmRSS') }));
  });
}
