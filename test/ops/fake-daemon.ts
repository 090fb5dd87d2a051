import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeStatusSnapshot } from '../../src/agent/status-file.js';
import { pidFilePath } from '../../src/agent/pid-file.js';
import type { StatusSnapshot } from '../../src/agent/status-snapshot.js';
import { makeTempDir } from '../helpers/tmp.js';

/**
 * A stand-in for a running agent: a real long-running process with `codedeploy-agent` in its argv (what the
 * pid check looks for), its pid in a pid file and, if asked, a status snapshot.
 */
export interface FakeAgent {
  dir: string;
  pidDir: string;
  configFile: string;
  child?: ChildProcess;
  pid?: number;
  start(options?: { ignoreTerm?: boolean }): Promise<number>;
  writeSnapshot(snapshot: StatusSnapshot): void;
  /** Ends only the process this helper started, by its pid. */
  cleanup(): Promise<void>;
}

export function makeFakeAgent(): FakeAgent {
  const tmp = makeTempDir('cda-fake-agent-');
  const pidDir = join(tmp.dir, 'state', '.pid');
  const configFile = join(tmp.dir, 'codedeployagent.yml');
  writeFileSync(configFile, [
    '---',
    `:pid_dir: '${pidDir}/'`,
    `:log_dir: '${join(tmp.dir, 'log')}/'`,
    `:root_dir: '${join(tmp.dir, 'deployment-root')}'`,
    ':kill_agent_max_wait_time_seconds: 30',
  ].join('\n'));
  const fake: FakeAgent = {
    dir: tmp.dir,
    pidDir,
    configFile,
    async start(options = {}) {
      const body = options.ignoreTerm
        ? "process.on('SIGTERM',()=>{});setInterval(()=>{},1e3);process.stdout.write('ready\\n')"
        : "setInterval(()=>{},1e3);process.stdout.write('ready\\n')";
      const child = spawn(process.execPath, ['-e', body, 'codedeploy-agent', 'run'], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        child.once('error', reject);
        child.stdout!.once('data', () => resolve());
      });
      fake.child = child;
      fake.pid = child.pid!;
      mkdirSync(pidDir, { recursive: true });
      writeFileSync(pidFilePath(pidDir), `${child.pid}\n`);
      return child.pid!;
    },
    writeSnapshot(snapshot) {
      writeStatusSnapshot(pidDir, snapshot);
    },
    async cleanup() {
      const child = fake.child;
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        try { process.kill(child.pid!, 'SIGKILL'); } catch { /* already gone */ }
        await exited;
      }
      tmp.cleanup();
    },
  };
  return fake;
}

export function snapshotFor(pid: number, overrides: Partial<StatusSnapshot> = {}): StatusSnapshot {
  const now = Date.now();
  const iso = (secondsAgo: number) => new Date(now - secondsAgo * 1000).toISOString();
  return {
    pid,
    version: '0.1.0',
    startedAt: iso(3725),
    updatedAt: iso(1),
    hostIdentifier: 'arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0',
    region: 'us-east-1',
    endpoint: 'https://codedeploy-commands.us-east-1.amazonaws.com',
    lastPollAt: iso(2),
    lastSuccessfulPollAt: iso(2),
    lastError: { at: iso(600), message: 'PollHostCommand: ThrottlingException: Rate exceeded' },
    inFlight: [{
      hostCommandIdentifier: 'WyJjb20uYW1hem9uLmFwb2xsby5kZXBsb3ljb250cm9sLmRvbWFpbi5Ib3N0Q29tbWFuZElkZW50aWZpZXIi',
      deploymentId: 'd-ABCDEFGHI',
      deploymentGroupId: 'dg-1234',
      deploymentGroupName: 'web-fleet',
      applicationName: 'web',
      event: 'AfterInstall',
      script: 'scripts/migrate.sh',
      startedAt: iso(65),
    }],
    recent: [{
      deploymentId: 'd-PREVIOUS1',
      deploymentGroupId: 'dg-1234',
      event: 'ValidateService',
      status: 'Failed',
      errorCode: 4,
      message: 'Script at specified location: scripts/check.sh run as user root failed with exit code 1',
      finishedAt: iso(3000),
    }],
    downloads: [{ deploymentId: 'd-ABCDEFGHI', bytes: 50 * 1024 * 1024, total: 200 * 1024 * 1024, bytesPerSecond: 10 * 1024 * 1024, etaSeconds: 15 }],
    state: 'polling',
    ...overrides,
  };
}
