// Loaded into the daemon with `node --import` by the soak and fleet scenarios (never by the agent's own
// launcher): on SIGUSR2 it runs a full garbage collection and writes the process's memory figures to the
// file named by CDA_BENCH_PROBE_FILE, then renames it into place so the bench never reads half a file.
// The heap figure after a full collection is what the heap retains; RSS (read by the bench from /proc
// before it signals) is what the process holds, allocator and V8's free pages included. Nothing runs
// unless the bench asks, so the probe costs the agent nothing between samples. The variable is removed
// at once, so hooks and other children never see it.
//
// To find what grows: with CDA_BENCH_HEAP_SNAPSHOTS=<folder> (the soak passes it through), every probe
// also writes a heap snapshot there (`probe-<n>.heapsnapshot`, after the collection), to compare in
// Chrome DevTools' Memory tab. Slow (about a second and the heap's size again in memory each): for a
// scratch run, not for the figures.
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

const file = process.env.CDA_BENCH_PROBE_FILE;
const snapshots = process.env.CDA_BENCH_HEAP_SNAPSHOTS;
delete process.env.CDA_BENCH_PROBE_FILE;
delete process.env.CDA_BENCH_HEAP_SNAPSHOTS;
if (file) {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  let sequence = 0;
  process.on('SIGUSR2', () => {
    gc();
    const usage = process.memoryUsage();
    const heap = v8.getHeapStatistics();
    const temp = `${file}.tmp`;
    writeFileSync(temp, JSON.stringify({
      sequence: ++sequence,
      at: Date.now(),
      rss: usage.rss,
      heapUsed: usage.heapUsed,
      heapTotal: usage.heapTotal,
      external: usage.external,
      arrayBuffers: usage.arrayBuffers,
      mallocedMemory: heap.malloced_memory,
      nativeContexts: heap.number_of_native_contexts,
      detachedContexts: heap.number_of_detached_contexts,
      spaces: Object.fromEntries(v8.getHeapSpaceStatistics().map((space) => [space.space_name, { size: space.space_size, used: space.space_used_size }])),
      activeHandles: typeof process.getActiveResourcesInfo === 'function' ? process.getActiveResourcesInfo().length : undefined,
    }));
    if (snapshots) v8.writeHeapSnapshot(join(snapshots, `probe-${sequence}.heapsnapshot`));
    renameSync(temp, file);
  });
}
