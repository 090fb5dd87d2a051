// The fleet's own section of BENCHMARKS.md, its poll-rate series as CSV and its plot as SVG (bench/results/).
import { lineChartSvg } from './plot.mjs';

export function fleetCsv(result) {
  return `seconds,polls_per_second,agents_polling\n${result.series.map((s) => `${s.seconds},${s.pollsPerSecond.toFixed(2)},${s.agents}`).join('\n')}\n`;
}

export function fleetSvg(result) {
  const points = (key) => result.series.map((s) => [s.seconds, s[key]]);
  const steady = [[result.series[0].seconds, result.steady.rate], [result.series.at(-1).seconds, result.steady.rate]];
  const twice = steady.map(([x, y]) => [x, 2 * y]);
  return lineChartSvg({
    title: `${result.agents} agents, one commands-service double, ${result.outage.seconds} s outage`,
    xLabel: 'seconds since the first agent started',
    markers: [
      { x: result.steady.from, label: 'steady' },
      { x: result.outage.from, label: 'double down' },
      { x: result.outage.to, label: 'back' },
    ],
    panels: [
      {
        title: `Polls per second (${result.binSeconds} s bins)`,
        series: [
          { name: 'polls/s', color: '#1f77b4', points: points('pollsPerSecond') },
          { name: 'steady rate', color: '#2ca02c', points: steady },
          { name: '2 × steady', color: '#d62728', points: twice },
        ],
      },
      { title: `Agents heard from in each ${result.binSeconds} s bin`, series: [{ name: 'agents', color: '#9467bd', points: points('agents') }], yMax: result.agents },
    ],
  });
}

export function fleetSection(result, { machine, command, loadAfter, csvPath, svgPath }) {
  const lines = [`### Fleet: last run ${machine.date}`, ''];
  const { steady, recovery, memory } = result;
  lines.push(
    `- Command: \`${command}\`; Node.js ${machine.node}; ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB memory; load average at the start ${machine.loadAverage.map((l) => l.toFixed(2)).join(', ')}, at the end ${loadAfter.map((l) => l.toFixed(2)).join(', ')}`,
    `- ${result.agents} agents started ${result.spawnGapMs} ms apart, shipped settings (wait_between_runs 1 s, startup_splay_seconds 3, max_poll_backoff_seconds ${result.maxBackoffSeconds ?? 90}); the double holds each poll 0.5 s. All had polled ${result.allPollingSeconds.toFixed(1)} s after the first started; the whole scenario took ${(result.endSeconds / 60).toFixed(1)} min`,
    `- Steady (${(steady.to - steady.from).toFixed(0)} s): ${steady.rate.toFixed(1)} polls/s in all (each agent ${steady.perAgentMin.toFixed(2)}–${steady.perAgentMax.toFixed(2)} polls/s; busiest ${result.peakSeconds} s ${steady.peak10.toFixed(1)} polls/s); RSS per agent ${memory.medianMiB.toFixed(1)} MiB median, ${memory.maxMiB.toFixed(1)} MiB largest, ${(memory.totalMiB / 1024).toFixed(2)} GiB for the fleet; CPU per agent ${(result.cpuMsPerMinute / 1000).toFixed(2)} s per minute (median)`,
    `- Outage: the double stopped listening for ${result.outage.seconds} s (held polls cut, connections refused), then listened again on the same port`,
    `- After recovery: ${recovery.rate.toFixed(1)} polls/s over ${recovery.seconds} s, busiest ${result.peakSeconds} s ${recovery.peak10.toFixed(1)} polls/s; ${recovery.resumed} of ${result.agents} agents polled again, the median ${recovery.medianResume?.toFixed(1) ?? '—'} s and the last ${recovery.lastResume?.toFixed(1) ?? '—'} s after the double came back`,
    '',
    '| check | figure | met |',
    '| --- | --- | --- |',
    ...result.checks.map((c) => `| ${c.what} | ${c.detail} | ${c.ok ? 'yes' : '**no**'} |`),
    '',
    ...(svgPath ? [`![Polls per second and agents polling, before, during and after the outage](${svgPath})`, '', `Polls per second in ${result.binSeconds} s bins: [\`${csvPath}\`](${csvPath}).`] : []),
  );
  return lines.join('\n');
}
