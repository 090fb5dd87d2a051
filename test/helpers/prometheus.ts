/**
 * Reading a scrape as Prometheus does: `promtool check metrics` (the Prometheus project's own checker of
 * the exposition format, from Debian's `prometheus` package; test/prerequisites.txt) and prom2javascript
 * (a parser of the same text format into families and samples, labelled histograms included) for values.
 * parse-prometheus-text-format was tried first: it merges every labelled histogram series into one.
 */
import { spawnSync } from 'node:child_process';
import { getMetricsFromIterator, type PromHistogramData, type PromMetrics } from 'prom2javascript';
import { findTestTool, missingTool } from './prerequisites.js';

export type { PromMetrics };

export async function parseScrape(text: string): Promise<PromMetrics> {
  return getMetricsFromIterator(text.split('\n')[Symbol.iterator]());
}

function matches(labels: Record<string, string>, wanted: Record<string, string>): boolean {
  return Object.entries(wanted).every(([key, value]) => labels[key] === value);
}

/** A counter's or gauge's value for the first series whose labels include `labels` (0 when there is none). */
export function valueOf(metrics: PromMetrics, name: string, labels: Record<string, string> = {}): number {
  const family = metrics[name];
  if (!family) return 0;
  const found = (family.data as { labels: Record<string, string>; value?: number }[]).find((d) => matches(d.labels, labels));
  return found?.value ?? 0;
}

/** A histogram series whose labels include `labels`. */
export function histogram(metrics: PromMetrics, name: string, labels: Record<string, string> = {}): PromHistogramData | undefined {
  const family = metrics[name];
  if (family?.type !== 'histogram') return undefined;
  return (family.data as PromHistogramData[]).find((d) => matches(d.labels, labels));
}

/** promtool, or undefined (said once; in CI a missing promtool fails instead: test/prerequisites.txt). */
export const PROMTOOL = missingTool('promtool') === undefined ? findTestTool('promtool') : undefined;

/** `promtool check metrics` on the text: its exit code (1 format error, 3 naming problems) and what it said. */
export function promtoolCheck(text: string): { exitCode: number; output: string } {
  if (!PROMTOOL) throw new Error('promtool is not on PATH');
  const result = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { exitCode: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}
