#!/usr/bin/env node
// `npm run bench`: the issue-7 scenarios against their baselines, on a tmpfs when one can be mounted.
// Builds nothing itself (the npm script runs `npm run build` first); uses dist/ through bin/.
//
//   node bench/run.mjs [--quick] [--only small,many-files,...] [--skip soak,fleet] [--runs N] [--idle-seconds S]
//                      [--scale full|quick|tiny] [--no-tmpfs] [--work-dir D] [--cache-dir D]
//                      [--soak-deployments N] [--fleet-agents N] [--fleet-outage-seconds S]
//                      [--soak-agent-env NAME=VALUE ...] (e.g. MALLOC_ARENA_MAX=2, to compare allocator settings)
//                      [--out BENCHMARKS.md | --no-write] [--executable FILE]
// `executable` runs start and idle again with the single executable (default: built by scripts/sea.mjs).
//
// The soak and the fleet write their own sections of BENCHMARKS.md (and their series and plots into
// bench/results/ beside it), so `--only soak` or `--only fleet` leaves the main table as it is.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { prepareFixtures } from './lib/fixtures.mjs';
import { machineInfo, prepareWorkDir } from './lib/machine.mjs';
import { markdownSection, markersOf, terminalTable, writeBenchmarksFile } from './lib/report.mjs';
import { soakCsv, soakSection, soakSvg } from './lib/soak-report.mjs';
import { fleetCsv, fleetSection, fleetSvg } from './lib/fleet-report.mjs';
import { backgroundScenario, bigFileScenarios, hookOutputScenario, manyFilesScenarios, smallScenario } from './scenarios/deploy.mjs';
import { idleAndPollToAckScenarios, startScenario } from './scenarios/daemon.mjs';
import { soakScenario } from './scenarios/soak.mjs';
import { fleetScenario } from './scenarios/fleet.mjs';
import { ensureRuntime, HOST_ARCH } from '../scripts/runtime.mjs';
import { buildExecutable } from '../scripts/sea.mjs';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const SCENARIOS = ['start', 'small', 'hook-output', 'background', 'many-files', 'big-file', 'idle', 'executable', 'soak', 'fleet'];
/** Scenarios with a section of their own instead of a row of the main table. */
const OWN_SECTION = ['soak', 'fleet'];

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    skip: { type: 'string' },
    runs: { type: 'string' },
    'idle-seconds': { type: 'string' },
    scale: { type: 'string' },
    'no-tmpfs': { type: 'boolean', default: false },
    'work-dir': { type: 'string' },
    'cache-dir': { type: 'string' },
    out: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    'soak-deployments': { type: 'string' },
    'soak-agent-env': { type: 'string', multiple: true },
    'fleet-agents': { type: 'string' },
    'fleet-outage-seconds': { type: 'string' },
    executable: { type: 'string' },
  },
});

