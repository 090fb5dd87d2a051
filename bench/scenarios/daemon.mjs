// The daemon scenarios: start (process start → first PollHostCommand), idle (polling the double) and
// poll-to-ack (command queued on the double → acknowledgement received). The daemon is the real
// `codedeploy-agent run` with the on-premises IAM-user identity, its endpoint the double on 127.0.0.1.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { loadCommandsServiceDouble, writeOnPremisesFile } from '../lib/double.mjs';
import { agentCommand, processCpuMs, processMemoryKb, processTreeCpuMs, runMeasured, summarize } from '../lib/measure.mjs';
import { commandWorkers } from '../lib/sample.mjs';

const HOST = 'arn:aws:iam::123456789012:user/codedeploy-bench';
/** Longer than the command worker's 10 idle seconds: the next deployment starts a burst (a new worker). */
const BURST_PAUSE_MS = 12_000;

/** Polls `predicate` every few ms (the double is in this process) until it returns a value. */
async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(2);
  }
}

class DaemonWorld {
  constructor(ctx, double, service) {
    this.ctx = ctx;
    this.double = double;
    this.service = service;
    this.dir = join(ctx.workDir, 'daemon');
    rmSync(this.dir, { recursive: true, force: true });
    // A fresh deployment root has no record of the files an earlier daemon (the source build's, before the
    // executable's) installed there: they would be "already there" to its first Install.
    rmSync(ctx.fixtures.dest('daemon'), { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    const onPremises = join(this.dir, 'onpremises.yml');
    writeOnPremisesFile(onPremises, double.TEST_CREDENTIALS, HOST);
    this.configFile = join(this.dir, 'agent.yml');
    // As shipped (conf/codedeployagent.yml: wait_between_runs 1), without the start-up splay, which
    // would only add a random wait before the first poll.
    writeFileSync(this.configFile, [
      `:root_dir: ${join(this.dir, 'root')}`,
      `:log_dir: ${join(this.dir, 'log')}`,
      `:pid_dir: ${join(this.dir, 'pid')}`,
      `:on_premises_config_file: ${onPremises}`,
      `:deploy_control_endpoint: ${service.url}`,
      ':wait_between_runs: 1',
      ':startup_splay_seconds: 0',
    ].join('\n'));
  }

  /**
   * Starts `codedeploy-agent run` (from the source bundle, or the single executable `executable`); its
   * output goes to a file.
   */
  start(executable) {
    const { command, args } = executable
      ? { command: executable, args: ['run', '-c', this.configFile] }
      : agentCommand(this.ctx.repoRoot, ['run', '-c', this.configFile], { withUsage: false });
    const out = openSync(join(this.dir, 'agent-output.log'), 'a');
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.dir, AWS_EC2_METADATA_DISABLED: 'true' };
    const startedAt = Date.now();
    const child = spawn(command, args, { env, stdio: ['ignore', out, out] });
    closeSync(out);
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    return { child, pid: child.pid, startedAt, exited };
  }

  /** SIGTERM to our daemon (by its pid), and its exit. */
  async stop(daemon) {
    try {
      process.kill(daemon.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const timeout = delay(30_000).then(() => 'timeout');
    if ((await Promise.race([daemon.exited, timeout])) === 'timeout') {
      process.kill(daemon.pid, 'SIGKILL');
      await daemon.exited;
    }
  }

  polls() {
    return this.service.requestsFor('PollHostCommand');
  }

  /** A poll is being held by the double (arrived, not answered yet). */
  pollHeld() {
    const polls = this.polls();
    return polls.length > 0 && polls[polls.length - 1].status === 0;
  }
}

async function withDouble(ctx, body) {
  const double = await loadCommandsServiceDouble(ctx.repoRoot, join(ctx.workDir, 'double'));
  const service = await double.FakeCommandsService.start({ longPollMs: 500 });
  try {
    return await body(new DaemonWorld(ctx, double, service));
  } finally {
    await service.close();
  }
}

/**
 * Process start → first PollHostCommand, alternating with `node -e 0`. With `executable` (the single
 * executable and the official Node.js binary it was built from), that executable against `<runtime> -e 0`.
 */
export async function startScenario(ctx, { executable, runtime } = {}) {
  return withDouble(ctx, async (world) => {
    const toFirstPoll = [];
    const cpuAtPoll = [];
    const rssAtPoll = [];
    const nodeAlone = [];
    const once = async (measured) => {
      const before = world.polls().length;
      const daemon = world.start(executable);
      try {
        const poll = await waitFor(() => world.polls()[before], 30_000, 'the first PollHostCommand');
        if (measured) {
          toFirstPoll.push(poll.at - daemon.startedAt);
          cpuAtPoll.push(processCpuMs(daemon.pid));
          rssAtPoll.push(processMemoryKb(daemon.pid).hwmKb / 1024);
        }
      } finally {
        await world.stop(daemon);
      }
    };
    const node = executable ? runtime.node : process.execPath;
    const baseline = async () => runMeasured(node, ['-e', '0']);
    await once(false);
    await baseline();
    for (let i = 0; i < ctx.lightRuns; i++) {
      if (i % 2 === 1) nodeAlone.push(await baseline());
      await once(true);
      if (i % 2 === 0) nodeAlone.push(await baseline());
      ctx.progress();
    }
    const agent = { wall: summarize(toFirstPoll), cpu: summarize(cpuAtPoll), rss: summarize(rssAtPoll) };
    const base = { wall: summarize(nodeAlone.map((r) => r.wallMs)), cpu: summarize(nodeAlone.map((r) => r.cpuMs)) };
    if (executable) {
      return {
        id: 'start (executable)',
        what: `the same, with the single executable (Node.js ${runtime.version} inside)`,
        agent,
        baseline: base,
        baselineLabel: `node ${runtime.version} -e 0`,
        ratio: { wall: agent.wall.median / base.wall.median, cpu: agent.cpu.median / base.cpu.median },
        notes: ['the baseline is the official binary the executable was built from'],
        target: { text: '≤ 100 ms', ok: agent.wall.median <= 100 },
      };
    }
    return {
      id: 'start',
      what: 'process start to first PollHostCommand (`codedeploy-agent run`, startup_splay_seconds 0)',
      agent,
      baseline: base,
      baselineLabel: 'node -e 0',
      ratio: { wall: agent.wall.median / base.wall.median, cpu: agent.cpu.median / base.cpu.median },
      notes: ['agent CPU and RSS are read when the double sees the first poll'],
      target: { text: '≤ 0.30 s', ok: agent.wall.median <= 300 },
    };
  });
}

/**
 * One daemon: `idleSeconds` of polling (CPU and RSS sampled every window), then `deployments` Local
 * Directory deployments, each queued while a poll is held, timed to the first acknowledgement.
 */
export async function idleAndPollToAckScenarios(ctx, { executable } = {}) {
  const suffix = executable ? ' (executable)' : '';
  return withDouble(ctx, async (world) => {
    const daemon = world.start(executable);
    try {
      await waitFor(() => world.polls().length > 0, 30_000, 'the first PollHostCommand');
      await delay(Math.min(3000, ctx.idleSeconds * 250));

      // idle
      const windows = ctx.idleSeconds >= 30 ? 6 : 3;
      const windowMs = (ctx.idleSeconds * 1000) / windows;
      const cpuPerMinute = [];
      const rss = [];
      const pollsBefore = world.polls().length;
      let cpu = processCpuMs(daemon.pid);
      let at = performance.now();
      for (let i = 0; i < windows; i++) {
        await delay(windowMs);
        const nowCpu = processCpuMs(daemon.pid);
        const now = performance.now();
        cpuPerMinute.push(((nowCpu - cpu) * 60_000) / (now - at));
        rss.push(processMemoryKb(daemon.pid).rssKb / 1024);
        cpu = nowCpu;
        at = now;
      }
      const idlePolls = world.polls().length - pollsBefore;
      const hwm = processMemoryKb(daemon.pid).hwmKb / 1024;
      ctx.progress();

      // poll-to-ack
      const latencies = [];
      let signed = true;
      let identity;
      try {
        identity = await world.double.makeSigningIdentity();
      } catch {
        signed = false; // no openssl: TEXT/JSON envelopes
      }
      /** Queues one deployment while a poll is held; its poll-to-ack time once it has succeeded. */
      const deployOnce = async () => {
        const spec = world.double.makeSpec({
          revision: { RevisionType: 'Local Directory', LocalRevision: { Location: ctx.fixtures.daemonBundle, BundleType: 'directory' } },
        });
        const json = JSON.stringify(spec);
        const envelope = signed ? { Format: 'PKCS7/JSON', Payload: await world.double.signJson(json, { identity }) } : { Format: 'TEXT/JSON', Payload: json };
        await waitFor(() => world.pollHeld(), 10_000, 'a held PollHostCommand');
        const queuedAt = Date.now();
        const deployment = world.service.addDeployment({ hostIdentifier: HOST, spec, envelope });
        const ack = await waitFor(() => deployment.commands[0].acks[0], 10_000, 'the first acknowledgement');
        await world.service.waitForDeployment(deployment, 60_000);
        if (deployment.status !== 'Succeeded') {
          const output = readFileSync(join(world.dir, 'agent-output.log'), 'utf8').slice(-4000);
          throw new Error(`bench deployment ${deployment.deploymentId} ${deployment.status}: ${JSON.stringify(deployment.commands.map((c) => c.completions))}\nagent output:\n${output}`);
        }
        return ack.at - queuedAt;
      };
      for (let i = 0; i < ctx.ackRuns + 1; i++) {
        const latency = await deployOnce();
        // The first deployment loads the engine and the PKCS7 code: reported, not counted in the median.
        if (i > 0) latencies.push(latency);
        else ctx.firstAckMs = latency;
      }
      ctx.progress();

      // Bursts: each deployment after a pause longer than the command worker's idle time, so (where there is
      // one) a new worker starts for it. CPU of the daemon and everything it started and reaped (the worker,
      // the hooks), counted once the worker has exited.
      const burstLatencies = [];
      const burstCpu = [];
      const workerGone = () => commandWorkers(daemon.pid).length === 0;
      await delay(BURST_PAUSE_MS);
      await waitFor(workerGone, 30_000, 'the command worker to exit');
      for (let i = 0; i < ctx.burstRuns; i++) {
        const cpuBefore = processTreeCpuMs(daemon.pid);
        burstLatencies.push(await deployOnce());
        await delay(BURST_PAUSE_MS);
        await waitFor(workerGone, 30_000, 'the command worker to exit');
        burstCpu.push(processTreeCpuMs(daemon.pid) - cpuBefore);
      }
      ctx.progress();
      const finalRss = processMemoryKb(daemon.pid);
      return [
        {
          id: `idle${suffix}`,
          what: `${executable ? 'the single executable' : 'the daemon'} polling the double for ${ctx.idleSeconds} s (long poll held 0.5 s, wait_between_runs 1 s: ${idlePolls} polls)`,
          agent: { cpu: summarize(cpuPerMinute), rss: summarize(rss) },
          cpuUnit: 'per minute',
          notes: [
            `CPU per minute and RSS over ${windows} windows of ${(windowMs / 1000).toFixed(0)} s; peak RSS (VmHWM) ${hwm.toFixed(1)} MB`,
            `RSS after the ${ctx.ackRuns + 1} poll-to-ack deployments: ${(finalRss.rssKb / 1024).toFixed(1)} MB (VmHWM ${(finalRss.hwmKb / 1024).toFixed(1)} MB)`,
          ],
          target: { text: 'RSS ≤ 60 MB, CPU ≤ 0.3 s per minute', ok: summarize(rss).median <= 60 && summarize(cpuPerMinute).median <= 300 },
        },
        {
          id: `deployment after a pause${suffix}`,
          what: `a deployment (11 events, the poll-to-ack one) after ${BURST_PAUSE_MS / 1000} s without commands: the command worker starts for it`,
          agent: { wall: summarize(burstLatencies), cpu: summarize(burstCpu) },
          notes: [
            'wall: command queued → acknowledgement received; CPU: the whole deployment, the daemon and every process it started (the worker, the hooks), read once the worker has exited',
          ],
        },
        {
          id: `poll-to-ack${suffix}`,
          what: `command queued on the double while a poll is held → acknowledgement received (${signed ? 'PKCS7/JSON' : 'TEXT/JSON'} spec)`,
          agent: { wall: summarize(latencies) },
          notes: [
            `first deployment (loads the engine and spec code): ${ctx.firstAckMs} ms, not in the figures`,
            "includes the double's 10 ms pause before it answers a woken poll, and its SigV4 check of each request",
          ],
          target: { text: '≤ 50 ms', ok: summarize(latencies).median <= 50 },
        },
      ];
    } finally {
      await world.stop(daemon);
    }
  });
}
