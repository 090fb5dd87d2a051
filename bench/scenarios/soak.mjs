// The soak (issue 13): one `codedeploy-agent run` takes `soakDeployments` deployments in a row from the
// commands-service double — an S3 tgz revision in moto, 200 files, five hooks, about one in five failing
// (see SOAK_HOOKS) — over two deployment groups. Its resident set, heap (after a full collection, through
// the memory probe), threads, descriptors and deployment root are sampled while idle, every
// `soakSampleEvery` deployments, and through a settle period after the last one.
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { loadCommandsServiceDouble, writeOnPremisesFile } from '../lib/double.mjs';
import { soakFailure } from '../lib/fixtures.mjs';
import { agentCommand } from '../lib/measure.mjs';
import { commandWorkers, folderSize, processFigures, probeHeap, slope } from '../lib/sample.mjs';

const HOST = 'arn:aws:iam::123456789012:user/codedeploy-soak';
const BUCKET = 'soak-bundles';
const KEY = 'releases/app.tgz';
const GROUPS = ['soak-group-blue', 'soak-group-green'];
const MAX_REVISIONS = 5;
const MiB = 2 ** 20;

/** The issue's bounds. */
export const SOAK_LIMITS = {
  rssAboveIdleMiB: 15,
  /** Fitted growth over the run (after the first tenth) that still counts as flat. */
  heapGrowthMiB: 2,
  rssGrowthMiB: 10,
};