const scale = flags.scale ?? (flags.quick ? 'quick' : 'full');
if (!['full', 'quick', 'tiny'].includes(scale)) throw new Error(`--scale must be full, quick or tiny, not ${scale}`);
const skip = flags.skip ? flags.skip.split(',').map((s) => s.trim()) : [];
const only = (flags.only ? flags.only.split(',').map((s) => s.trim()) : SCENARIOS).filter((name) => !skip.includes(name));
for (const name of [...only, ...skip]) {
  // poll-to-ack is measured by the idle daemon
  if (!SCENARIOS.includes(name) && name !== 'poll-to-ack') throw new Error(`unknown scenario ${name}; known: ${SCENARIOS.join(', ')}, poll-to-ack`);
}
const runsFlag = flags.runs === undefined ? undefined : Number(flags.runs);
const defaults = {
  full: {
    heavyRuns: 5, lightRuns: 7, ackRuns: 10, burstRuns: 5, idleSeconds: 60, outputGraceSeconds: 5, tmpfsBytes: 5 * 2 ** 30,
    soak: { deployments: 1000, sampleEvery: 10, idleSeconds: 30, settleSeconds: 60, restEvery: 100, restSeconds: 10 },
    fleet: { agents: 100, spawnGapMs: 50, warmupSeconds: 15, steadySeconds: 60, outageSeconds: 120, recoverySeconds: 60, resumeTimeoutSeconds: 150, binSeconds: 5 },
  },
  quick: {
    heavyRuns: 3, lightRuns: 3, ackRuns: 5, burstRuns: 3, idleSeconds: 15, outputGraceSeconds: 5, tmpfsBytes: 2 * 2 ** 30,
    soak: { deployments: 200, sampleEvery: 10, idleSeconds: 15, settleSeconds: 30, restEvery: 50, restSeconds: 10 },
    fleet: { agents: 20, spawnGapMs: 50, warmupSeconds: 10, steadySeconds: 30, outageSeconds: 30, recoverySeconds: 60, resumeTimeoutSeconds: 120, binSeconds: 5 },
  },
  tiny: {
    heavyRuns: 1, lightRuns: 1, ackRuns: 1, burstRuns: 1, idleSeconds: 2, outputGraceSeconds: 1, tmpfsBytes: 256 * 2 ** 20,
    soak: { deployments: 5, sampleEvery: 1, idleSeconds: 2, settleSeconds: 7, restEvery: 3, restSeconds: 1 },
    // A short backoff ceiling so the agents come back within the smoke test's time.
    fleet: { agents: 3, spawnGapMs: 50, warmupSeconds: 1, steadySeconds: 3, outageSeconds: 5, recoverySeconds: 5, resumeTimeoutSeconds: 30, binSeconds: 1, maxBackoffSeconds: 5 },
  },
}[scale];
const soakDeployments = flags['soak-deployments'] === undefined ? defaults.soak.deployments : Number(flags['soak-deployments']);
const fleetAgents = flags['fleet-agents'] === undefined ? defaults.fleet.agents : Number(flags['fleet-agents']);
const fleetOutageSeconds = flags['fleet-outage-seconds'] === undefined ? defaults.fleet.outageSeconds : Number(flags['fleet-outage-seconds']);

const log = (line) => process.stderr.write(`[bench] ${line}\n`);
const benchDir = join(repoRoot, '.bench-tmp');
const work = prepareWorkDir(resolve(flags['work-dir'] ?? join(benchDir, 'work')), {
  sizeBytes: defaults.tmpfsBytes,
  wantTmpfs: !flags['no-tmpfs'],
  log,
});
const cacheDir = resolve(flags['cache-dir'] ?? join(benchDir, 'cache'));
mkdirSync(cacheDir, { recursive: true });

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    interrupted = true;
    log(`${signal}: stopping`);
    work.release();
    process.exit(130);
  });
}

