// The soak's own section of BENCHMARKS.md, its series as CSV and its plot as SVG (bench/results/).
import { lineChartSvg } from './plot.mjs';

const COLUMNS = [
  ['phase', (s) => s.phase],
  ['deployments', (s) => s.deployments],
  ['seconds', (s) => s.seconds.toFixed(1)],
  ['rss_mib', (s) => s.rssMiB.toFixed(1)],
  ['worker_rss_mib', (s) => (s.workerRssMiB ?? 0).toFixed(1)],
  ['total_rss_mib', (s) => (s.totalRssMiB ?? s.rssMiB).toFixed(1)],
  ['rss_anon_mib', (s) => s.anonMiB.toFixed(1)],
  ['rss_file_mib', (s) => s.fileMiB.toFixed(1)],
  ['heap_used_mib', (s) => s.heapMiB.toFixed(2)],
  ['heap_total_mib', (s) => s.heapTotalMiB.toFixed(1)],
  ['external_mib', (s) => s.externalMiB.toFixed(2)],
  ['threads', (s) => s.threads],
  ['fds', (s) => s.fds],
  ['root_mib', (s) => s.rootMiB.toFixed(2)],
  ['revisions_mib', (s) => s.revisionsMiB.toFixed(2)],
  ['deployments_log_mib', (s) => s.deploymentsLogMiB.toFixed(3)],
  ['max_revisions_in_a_group', (s) => s.revisions],
];

export function soakCsv(result) {
  return `${[COLUMNS.map(([name]) => name).join(','), ...result.samples.map((s) => COLUMNS.map(([, get]) => get(s)).join(','))].join('\n')}\n`;
}

export function soakSvg(result) {
  const minutes = (s) => s.seconds / 60;
  const series = (name, color, key, filter = () => true) => ({ name, color, points: result.samples.filter(filter).map((s) => [minutes(s), s[key]]) });
  return lineChartSvg({
    title: `codedeploy-agent run: ${result.deployments.toLocaleString('en-US')} deployments (sampled every ${result.sampleEvery})`,
    xLabel: 'minutes since the agent started',
    markers: [
      { x: result.firstDeploymentAt / 60, label: 'first deployment' },
      { x: result.lastDeploymentAt / 60, label: 'last' },
    ],
    panels: [
      {
        title: 'Memory (MiB)',
        series: [
          series('RSS, daemon and command worker', '#e377c2', 'totalRssMiB'),
          series('RSS, daemon', '#d62728', 'rssMiB'),
          series('RSS, anonymous', '#ff9896', 'anonMiB'),
          series('heap after a full GC', '#1f77b4', 'heapMiB'),
        ],
      },
      { title: 'Threads and open descriptors', series: [series('threads', '#2ca02c', 'threads'), series('descriptors', '#9467bd', 'fds')] },
      {
        title: 'Deployment root (MiB)',
        series: [series('revision folders and markers', '#8c564b', 'revisionsMiB'), series('deployments log', '#7f7f7f', 'deploymentsLogMiB')],
      },
    ],
  });
}

const mib = (value) => `${value.toFixed(1)} MiB`;

