// A small SVG line chart made from the bench's own figures (no plotting library: one kind of chart, a
// few dozen lines, and a plain text file that diffs well in git). Panels are stacked and share the x axis;
// each has its own y axis, legend and optional vertical markers (phases of the run).

const FONT = 'font-family="sans-serif" font-size="11"';
const TITLE_FONT = 'font-family="sans-serif" font-size="13"';

/** Round steps (1, 2, 5 × 10^n) covering [min, max] in about `count` ticks. */
export function niceTicks(min, max, count = 5) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (max - min < 1e-9) max = min + 1;
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.floor(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toFixed(10)));
  if (ticks.at(-1) < max) ticks.push(ticks.at(-1) + step);
  return ticks;
}

function escape(text) {
  return String(text).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function label(value) {
  return Math.abs(value) >= 1000 ? value.toLocaleString('en-US') : String(Number(value.toPrecision(4)));
}

/**
 * panels: [{ title, series: [{ name, color, points: [[x, y], ...] }], yMin?, yMax? }]
 * markers: [{ x, label }] drawn across every panel; xLabel names the shared axis.
 */
export function lineChartSvg({ title, panels, xLabel, markers = [], width = 760, panelHeight = 150 }) {
  const left = 60;
  const right = 20;
  const top = 30;
  const gap = 50;
  const plotWidth = width - left - right;
  const height = top + panels.length * (panelHeight + gap) + 14;
  const xs = panels.flatMap((p) => p.series.flatMap((s) => s.points.map(([x]) => x)));
  const xTicks = niceTicks(Math.min(...xs), Math.max(...xs), 8);
  const [x0, x1] = [xTicks[0], xTicks.at(-1)];
  const sx = (x) => left + ((x - x0) / (x1 - x0)) * plotWidth;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="18" ${TITLE_FONT} font-weight="bold">${escape(title)}</text>`,
  ];
  panels.forEach((panel, index) => {
    const y0Pixel = top + index * (panelHeight + gap) + 20;
    const ys = panel.series.flatMap((s) => s.points.map(([, y]) => y));
    const yTicks = niceTicks(panel.yMin ?? Math.min(0, ...ys), panel.yMax ?? Math.max(...ys), 4);
    const [ya, yb] = [yTicks[0], yTicks.at(-1)];
    const sy = (y) => y0Pixel + panelHeight - ((y - ya) / (yb - ya)) * panelHeight;
    out.push(`<text x="${left}" y="${y0Pixel - 8}" ${FONT} font-weight="bold">${escape(panel.title)}</text>`);
    let legendX = left + 8 + panel.title.length * 6.5 + 16;
    for (const series of panel.series) {
      out.push(`<line x1="${legendX}" y1="${y0Pixel - 12}" x2="${legendX + 16}" y2="${y0Pixel - 12}" stroke="${series.color}" stroke-width="2"/>`);
      out.push(`<text x="${legendX + 20}" y="${y0Pixel - 8}" ${FONT}>${escape(series.name)}</text>`);
      legendX += 28 + series.name.length * 6.2 + 12;
    }
    for (const tick of yTicks) {
      out.push(`<line x1="${left}" y1="${sy(tick).toFixed(1)}" x2="${left + plotWidth}" y2="${sy(tick).toFixed(1)}" stroke="#e4e4e4"/>`);
      out.push(`<text x="${left - 6}" y="${(sy(tick) + 4).toFixed(1)}" ${FONT} text-anchor="end">${label(tick)}</text>`);
    }
    for (const tick of xTicks) {
      out.push(`<line x1="${sx(tick).toFixed(1)}" y1="${y0Pixel + panelHeight}" x2="${sx(tick).toFixed(1)}" y2="${y0Pixel + panelHeight + 4}" stroke="#888"/>`);
      out.push(`<text x="${sx(tick).toFixed(1)}" y="${y0Pixel + panelHeight + 16}" ${FONT} text-anchor="middle">${label(tick)}</text>`);
    }
    out.push(`<rect x="${left}" y="${y0Pixel}" width="${plotWidth}" height="${panelHeight}" fill="none" stroke="#888"/>`);
    for (const marker of markers) {
      const x = sx(marker.x).toFixed(1);
      out.push(`<line x1="${x}" y1="${y0Pixel}" x2="${x}" y2="${y0Pixel + panelHeight}" stroke="#999" stroke-dasharray="4 3"/>`);
      if (index === 0) out.push(`<text x="${Number(x) + 3}" y="${y0Pixel + 11}" ${FONT} fill="#666">${escape(marker.label)}</text>`);
    }
    for (const series of panel.series) {
      const path = series.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
      out.push(`<polyline points="${path}" fill="none" stroke="${series.color}" stroke-width="1.5" stroke-linejoin="round"/>`);
    }
  });
  out.push(`<text x="${left + plotWidth / 2}" y="${height - 8}" ${FONT} text-anchor="middle">${escape(xLabel)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