const machine = machineInfo();
const results = [];
try {
  if (!existsSync(join(repoRoot, 'dist', 'codedeploy-agent.mjs'))) throw new Error('dist/codedeploy-agent.mjs is missing: run `npm run build` (or `npm run bench`)');
  log(`Node.js ${machine.node}, ${machine.cpu}, ${machine.cores} cores, load ${machine.loadAverage.map((l) => l.toFixed(2)).join(' ')}`);
  log(`preparing bundles (${scale}) in ${cacheDir}`);
  // Only the bundles the selected scenarios deploy (the 1 GiB one takes a minute to make).
  const bundlesOf = { small: ['small'], 'hook-output': ['hook-output'], background: ['background'], 'many-files': ['many'], 'big-file': ['big'], idle: ['daemon'], 'poll-to-ack': ['daemon'], executable: ['daemon'], soak: ['soak'] };
  const needs = [...new Set(only.flatMap((name) => bundlesOf[name] ?? []))];
  const fixtures = await prepareFixtures({ cacheDir, workDir: work.dir, scale, needs, log });
  let dots = 0;
  const ctx = {
    repoRoot,
    workDir: work.dir,
    fixtures,
    heavyRuns: runsFlag ?? defaults.heavyRuns,
    lightRuns: runsFlag ?? defaults.lightRuns,
    ackRuns: runsFlag ?? defaults.ackRuns,
    burstRuns: runsFlag ?? defaults.burstRuns,
    idleSeconds: flags['idle-seconds'] === undefined ? defaults.idleSeconds : Number(flags['idle-seconds']),
    outputGraceSeconds: defaults.outputGraceSeconds,
    soakDeployments,
    soakSampleEvery: defaults.soak.sampleEvery,
    soakIdleSeconds: defaults.soak.idleSeconds,
    soakSettleSeconds: defaults.soak.settleSeconds,
    soakRestEvery: defaults.soak.restEvery,
    soakRestSeconds: defaults.soak.restSeconds,
    soakAgentEnv: Object.fromEntries((flags['soak-agent-env'] ?? []).map((pair) => {
      const at = pair.indexOf('=');
      if (at <= 0) throw new Error(`--soak-agent-env wants NAME=VALUE, not ${pair}`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    })),
    fleetAgents,
    fleetOutageSeconds,
    fleetSpawnGapMs: defaults.fleet.spawnGapMs,
    fleetWarmupSeconds: defaults.fleet.warmupSeconds,
    fleetSteadySeconds: defaults.fleet.steadySeconds,
    fleetRecoverySeconds: defaults.fleet.recoverySeconds,
    fleetResumeTimeoutSeconds: defaults.fleet.resumeTimeoutSeconds,
    fleetBinSeconds: defaults.fleet.binSeconds,
    fleetMaxBackoffSeconds: defaults.fleet.maxBackoffSeconds,
    progress: () => {
      dots++;
      process.stderr.write('.');
    },
  };
  const want = (name) => only.includes(name);
  const step = async (name, run) => {
    if (interrupted) return;
    const started = performance.now();
    log(`${name} ...`);
    const produced = await run();
    const list = Array.isArray(produced) ? produced : [produced];
    if (dots) process.stderr.write('\n');
    dots = 0;
    results.push(...list);
    log(`${name}: done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  };
  if (want('start')) await step('start', () => startScenario(ctx));
  if (want('small')) await step('small', () => smallScenario(ctx));
  if (want('hook-output')) await step('hook-output', () => hookOutputScenario(ctx));
  if (want('background')) await step('background', () => backgroundScenario(ctx));
  if (want('many-files')) await step('many-files', () => manyFilesScenarios(ctx));
  if (want('big-file')) await step('big-file', () => bigFileScenarios(ctx));
  if (want('idle') || want('poll-to-ack')) await step('idle + poll-to-ack', () => idleAndPollToAckScenarios(ctx));
  if (want('executable')) {
    // The single executable for this machine (built, or taken from the build cache, by scripts/sea.mjs).
    const runtime = ensureRuntime(HOST_ARCH, { log });
    const executable = flags.executable ? resolve(flags.executable) : await buildExecutable({ log });
    log(`executable: ${relative(repoRoot, executable)}`);
    // A file just written sits in the page cache in large folios, and mapping it then makes the process's
    // file-backed RSS about 16 MB larger than when the same file is read in from disk (after a boot or an
    // install): drop the file's cached pages so every run measures the latter (docs/decisions.md).
    execFileSync('sync', [executable]);
    execFileSync('dd', [`if=${executable}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' });
    await step('start (executable)', () => startScenario(ctx, { executable, runtime }));
    await step('idle + poll-to-ack (executable)', () => idleAndPollToAckScenarios(ctx, { executable }));
  }
  if (want('soak')) await step(`soak (${soakDeployments} deployments)`, () => soakScenario(ctx));
  if (want('fleet')) await step(`fleet (${fleetAgents} agents, ${fleetOutageSeconds} s outage)`, () => fleetScenario(ctx));
} finally {
  work.release();
}

const runs = runsFlag !== undefined
  ? `${runsFlag} measured run(s) per scenario after a warm-up`
  : `${defaults.heavyRuns} measured runs of many-files and big-file, ${defaults.lightRuns} of the others, each after a warm-up; idle ${defaults.idleSeconds} s`;
const tableResults = results.filter((r) => !OWN_SECTION.includes(r.kind));
const soak = results.find((r) => r.kind === 'soak');
const fleet = results.find((r) => r.kind === 'fleet');
if (tableResults.length > 0) {
  process.stdout.write(`\n${terminalTable(tableResults)}\n\n`);
  for (const r of tableResults) if (r.notes?.length) process.stdout.write(`${r.id}: ${r.notes.join('; ')}\n`);
}
const printChecks = (name, result) => {
  if (!result) return;
  if (result.skipped) {
    process.stdout.write(`\n${name}: skipped: ${result.skipped}\n`);
    return;
  }
  process.stdout.write(`\n${name}:\n${result.checks.map((c) => `  ${c.ok ? 'met   ' : 'MISSED'} ${c.what}: ${c.detail}`).join('\n')}\n`);
};
printChecks('soak', soak);
printChecks('fleet', fleet);
const missed = [
  ...tableResults.filter((r) => r.target?.ok === false).map((r) => r.id),
  ...[soak, fleet].filter((r) => r?.checks?.some((c) => !c.ok)).map((r) => r.id),
];
process.stdout.write(missed.length ? `\ntargets missed: ${missed.join(', ')}\n` : '\nall targets met\n');

if (!flags['no-write']) {
  const out = resolve(flags.out ?? join(repoRoot, 'BENCHMARKS.md'));
  const options = [
    ...(flags.quick ? ['--quick'] : []),
    ...(flags.only ? [`--only ${flags.only}`] : []),
    ...(flags.skip ? [`--skip ${flags.skip}`] : []),
    ...(flags['soak-deployments'] ? [`--soak-deployments ${flags['soak-deployments']}`] : []),
    ...(flags['soak-agent-env'] ?? []).map((pair) => `--soak-agent-env ${pair}`),
    ...(flags['fleet-agents'] ? [`--fleet-agents ${flags['fleet-agents']}`] : []),
    ...(flags['fleet-outage-seconds'] ? [`--fleet-outage-seconds ${flags['fleet-outage-seconds']}`] : []),
  ];
  const command = `npm run bench${options.length ? ` -- ${options.join(' ')}` : ''}`;
  const cacheLabel = relative(repoRoot, cacheDir).startsWith('..') ? cacheDir : relative(repoRoot, cacheDir);
  if (tableResults.length > 0) {
    const section = markdownSection({ machine, storage: work.storage, mode: scale, runs, results: tableResults, loadAfter: os.loadavg(), command, cacheLabel });
    writeBenchmarksFile(out, section);
  }
  // Series and plots go to bench/results/ beside the file written, linked from it by relative paths.
  const resultsDir = join(dirname(out), 'bench', 'results');
  const written = (name, text) => {
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, name), text);
    return `bench/results/${name}`;
  };
  if (soak) {
    const paths = soak.skipped ? {} : { csvPath: written('soak.csv', soakCsv(soak)), svgPath: written('soak.svg', soakSvg(soak)) };
    writeBenchmarksFile(out, soakSection(soak, { machine, command, loadAfter: os.loadavg(), ...paths }), markersOf('soak'));
  }
  if (fleet) {
    const paths = { csvPath: written('fleet.csv', fleetCsv(fleet)), svgPath: written('fleet.svg', fleetSvg(fleet)) };
    writeBenchmarksFile(out, fleetSection(fleet, { machine, command, loadAfter: os.loadavg(), ...paths }), markersOf('fleet'));
  }
  log(`wrote ${out}`);
}