export function soakSection(result, { machine, command, loadAfter, csvPath, svgPath }) {
  const lines = [`### Soak: last run ${machine.date}`, ''];
  if (result.skipped) {
    lines.push(`- Skipped: ${result.skipped}.`);
    return lines.join('\n');
  }
  const { idle, final, outcome } = result;
  const rested = result.samples.filter((s) => s.phase === 'rested');
  const minutes = (result.lastDeploymentAt - result.firstDeploymentAt) / 60;
  lines.push(
    `- Command: \`${command}\`; Node.js ${machine.node}; ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB memory; load average at the start ${machine.loadAverage.map((l) => l.toFixed(2)).join(', ')}, at the end ${loadAfter.map((l) => l.toFixed(2)).join(', ')}`,
    ...(Object.keys(result.agentEnv ?? {}).length ? [`- The agent ran with ${Object.entries(result.agentEnv).map(([k, v]) => `\`${k}=${v}\``).join(', ')} in its environment`] : []),
    `- ${result.deployments.toLocaleString('en-US')} deployments in ${minutes.toFixed(1)} min (median ${result.deploymentSeconds.median.toFixed(2)} s from queued to finished, 95th percentile ${result.deploymentSeconds.p95.toFixed(2)} s, longest ${result.deploymentSeconds.max.toFixed(2)} s): ${outcome.succeeded} succeeded, ${outcome.failed} failed where their hooks fail on purpose; whole scenario ${((result.lastDeploymentAt + result.settleSeconds) / 60).toFixed(1)} min`,
    `- RSS is the daemon's own; while a deployment runs, its command worker (a child process that runs the lifecycle events and exits after 10 idle seconds) holds memory too, shown apart and in the total`,
    `- Idle before the first deployment (${result.idleSeconds} s after the first poll): RSS ${mib(idle.rssMiB)} (anonymous ${mib(idle.anonMiB)}, file-backed ${mib(idle.fileMiB)}), heap ${mib(idle.heapMiB)}, ${idle.threads} threads, ${idle.fds} descriptors`,
    `- After the last deployment and ${result.settleSeconds} s: ${final.workerRssMiB > 0 ? `a command worker still running (${mib(final.workerRssMiB)}); ` : 'no command worker running; '}RSS ${mib(final.rssMiB)} (anonymous ${mib(final.anonMiB)}, file-backed ${mib(final.fileMiB)}), heap ${mib(final.heapMiB)}, ${final.threads} threads, ${final.fds} descriptors; peak RSS (VmHWM) ${mib(result.hwmMiB)}`,
    ...(rested.length > 0
      ? [`- Rested (${result.restSeconds} s without deployments every ${result.restEvery}): RSS ${rested.map((s) => s.rssMiB.toFixed(1)).join(', ')} MiB (with the worker, if still up: ${rested.map((s) => s.totalRssMiB.toFixed(1)).join(', ')} MiB); heap ${rested.map((s) => s.heapMiB.toFixed(1)).join(', ')} MiB`]
      : []),
    `- Fitted growth over the run (least squares over the busy samples after the first tenth, × ${result.deployments} deployments): heap ${result.trend.heapMiB.toFixed(2)} MiB, RSS ${result.trend.rssMiB.toFixed(1)} MiB (with the worker ${result.trend.totalRssMiB.toFixed(1)} MiB), descriptors ${result.trend.fds.toFixed(1)}, revision folders ${result.trend.rootMiB.toFixed(2)} MiB`,
    '',
    '| check | figure | met |',
    '| --- | --- | --- |',
    ...result.checks.map((c) => `| ${c.what} | ${c.detail} | ${c.ok ? 'yes' : '**no**'} |`),
    '',
    `![RSS, heap, threads, descriptors and deployment root over the soak](${svgPath})`,
    '',
    `The series (every ${result.sampleEvery} deployments, plus idle, rested and settled samples): [\`${csvPath}\`](${csvPath}). Every ${Math.max(result.restEvery, Math.round(result.deployments / 10))} deployments:`,
    '',
    '| phase | deployments | minutes | RSS | anonymous | heap | heap total | threads | descriptors | worker RSS | total RSS | root | deployments log |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  const step = Math.max(result.restEvery, Math.round(result.deployments / 10));
  const shown = result.samples.filter((s, i, all) => s.phase === 'idle' ? i === all.findIndex((x) => x.phase === 'idle') || s === idle
    : s.phase === 'settled' ? s === final
      : s.deployments % step === 0 || s.deployments === result.deployments);
  for (const s of shown) {
    lines.push(`| ${s.phase} | ${s.deployments} | ${(s.seconds / 60).toFixed(1)} | ${s.rssMiB.toFixed(1)} | ${s.anonMiB.toFixed(1)} | ${s.heapMiB.toFixed(2)} | ${s.heapTotalMiB.toFixed(1)} | ${s.threads} | ${s.fds} | ${s.workerRssMiB.toFixed(1)} | ${s.totalRssMiB.toFixed(1)} | ${s.rootMiB.toFixed(2)} | ${s.deploymentsLogMiB.toFixed(2)} |`);
  }
  return lines.join('\n');
}