/** An S3 client of the bench's own for moto (without the SDK's Node.js version notice, as the agent does). */
function motoClient(endpoint) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  return import('@aws-sdk/client-s3').then(({ S3Client, CreateBucketCommand, PutObjectCommand }) => {
    const client = new S3Client({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIAMOTOBENCHKEY0001', secretAccessKey: 'motoBenchSecretAccessKey/0123456789' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return { client, CreateBucketCommand, PutObjectCommand };
  });
}

export async function soakScenario(ctx) {
  const double = await loadCommandsServiceDouble(ctx.repoRoot, join(ctx.workDir, 'double'));
  if (!double.findMotoServer()) {
    return { id: 'soak', kind: 'soak', skipped: 'moto_server is not on PATH (pip install "moto[server]")' };
  }
  const dir = join(ctx.workDir, 'soak');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const [service, moto] = await Promise.all([
    double.FakeCommandsService.start({ longPollMs: 500, keepRecords: 200 }),
    double.startMoto(),
  ]);
  let admin;
  let agent;
  let stopping = false;
  try {
    const s3 = await motoClient(moto.endpoint);
    admin = s3.client;
    await admin.send(new s3.CreateBucketCommand({ Bucket: BUCKET }));
    await admin.send(new s3.PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: readFileSync(ctx.fixtures.soakTgz) }));

    const root = join(dir, 'root');
    const onPremises = join(dir, 'onpremises.yml');
    writeOnPremisesFile(onPremises, double.TEST_CREDENTIALS, HOST);
    const configFile = join(dir, 'agent.yml');
    // The shipped configuration (conf/codedeployagent.yml) without the start-up splay, and 1 s grace periods
    // so the deployments whose ApplicationStart overruns its timeout are not held up 5 s more.
    writeFileSync(configFile, [
      `:root_dir: ${root}`,
      `:log_dir: ${join(dir, 'log')}`,
      `:pid_dir: ${join(dir, 'pid')}`,
      `:on_premises_config_file: ${onPremises}`,
      `:deploy_control_endpoint: ${service.url}`,
      `:s3_endpoint_override: ${moto.endpoint}`,
      ':wait_between_runs: 1',
      `:max_revisions: ${MAX_REVISIONS}`,
      ':startup_splay_seconds: 0',
      ':hook_kill_grace_seconds: 1',
      ':hook_output_grace_seconds: 1',
    ].join('\n'));

    const probeFile = join(dir, 'probe.json');
    const preload = new URL('../lib/memory-probe.mjs', import.meta.url).href;
    const { command, args } = agentCommand(ctx.repoRoot, ['run', '-c', configFile], { withUsage: false });
    const out = openSync(join(dir, 'agent-output.log'), 'a');
    agent = spawn(command, ['--import', preload, ...args], {
      env: {
        ...ctx.soakAgentEnv,
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dir,
        LANG: 'C.UTF-8',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
        AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
        AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
        AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
        CDA_BENCH_PROBE_FILE: probeFile,
        ...(process.env.CDA_BENCH_HEAP_SNAPSHOTS ? { CDA_BENCH_HEAP_SNAPSHOTS: process.env.CDA_BENCH_HEAP_SNAPSHOTS } : {}),
      },
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    const pid = agent.pid;
    // Rejects if the agent exits before the bench stops it (a crash fails the soak at once).
    const agentGone = new Promise((_, reject) => agent.once('exit', (code, signal) => {
      if (!stopping) reject(new Error(`the agent exited during the soak (${signal ?? `exit code ${code}`}): see ${join(dir, 'agent-output.log')}`));
    }));
    agentGone.catch(() => {}); // observed by the races below; never an unhandled rejection
    const started = performance.now();
    const samples = [];
    let probes = 0;
    const sample = async (deployments, phase) => {
      const figures = processFigures(pid);
      // The command worker's memory is the agent's too: while one runs, it counts in the total.
      let workerKb = 0;
      for (const worker of commandWorkers(pid)) {
        try {
          workerKb += processFigures(worker).rssKb;
        } catch {
          // exited meanwhile
        }
      }
      // A heap snapshot (CDA_BENCH_HEAP_SNAPSHOTS) can take a while on a busy machine.
      const heap = await probeHeap(pid, probeFile, ++probes, process.env.CDA_BENCH_HEAP_SNAPSHOTS ? 300_000 : 10_000);
      if (!heap) throw new Error('the memory probe in the agent did not answer');
      const disk = folderSize(root);
      const revisions = Math.max(0, ...GROUPS.map((group) => {
        try {
          return readdirSync(join(root, group)).length;
        } catch {
          return 0;
        }
      }));
      const deploymentsLog = folderSize(join(root, 'deployment-logs')).bytes;
      const row = {
        phase,
        deployments,
        seconds: (performance.now() - started) / 1000,
        rssMiB: figures.rssKb / 1024,
        workerRssMiB: workerKb / 1024,
        totalRssMiB: (figures.rssKb + workerKb) / 1024,
        anonMiB: figures.anonKb / 1024,
        fileMiB: figures.fileKb / 1024,
        heapMiB: heap.heapUsed / MiB,
        heapTotalMiB: heap.heapTotal / MiB,
        externalMiB: heap.external / MiB,
        threads: figures.threads,
        fds: figures.fds,
        handles: heap.activeHandles,
        spaces: heap.spaces,
        rootMiB: disk.bytes / MiB,
        revisionsMiB: (disk.bytes - deploymentsLog) / MiB,
        deploymentsLogMiB: deploymentsLog / MiB,
        rootEntries: disk.entries,
        revisions,
      };
      samples.push(row);
      return row;
    };

    await service.waitForRequests('PollHostCommand', 1, 30_000);
    // Idle: a few samples apart; the last is the idle figure.
    const idleSamples = 3;
    for (let i = 0; i < idleSamples; i++) {
      await delay((ctx.soakIdleSeconds * 1000) / idleSamples);
      await sample(0, 'idle');
    }
    const idle = samples.at(-1);
    ctx.progress();

    const { signJson, makeSigningIdentity } = double;
    let identity;
    try {
      identity = await makeSigningIdentity();
    } catch {
      identity = undefined; // no openssl: TEXT/JSON specs, which the daemon refuses; see below
    }
    if (!identity) throw new Error('the soak needs openssl to sign deployment specifications');
    const specFor = (n) => double.makeSpec({
      deploymentId: `d-SOAK${String(n).padStart(5, '0')}`,
      deploymentGroupId: GROUPS[n % GROUPS.length],
      deploymentGroupName: GROUPS[n % GROUPS.length],
      applicationName: 'soak',
      fileExistsBehavior: 'OVERWRITE',
      revision: { RevisionType: 'S3', S3Revision: { Bucket: BUCKET, Key: KEY, BundleType: 'tgz' } },
    });
    const signed = async (n) => {
      const spec = specFor(n);
      return { spec, envelope: { Format: 'PKCS7/JSON', Payload: await signJson(JSON.stringify(spec), { identity }) } };
    };
    const outcome = { succeeded: 0, failed: 0, unexpected: [] };
    const deploymentSeconds = [];
    let next = signed(1);
    const firstDeploymentAt = (performance.now() - started) / 1000;
    for (let n = 1; n <= ctx.soakDeployments; n++) {
      const { spec, envelope } = await next;
      if (n < ctx.soakDeployments) next = signed(n + 1); // signed while this one runs
      const begun = performance.now();
      const deployment = service.addDeployment({ hostIdentifier: HOST, spec, envelope });
      await Promise.race([service.waitForDeployment(deployment, 180_000), agentGone]);
      deploymentSeconds.push((performance.now() - begun) / 1000);
      const expectedFailure = soakFailure(n);
      const failedAt = deployment.commands.find((c) => c.status === 'Failed')?.commandName;
      if (deployment.status === 'Succeeded') outcome.succeeded++;
      else outcome.failed++;
      if ((deployment.status === 'Failed') !== (expectedFailure !== undefined) || (expectedFailure && failedAt !== expectedFailure)) {
        outcome.unexpected.push(`${deployment.deploymentId}: ${deployment.status}${failedAt ? ` at ${failedAt}` : ''}, expected ${expectedFailure ? `Failed at ${expectedFailure}` : 'Succeeded'}`);
      }
      service.forget(deployment);
      if (n % ctx.soakSampleEvery === 0 || n === ctx.soakDeployments) {
        await sample(n, 'run');
        ctx.progress();
      }
      if (n % ctx.soakRestEvery === 0 && n < ctx.soakDeployments) {
        // A pause long enough for the file workers to stop: what the agent keeps between bursts.
        await delay(ctx.soakRestSeconds * 1000);
        await sample(n, 'rested');
      }
    }
    const runSeconds = deploymentSeconds.reduce((a, b) => a + b, 0);
    const lastDeploymentAt = (performance.now() - started) / 1000;

    // Settle: the command worker exits after 10 idle seconds, its file workers after 5; the heap and the allocator give back what they will.
    const settleSamples = 6;
    for (let i = 0; i < settleSamples; i++) {
      await delay((ctx.soakSettleSeconds * 1000) / settleSamples);
      await sample(ctx.soakDeployments, 'settled');
    }
    const final = samples.at(-1);
    const hwmMiB = processFigures(pid).hwmKb / 1024;
    const exitedEarly = agent.exitCode !== null || agent.signalCode !== null;
    if (exitedEarly) throw new Error(`the agent exited during the soak: see ${join(dir, 'agent-output.log')}`);

    // The trend: a straight line through the run's samples after the first tenth (start-up, code loading).
    const run = samples.filter((s) => s.phase === 'run' && s.deployments > ctx.soakDeployments / 10);
    const growth = (key) => slope(run.map((s) => [s.deployments, s[key]])) * ctx.soakDeployments;
    const trend = {
      heapMiB: growth('heapMiB'),
      rssMiB: growth('rssMiB'),
      totalRssMiB: growth('totalRssMiB'),
      fds: growth('fds'),
      rootMiB: growth('revisionsMiB'),
    };
    const checks = [
      {
        what: `RSS after settling (the daemon and its command worker) ≤ idle + ${SOAK_LIMITS.rssAboveIdleMiB} MiB`,
        detail: `${final.totalRssMiB.toFixed(1)} MiB against idle ${idle.totalRssMiB.toFixed(1)} MiB${final.workerRssMiB > 0 ? ` (the worker ${final.workerRssMiB.toFixed(1)} MiB)` : ' (no worker running)'}`,
        ok: final.totalRssMiB <= idle.totalRssMiB + SOAK_LIMITS.rssAboveIdleMiB,
      },
      { what: 'descriptors back to idle', detail: `${final.fds} (idle ${idle.fds})`, ok: final.fds <= idle.fds },
      { what: 'threads back to idle', detail: `${final.threads} (idle ${idle.threads})`, ok: final.threads <= idle.threads },
      { what: `revisions per group ≤ max_revisions (${MAX_REVISIONS})`, detail: `at most ${Math.max(...samples.map((s) => s.revisions))}`, ok: Math.max(...samples.map((s) => s.revisions)) <= MAX_REVISIONS },
      { what: `heap (after a full collection) flat: fitted growth over the run ≤ ${SOAK_LIMITS.heapGrowthMiB} MiB`, detail: `${trend.heapMiB.toFixed(2)} MiB`, ok: trend.heapMiB <= SOAK_LIMITS.heapGrowthMiB },
      {
        what: `RSS flat (the daemon, and with its worker): fitted growth over the run ≤ ${SOAK_LIMITS.rssGrowthMiB} MiB`,
        detail: `${trend.rssMiB.toFixed(1)} MiB, ${trend.totalRssMiB.toFixed(1)} MiB`,
        ok: Math.max(trend.rssMiB, trend.totalRssMiB) <= SOAK_LIMITS.rssGrowthMiB,
      },
      { what: 'every deployment ended as its hooks say', detail: outcome.unexpected.length ? outcome.unexpected.slice(0, 3).join('; ') : `${outcome.succeeded} succeeded, ${outcome.failed} failed`, ok: outcome.unexpected.length === 0 },
    ];
    return {
      id: 'soak',
      kind: 'soak',
      deployments: ctx.soakDeployments,
      sampleEvery: ctx.soakSampleEvery,
      samples,
      idle,
      final,
      hwmMiB,
      trend,
      checks,
      outcome,
      runSeconds,
      firstDeploymentAt,
      lastDeploymentAt,
      restEvery: ctx.soakRestEvery,
      restSeconds: ctx.soakRestSeconds,
      deploymentSeconds: summarizeSeconds(deploymentSeconds),
      settleSeconds: ctx.soakSettleSeconds,
      idleSeconds: ctx.soakIdleSeconds,
      agentEnv: ctx.soakAgentEnv ?? {},
      maxRevisions: MAX_REVISIONS,
      groups: GROUPS.length,
    };
  } finally {
    stopping = true;
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      const gone = new Promise((resolve) => agent.once('exit', resolve));
      agent.kill('SIGTERM');
      const timer = setTimeout(() => agent.kill('SIGKILL'), 30_000);
      await gone;
      clearTimeout(timer);
    }
    admin?.destroy();
    await Promise.all([service.close(), moto.stop()]);
  }
}

function summarizeSeconds(values) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  return { median: sorted[Math.floor(sorted.length / 2)], p95: sorted[Math.floor(sorted.length * 0.95)], max: sorted.at(-1) };
}
