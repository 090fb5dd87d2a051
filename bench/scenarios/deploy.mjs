// The `deploy` scenarios: small, many-files, big-file, hook-output, background. Each runs the agent's
// `deploy` (codedeploy-local) end to end as a child process, alternating with its baseline.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentCommand, runMeasured, summarize } from '../lib/measure.mjs';

const MB = 1024 * 1024;

/** The agent config of the deploy scenarios: everything under the work folder. */
function writeAgentConfig(ctx) {
  const file = join(ctx.workDir, 'agent.yml');
  const lines = [
    `:root_dir: ${join(ctx.workDir, 'root')}`,
    `:log_dir: ${join(ctx.workDir, 'log')}`,
    `:pid_dir: ${join(ctx.workDir, 'pid')}`,
    `:hook_output_grace_seconds: ${ctx.outputGraceSeconds}`,
  ];
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function deployArgs(ctx, configFile, { bundle, type, group }) {
  return ['deploy', '-l', bundle, '-t', type, '-g', group, '-c', configFile];
}

function freshRoot(ctx, ...also) {
  rmSync(join(ctx.workDir, 'root'), { recursive: true, force: true });
  for (const path of also) rmSync(path, { recursive: true, force: true });
}

/**
 * Warm-up (one unmeasured run of each), then `runs` rounds alternating which goes first. `prepare*`
 * run before each, unmeasured.
 */
async function alternate(ctx, { runs, agent, baseline }) {
  const measuredAgent = [];
  const measuredBaseline = [];
  const runAgent = async () => {
    agent.prepare?.();
    const { command, args } = agentCommand(ctx.repoRoot, agent.args);
    const result = await runMeasured(command, args, { usageFile: join(ctx.workDir, 'usage.json'), cwd: ctx.workDir });
    agent.after?.(result);
    return result;
  };
  const runBaseline = async () => {
    baseline.prepare?.();
    return runMeasured(baseline.command, baseline.args, { cwd: ctx.workDir });
  };
  await runAgent();
  if (baseline) await runBaseline();
  for (let i = 0; i < runs; i++) {
    const agentFirst = i % 2 === 0 || !baseline;
    if (agentFirst) measuredAgent.push(await runAgent());
    if (baseline) measuredBaseline.push(await runBaseline());
    if (!agentFirst) measuredAgent.push(await runAgent());
    ctx.progress();
  }
  return { agent: figures(measuredAgent), baseline: baseline ? figures(measuredBaseline) : undefined };
}

function figures(results) {
  return {
    wall: summarize(results.map((r) => r.wallMs)),
    cpu: summarize(results.map((r) => r.cpuMs)),
    rss: summarize(results.map((r) => (r.rssKb === undefined ? undefined : r.rssKb / 1024))),
  };
}

function ratio(a, b) {
  return a && b && b.median > 0 ? a.median / b.median : undefined;
}

function withRatios(result) {
  return {
    ...result,
    ratio: result.baseline
      ? { wall: ratio(result.agent.wall, result.baseline.wall), cpu: ratio(result.agent.cpu, result.baseline.cpu) }
      : undefined,
  };
}

export async function smallScenario(ctx) {
  const config = writeAgentConfig(ctx);
  freshRoot(ctx, ctx.fixtures.dest('small'));
  // No fresh root between runs: every measured run is a deployment that follows another, so its
  // ApplicationStop runs (from the previous revision) and Install removes the previous files first.
  const result = await alternate(ctx, {
    runs: ctx.lightRuns,
    agent: { args: deployArgs(ctx, config, { bundle: ctx.fixtures.small, type: 'directory', group: 'bench-small' }) },
  });
  const target = 300;
  return withRatios({
    id: 'small',
    what: `deploy of ${ctx.fixtures.sizes.smallFiles} files (${(ctx.fixtures.sizes.smallBytes / MB).toFixed(0)} MiB), 5 trivial hooks, second deployment`,
    ...result,
    target: { text: '≤ 0.30 s wall', ok: result.agent.wall.median <= target },
  });
}

const MANY_BASELINES = {
  directory: { label: 'cp -a', script: 'cp -a "$1" "$3"' },
  tgz: { label: 'tar -xzf + cp -a', script: 'mkdir "$2" && tar -xzf "$1" -C "$2" && cp -a "$2" "$3"' },
  zip: { label: 'unzip + cp -a', script: 'unzip -qo "$1" -d "$2" && cp -a "$2" "$3"' },
};

/** A bundle deployed into an empty root and destination, against the plain tools doing the same bytes. */
async function copyScenario(ctx, { id, what, bundle, type, group, dest, runs, ratioTarget, rssTarget }) {
  const config = writeAgentConfig(ctx);
  const baselineDir = join(ctx.workDir, 'baseline');
  const baseline = MANY_BASELINES[type];
  const result = await alternate(ctx, {
    runs,
    agent: {
      args: deployArgs(ctx, config, { bundle, type, group }),
      prepare: () => freshRoot(ctx, dest),
      after: () => freshRoot(ctx, dest),
    },
    baseline: {
      command: 'sh',
      args: ['-c', baseline.script, 'sh', bundle, join(baselineDir, 'unpacked'), join(baselineDir, 'copy')],
      prepare: () => {
        rmSync(baselineDir, { recursive: true, force: true });
        mkdirSync(baselineDir, { recursive: true });
      },
    },
  });
  rmSync(baselineDir, { recursive: true, force: true });
  const withRatio = withRatios({ id, what, ...result, baselineLabel: baseline.label });
  const ratioOk = withRatio.ratio.wall <= ratioTarget;
  const rssOk = rssTarget === undefined || withRatio.agent.rss.median <= rssTarget;
  return {
    ...withRatio,
    target: { text: `≤ ${ratioTarget}×${rssTarget ? `; RSS ≤ ${rssTarget} MB` : ''}`, ok: ratioOk && rssOk },
  };
}

export async function manyFilesScenarios(ctx) {
  const { sizes } = ctx.fixtures;
  const what = (type) => `${sizes.manyFiles.toLocaleString('en-US')} files of ${sizes.manyFileBytes / 1024} KiB in nested folders, ${type} bundle`;
  const common = { group: 'bench-many', dest: ctx.fixtures.dest('many'), runs: ctx.heavyRuns };
  const results = [];
  results.push(await copyScenario(ctx, { ...common, id: 'many-files (directory)', what: what('directory'), bundle: ctx.fixtures.manyDir, type: 'directory', ratioTarget: 1.5 }));
  results.push(await copyScenario(ctx, { ...common, id: 'many-files (tgz)', what: what('tgz'), bundle: ctx.fixtures.manyTgz, type: 'tgz', ratioTarget: 1.2 }));
  results.push(await copyScenario(ctx, { ...common, id: 'many-files (zip)', what: what('zip'), bundle: ctx.fixtures.manyZip, type: 'zip', ratioTarget: 1.2 }));
  return results;
}

export async function bigFileScenarios(ctx) {
  const size = ctx.fixtures.sizes.bigBytes;
  const label = size >= 1 << 30 ? `${size / (1 << 30)} GiB` : `${size / MB} MiB`;
  const common = { group: 'bench-big', dest: ctx.fixtures.dest('big'), runs: ctx.heavyRuns, rssTarget: 120 };
  return [
    await copyScenario(ctx, { ...common, id: 'big-file (directory)', what: `one ${label} file, directory bundle`, bundle: ctx.fixtures.bigDir, type: 'directory', ratioTarget: 2.2 }),
    await copyScenario(ctx, { ...common, id: 'big-file (tgz)', what: `one ${label} file, tgz bundle`, bundle: ctx.fixtures.bigTgz, type: 'tgz', ratioTarget: 1.05 }),
  ];
}

export async function hookOutputScenario(ctx) {
  const config = writeAgentConfig(ctx);
  const out = join(ctx.workDir, 'baseline-output.txt');
  const result = await alternate(ctx, {
    runs: ctx.lightRuns,
    agent: {
      args: deployArgs(ctx, config, { bundle: ctx.fixtures.hookOutput, type: 'directory', group: 'bench-hook-output' }),
      prepare: () => freshRoot(ctx),
    },
    baseline: {
      command: 'sh',
      args: ['-c', 'cat "$1" > "$2"', 'sh', ctx.fixtures.hookOutputData, out],
      prepare: () => rmSync(out, { force: true }),
    },
  });
  rmSync(out, { force: true });
  freshRoot(ctx);
  const size = ctx.fixtures.sizes.hookOutputBytes;
  const withRatio = withRatios({
    id: 'hook-output',
    what: `a hook that prints ${size >= MB ? `${size / MB} MiB` : `${size / 1024} KiB`} of text lines`,
    ...result,
    baselineLabel: 'cat of the same bytes to a file',
  });
  return {
    ...withRatio,
    target: { text: '≤ 1.0 s wall; RSS ≤ 100 MB', ok: withRatio.agent.wall.median <= 1000 && withRatio.agent.rss.median <= 100 },
  };
}

/** Ends the `sleep 30` a background run left, by its pid, after checking the pid is still that sleep. */
function endBackgroundSleep(pidFile) {
  if (!existsSync(pidFile)) return false;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  rmSync(pidFile, { force: true });
  if (!Number.isInteger(pid) || pid <= 1) return false;
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return false; // already gone
  }
  if (cmdline !== 'sleep 30') return false;
  process.kill(pid, 'SIGKILL');
  return true;
}

export async function backgroundScenario(ctx) {
  const config = writeAgentConfig(ctx);
  const pidFile = ctx.fixtures.backgroundPidFile;
  let leftRunning = 0;
  const result = await alternate(ctx, {
    runs: ctx.lightRuns,
    agent: {
      args: deployArgs(ctx, config, { bundle: ctx.fixtures.background, type: 'directory', group: 'bench-background' }),
      prepare: () => freshRoot(ctx),
      after: () => {
        if (endBackgroundSleep(pidFile)) leftRunning++;
      },
    },
  });
  freshRoot(ctx);
  const limitMs = (ctx.outputGraceSeconds + 1) * 1000;
  return withRatios({
    id: 'background',
    what: `a hook that starts \`sleep 30 &\` without redirecting its output (hook_output_grace_seconds ${ctx.outputGraceSeconds})`,
    ...result,
    notes: [`the sleep was still running after ${leftRunning} of ${ctx.lightRuns + 1} deployments and was ended by its pid`],
    target: { text: `done ≤ grace + 1 s (${limitMs / 1000} s)`, ok: result.agent.wall.median <= limitMs },
  });
}
