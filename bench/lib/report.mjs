// The results table: printed to the terminal and written into BENCHMARKS.md between two markers, so the
// hand-written notes around it stay.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const BEGIN = '<!-- bench:begin (written by `npm run bench`; edit outside these markers) -->';
export const END = '<!-- bench:end -->';

export function formatMs(ms) {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

function formatMb(mb) {
  return mb === undefined || !Number.isFinite(mb) ? '—' : `${mb.toFixed(0)} MB`;
}

/** `median (min–max)`; just the value when there was one run. */
function spread(summary, format) {
  if (!summary) return '—';
  if (summary.count === 1 || summary.min === summary.max) return format(summary.median);
  return `${format(summary.median)} (${format(summary.min)}–${format(summary.max)})`;
}

function ratio(value) {
  return value === undefined || !Number.isFinite(value) ? '—' : `${value.toFixed(2)}×`;
}

const HEADER = ['scenario', 'agent wall', 'baseline', 'baseline wall', 'wall ratio', 'agent CPU', 'baseline CPU', 'CPU ratio', 'agent max RSS', 'target (median)', 'met'];

export function tableRows(results) {
  return results.map((r) => {
    const perMinute = r.cpuUnit === 'per minute';
    return [
      r.id,
      spread(r.agent.wall, formatMs),
      r.baselineLabel ?? '—',
      spread(r.baseline?.wall, formatMs),
      ratio(r.ratio?.wall),
      perMinute ? `${spread(r.agent.cpu, formatMs)} per min` : spread(r.agent.cpu, formatMs),
      spread(r.baseline?.cpu, formatMs),
      ratio(r.ratio?.cpu),
      perMinute ? `${spread(r.agent.rss, formatMb)} (VmRSS)` : spread(r.agent.rss, formatMb),
      r.target?.text ?? '—',
      r.target?.ok === undefined ? '—' : r.target.ok ? 'yes' : '**no**',
    ];
  });
}

export function markdownTable(results) {
  const rows = [HEADER, HEADER.map(() => '---'), ...tableRows(results)];
  return rows.map((cells) => `| ${cells.map((c) => String(c).replaceAll('|', '\\|')).join(' | ')} |`).join('\n');
}

/** The table for a terminal: aligned columns, no markdown. */
export function terminalTable(results) {
  const rows = [HEADER, ...tableRows(results).map((row) => row.map((cell) => String(cell).replaceAll('**', '')))];
  const widths = HEADER.map((_, i) => Math.max(...rows.map((row) => String(row[i]).length)));
  return rows.map((row) => row.map((cell, i) => String(cell).padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

export function markdownSection({ machine, storage, mode, runs, results, loadAfter, command, cacheLabel }) {
  const lines = [
    `### Last run: ${machine.date}`,
    '',
    `- Command: \`${command}\` (${mode}; ${runs})`,
    `- Node.js ${machine.node}; ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB memory; ${machine.kernel}`,
    `- Deployment root, destinations and baseline output on: ${storage}; the bundles are read from \`${cacheLabel}\` on the disk (in the page cache after each scenario's warm-up run)`,
    `- Load average (1, 5, 15 min) at the start: ${machine.loadAverage.map((l) => l.toFixed(2)).join(', ')}; at the end: ${loadAfter.map((l) => l.toFixed(2)).join(', ')}`,
    '- Cells are `median (min–max)`; ratios are agent ÷ baseline of the medians. Wall time and CPU (user + system, the',
    '  process and every child it waited for, to 10 ms) are of the whole `codedeploy-agent deploy` process, start to exit;',
    "  max RSS is the agent process's own VmHWM.",
    '',
    markdownTable(results),
    '',
    ...results.map((r) => `- **${r.id}**: ${r.what}${r.notes?.length ? `; ${r.notes.join('; ')}` : ''}.`),
  ];
  return lines.join('\n');
}

/** The markers of a section of its own (the soak, the fleet), which only a run of that scenario rewrites. */
export function markersOf(name) {
  return { begin: `<!-- bench:${name}:begin (written by \`npm run bench\`; edit outside these markers) -->`, end: `<!-- bench:${name}:end -->` };
}

/** Replaces the section of `file` between `begin` and `end` (or appends it, or creates the file). */
export function writeBenchmarksFile(file, section, { begin = BEGIN, end = END } = {}) {
  const intro = [
    '# Benchmarks',
    '',
    '`npm run bench` (about 5 minutes, plus about a minute the first time to make the bundles; `npm run bench -- --quick`',
    'for a two-minute subset) generates its bundles under `.bench-tmp/`, runs each scenario against its baseline on the',
    'same machine, and rewrites the section between the markers below.',
    '',
  ].join('\n');
  let text = existsSync(file) ? readFileSync(file, 'utf8') : `${intro}\n`;
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  const marked = `${begin}\n${section}\n${end}`;
  if (from >= 0 && to > from) text = `${text.slice(0, from)}${marked}${text.slice(to + end.length)}`;
  else text = `${text.trimEnd()}\n\n${marked}\n`;
  writeFileSync(file, text);
}
