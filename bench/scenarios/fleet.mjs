// A fleet on one machine (issue 13): `fleetAgents` daemons, each with its own configuration, deployment
// root and on-premises identity (an IAM user of its own), poll one commands-service double. After a
// steady period the double goes down for `fleetOutageSeconds` (held polls cut, connections refused) and
// comes back on the same port. The double counts each agent's polls per second; the scenario checks that
// every agent keeps running and resumes polling, and that the poll rate in the minute after recovery
// stays under twice the steady rate (jittered backoff, start-up splay and the throttle gate).
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { loadCommandsServiceDouble, writeOnPremisesFile } from '../lib/double.mjs';
import { agentCommand, processCpuMs } from '../lib/measure.mjs';
import { isAlive, processFigures } from '../lib/sample.mjs';

const MiB = 2 ** 20;

function memAvailableBytes() {
  try {
    return Number(/^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return Infinity;
  }
}

/** Polls counted in [from, to) (ms since the scenario started), per second. */
function rate(polls, from, to) {
  return polls.filter(([at]) => at >= from && at < to).length / ((to - from) / 1000);
}

/** The busiest `windowMs` window starting in [from, to - windowMs], as polls per second. */
function peakRate(polls, from, to, windowMs) {
  const times = polls.map(([at]) => at).filter((at) => at >= from && at < to).sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while (times[end] - times[start] >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best / (windowMs / 1000);
}

export async function fleetScenario(ctx) {
  const count = ctx.fleetAgents;
  const needed = count * 90 * MiB + 1024 * MiB;
  if (memAvailableBytes() < needed) {
    throw new Error(`the fleet of ${count} agents needs about ${(needed / 2 ** 30).toFixed(1)} GiB of available memory (90 MiB per agent and 1 GiB to spare); /proc/meminfo says ${(memAvailableBytes() / 2 ** 30).toFixed(1)} GiB. Use --fleet-agents N`);
  }
  const double = await loadCommandsServiceDouble(ctx.repoRoot, join(ctx.workDir, 'double'));
  const dir = join(ctx.workDir, 'fleet');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });

  const identities = Array.from({ length: count }, (_, i) => {
    const n = String(i + 1).padStart(4, '0');
    return {
      host: `arn:aws:iam::123456789012:user/fleet-host-${n}`,
      credentials: { accessKeyId: `AKIAFLEETHOST${n}0000`.slice(0, 20), secretAccessKey: `fleetHostSecret${n}/0123456789abcdefghijklmn` },
    };
  });
  const indexOf = new Map(identities.map((identity, i) => [identity.host, i]));
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  /** [ms since t0, agent index] of every PollHostCommand that reached the double. */
  const polls = [];
  const service = await double.FakeCommandsService.start({
    longPollMs: 500,
    keepRecords: 1000,
    credentials: identities.map((identity) => identity.credentials),
    onRequest: (record) => {
      if (record.operation !== 'PollHostCommand') return;
      const index = indexOf.get(record.body?.HostIdentifier);
      if (index !== undefined) polls.push([now(), index]);
    },
  });

  const agents = [];
  try {
    const { command, args } = agentCommand(ctx.repoRoot, [], { withUsage: false });
    for (const [i, identity] of identities.entries()) {
      const home = join(dir, `host-${String(i + 1).padStart(4, '0')}`);
      mkdirSync(home, { recursive: true });
      const onPremises = join(home, 'codedeploy.onpremises.yml');
      writeOnPremisesFile(onPremises, identity.credentials, identity.host);
      const configFile = join(home, 'codedeployagent.yml');
      // The shipped configuration (wait_between_runs 1; start-up splay, backoff and throttle waits at their defaults).
      writeFileSync(configFile, [
        `:root_dir: ${join(home, 'deployment-root')}`,
        `:log_dir: ${join(home, 'log')}`,
        `:pid_dir: ${join(home, 'pid')}`,
        `:on_premises_config_file: ${onPremises}`,
        `:deploy_control_endpoint: ${service.url}`,
        ':wait_between_runs: 1',
        ...(ctx.fleetMaxBackoffSeconds ? [`:max_poll_backoff_seconds: ${ctx.fleetMaxBackoffSeconds}`] : []),
      ].join('\n'));
      const out = openSync(join(home, 'agent-output.log'), 'a');
      const child = spawn(command, [...args, 'run', '-c', configFile], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', AWS_EC2_METADATA_DISABLED: 'true' },
        stdio: ['ignore', out, out],
      });
      closeSync(out);
      const agent = { child, pid: child.pid, home, exit: undefined };
      child.once('exit', (code, signal) => {
        agent.exit = { code, signal, at: now() };
      });
      agents.push(agent);
      // A little apart, as hosts booting together are; the start-up splay does the rest.
      await delay(ctx.fleetSpawnGapMs);
    }
    ctx.progress();

    // Every agent polls once, then a warm-up before the steady window.
    const startDeadline = Date.now() + 120_000 + count * 1000;
    while (new Set(polls.map(([, i]) => i)).size < count) {
      const dead = agents.filter((a) => a.exit);
      if (dead.length > 0) throw new Error(`${dead.length} agent(s) exited while starting; see ${join(dead[0].home, 'agent-output.log')}`);
      if (Date.now() > startDeadline) throw new Error(`only ${new Set(polls.map(([, i]) => i)).size} of ${count} agents polled within the start-up deadline`);
      await delay(100);
    }
    const allPollingAt = now();
    await delay(ctx.fleetWarmupSeconds * 1000);

    const steadyFrom = now();
    const cpuBefore = agents.map((a) => processCpuMs(a.pid));
    await delay(ctx.fleetSteadySeconds * 1000);
    const steadyTo = now();
    const cpuPerMinute = agents.map((a, i) => ((processCpuMs(a.pid) - cpuBefore[i]) * 60_000) / (steadyTo - steadyFrom));
    const figures = agents.map((a) => processFigures(a.pid));
    const steadyRate = rate(polls, steadyFrom, steadyTo);
    const perAgent = agents.map((_, i) => polls.filter(([at, index]) => index === i && at >= steadyFrom && at < steadyTo).length / ((steadyTo - steadyFrom) / 1000));
    ctx.progress();

    const downAt = now();
    await service.goDown();
    await delay(ctx.fleetOutageSeconds * 1000);
    await service.comeBack();
    const upAt = now();
    ctx.progress();

    const recoveryTo = upAt + ctx.fleetRecoverySeconds * 1000;
    const resumeDeadline = upAt + ctx.fleetResumeTimeoutSeconds * 1000;
    const resumedAt = new Array(count).fill(undefined);
    while (now() < Math.max(recoveryTo, 0) || (resumedAt.includes(undefined) && now() < resumeDeadline)) {
      for (const [at, i] of polls) if (at >= upAt && resumedAt[i] === undefined) resumedAt[i] = at;
      await delay(200);
    }
    for (const [at, i] of polls) if (at >= upAt && resumedAt[i] === undefined) resumedAt[i] = at;
    const alive = agents.filter((a) => !a.exit && isAlive(a.pid)).length;
    const recoveryRate = rate(polls, upAt, recoveryTo);
    const peakSeconds = Math.min(10, ctx.fleetRecoverySeconds, ctx.fleetSteadySeconds);
    const recoveryPeak10 = peakRate(polls, upAt, recoveryTo, peakSeconds * 1000);
    const steadyPeak10 = peakRate(polls, steadyFrom, steadyTo, peakSeconds * 1000);
    const resumed = resumedAt.filter((at) => at !== undefined);
    const lastResume = resumed.length ? (Math.max(...resumed) - upAt) / 1000 : undefined;
    const medianResume = resumed.length ? (resumed.sort((a, b) => a - b)[Math.floor(resumed.length / 2)] - upAt) / 1000 : undefined;
    const endAt = now();
    ctx.progress();

    // Polls per second in 5-second bins, for the plot and the CSV.
    const binMs = ctx.fleetBinSeconds * 1000;
    const series = [];
    for (let from = 0; from + binMs <= endAt; from += binMs) {
      const inBin = polls.filter(([at]) => at >= from && at < from + binMs);
      series.push({ seconds: from / 1000, pollsPerSecond: inBin.length / ctx.fleetBinSeconds, agents: new Set(inBin.map(([, i]) => i)).size });
    }
    const sortedRss = figures.map((f) => f.rssKb / 1024).sort((a, b) => a - b);
    const checks = [
      { what: 'every agent kept running through the outage', detail: `${alive} of ${count}`, ok: alive === count },
      { what: 'every agent resumed polling after the outage', detail: `${resumed.length} of ${count}; median ${medianResume?.toFixed(1) ?? '—'} s, last ${lastResume?.toFixed(1) ?? '—'} s after the double came back`, ok: resumed.length === count },
      {
        what: `poll rate in the ${ctx.fleetRecoverySeconds} s after recovery < 2 × the steady rate`,
        detail: `${recoveryRate.toFixed(1)} polls/s against ${steadyRate.toFixed(1)} (${(recoveryRate / steadyRate).toFixed(2)}×)`,
        ok: recoveryRate < 2 * steadyRate,
      },
      {
        what: `busiest ${peakSeconds} s after recovery < 2 × the steady rate`,
        detail: `${recoveryPeak10.toFixed(1)} polls/s (${(recoveryPeak10 / steadyRate).toFixed(2)}×; busiest ${peakSeconds} s of the steady window: ${steadyPeak10.toFixed(1)})`,
        ok: recoveryPeak10 < 2 * steadyRate,
      },
    ];
    return {
      id: 'fleet',
      kind: 'fleet',
      agents: count,
      checks,
      series,
      binSeconds: ctx.fleetBinSeconds,
      allPollingSeconds: allPollingAt / 1000,
      steady: { from: steadyFrom / 1000, to: steadyTo / 1000, rate: steadyRate, peak10: steadyPeak10, perAgentMin: Math.min(...perAgent), perAgentMax: Math.max(...perAgent) },
      outage: { from: downAt / 1000, to: upAt / 1000, seconds: ctx.fleetOutageSeconds },
      peakSeconds,
      recovery: { seconds: ctx.fleetRecoverySeconds, rate: recoveryRate, peak10: recoveryPeak10, medianResume, lastResume, resumed: resumed.length },
      memory: { totalMiB: sortedRss.reduce((a, b) => a + b, 0), medianMiB: sortedRss[Math.floor(sortedRss.length / 2)], maxMiB: sortedRss.at(-1) },
      cpuMsPerMinute: cpuPerMinute.sort((a, b) => a - b)[Math.floor(cpuPerMinute.length / 2)],
      endSeconds: endAt / 1000,
      spawnGapMs: ctx.fleetSpawnGapMs,
      maxBackoffSeconds: ctx.fleetMaxBackoffSeconds,
    };
  } finally {
    // SIGTERM to each of our agents by pid; SIGKILL to any still there after 30 s.
    const running = agents.filter((a) => !a.exit);
    const exits = running.map((a) => new Promise((resolve) => (a.exit ? resolve() : a.child.once('exit', resolve))));
    for (const a of running) a.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const a of running) if (!a.exit) a.child.kill('SIGKILL');
    }, 30_000);
    await Promise.all(exits);
    clearTimeout(timer);
    await service.close();
  }
}
