/**
 * Secrets stay secret: a hook that prints the agent's own secrets (having read them some other way than
 * its environment, which never has them) finds them redacted in scripts.log, the deployments log, the
 * diagnostics tail and on the terminal; and a local user cannot read another application's hook output
 * (scripts.log, the deployments log, codedeploy-local.log are 0640 in 0750 folders).
 */
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSpec, TEST_CREDENTIALS } from '../doubles/commands-service.js';
import { localRevision, payloadOf, waitForDeployment } from '../agent/harness.js';
import { newWorld, service, useDaemonWorld } from '../helpers/daemon-world.js';
import { runCli } from '../helpers/cli.js';
import { hostileUserMissing, useHostileUser } from '../helpers/hostile-user.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeTempDir } from '../helpers/tmp.js';

const tmp = makeTempDir('cda-attack-secrets-');
afterAll(tmp.cleanup);

const AGENT_SECRET = 'agentSecretAccessKey/0123456789+abcdefghij';
const SESSION_TOKEN = 'FwoGZXIvYXdzEJr//////////wEaDSessionToken0123456789';
const GITHUB_TOKEN = 'ghp_notARealToken0123456789abcdefABCDEF';
const PROXY_PASSWORD = 'pr0xy-pa55word';
const SECRETS = [AGENT_SECRET, SESSION_TOKEN, GITHUB_TOKEN, PROXY_PASSWORD];

/** A file the hook reads the secrets from: as a hook might read the on-premises file or a child's environment. */
const leak = join(tmp.dir, 'leak.txt');
writeFileSync(leak, `key=${AGENT_SECRET}\ntoken ${SESSION_TOKEN}\ngh:${GITHUB_TOKEN}\nproxy ${PROXY_PASSWORD} end\n`);

function leakingBundle(name: string, exitCode: number): string {
  const dir = join(tmp.dir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'leak.sh'), `#!/bin/sh\necho "env says [$AWS_SECRET_ACCESS_KEY][$AWS_SESSION_TOKEN]"\ncat '${leak}'\ncat '${leak}' >&2\nexit ${exitCode}\n`);
  chmodSync(join(dir, 'leak.sh'), 0o755);
  writeFileSync(join(dir, 'appspec.yml'), 'version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: leak.sh\n');
  return dir;
}

function expectNoSecret(where: string, text: string): void {
  for (const secret of SECRETS) expect(text, `${where} holds ${secret}`).not.toContain(secret);
}

describe('hook output never shows the agent\'s secrets', () => {
  useDaemonWorld('attack-secrets-daemon');
  const root = join(tmp.dir, 'root');
  const logDir = join(tmp.dir, 'log');
  const configFile = join(tmp.dir, 'agent.yml');
  beforeAll(() => {
    // A proxy nothing goes through (the bundle is local); its password is a secret all the same.
    writeAgentConfig(configFile, { root_dir: root, log_dir: logDir, proxy_uri: `http://agent:${PROXY_PASSWORD}@127.0.0.1:9` });
  });

  const deploy = (bundle: string, group: string) =>
    runCli(['deploy', '-c', configFile, '-l', bundle, '-g', group, '--verbose'], {
      env: { AWS_SECRET_ACCESS_KEY: AGENT_SECRET, AWS_SESSION_TOKEN: SESSION_TOKEN, CODEDEPLOY_GITHUB_TOKEN: GITHUB_TOKEN },
    });

  it('in scripts.log, the deployments log, codedeploy-local.log and on the terminal (--verbose)', async () => {
    const result = await deploy(leakingBundle('leak-ok', 0), 'leak-ok');
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toContain('[stdout]key=[REDACTED]');
    expect(result.stdout).toContain('[stderr]proxy [REDACTED] end');
    // The hook's environment never had them in the first place.
    expect(result.stdout).toContain('[stdout]env says [][]');
    expectNoSecret('the terminal', result.all);
    const [deployment] = readdirSync(join(root, 'leak-ok'));
    const scriptsLog = readFileSync(join(root, 'leak-ok', deployment, 'logs', 'scripts.log'), 'utf8');
    expect(scriptsLog).toContain('[stdout]gh:[REDACTED]');
    expectNoSecret('scripts.log', scriptsLog);
    expectNoSecret('the deployments log', readFileSync(join(root, 'deployment-logs', 'codedeploy-agent-deployments.log'), 'utf8'));
    expectNoSecret('codedeploy-local.log', readFileSync(join(logDir, 'codedeploy-local.log'), 'utf8'));
  });

  it('in the failure\'s output tail on the terminal', async () => {
    const result = await runCli(['deploy', '-c', configFile, '-l', leakingBundle('leak-fail', 3), '-g', 'leak-fail'], {
      env: { AWS_SECRET_ACCESS_KEY: AGENT_SECRET, AWS_SESSION_TOKEN: SESSION_TOKEN, CODEDEPLOY_GITHUB_TOKEN: GITHUB_TOKEN },
    });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('The last output of leak.sh');
    expect(result.stderr).toContain('[stderr]token [REDACTED]');
    expectNoSecret('the terminal', result.all);
  });

  it('in the diagnostics the daemon sends and its scripts.log', async () => {
    const world = newWorld({}, { iamUser: { arn: 'arn:aws:iam::123456789012:user/secrets-test' } });
    // The hook prints the agent's own on-premises secret key, read from the on-premises file.
    const dir = join(world.dir, 'bundle');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'leak.sh'), `#!/bin/sh\ncat '${world.onPremisesFile}'\nexit 1\n`);
    chmodSync(join(dir, 'leak.sh'), 0o755);
    writeFileSync(join(dir, 'appspec.yml'), 'version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: leak.sh\n');
    const agent = world.start();
    const deployment = service.addDeployment({
      hostIdentifier: world.hostIdentifier,
      commands: ['DownloadBundle', 'BeforeInstall'],
      spec: makeSpec({ deploymentGroupId: 'leaky', revision: localRevision(dir) }),
    });
    await waitForDeployment(service, deployment, agent);
    expect(deployment.status).toBe('Failed');
    const log = payloadOf(deployment.commands[1].completions[0]).log;
    expect(log).toContain('aws_secret_access_key: [REDACTED]');
    expect(log).not.toContain(TEST_CREDENTIALS.secretAccessKey);
    const scriptsLog = readFileSync(join(world.root, 'leaky', deployment.deploymentId, 'logs', 'scripts.log'), 'utf8');
    expect(scriptsLog).toContain('[stdout]aws_secret_access_key: [REDACTED]');
    expect(scriptsLog).not.toContain(TEST_CREDENTIALS.secretAccessKey);
    expect(agent.log).not.toContain(TEST_CREDENTIALS.secretAccessKey);
    expect((await agent.stop()).exitCode).toBe(0);
  });
});

describe('modes of hook output', () => {
  const root = join(tmp.dir, 'modes-root');
  const logDir = join(tmp.dir, 'modes-log');
  const configFile = join(tmp.dir, 'modes.yml');
  let scriptsLog: string;

  beforeAll(async () => {
    writeAgentConfig(configFile, { root_dir: root, log_dir: logDir });
    const result = await runCli(['deploy', '-c', configFile, '-l', leakingBundle('modes', 0), '-g', 'modes']);
    expect(result.exitCode, result.all).toBe(0);
    const [deployment] = readdirSync(join(root, 'modes'));
    scriptsLog = join(root, 'modes', deployment, 'logs', 'scripts.log');
  });

  it('are 0640 files in 0750 folders, whatever the umask', () => {
    const mode = (path: string) => statSync(path).mode & 0o7777;
    expect(mode(scriptsLog)).toBe(0o640);
    expect(mode(join(scriptsLog, '..'))).toBe(0o750);
    expect(mode(join(root, 'deployment-logs', 'codedeploy-agent-deployments.log'))).toBe(0o640);
    expect(mode(join(root, 'deployment-logs'))).toBe(0o750);
    expect(mode(join(logDir, 'codedeploy-local.log'))).toBe(0o640);
    expect(mode(logDir)).toBe(0o750);
    // The folders above a deployment's logs stay reachable: runas users run scripts from there.
    expect(mode(join(scriptsLog, '..', '..')) & 0o005).toBe(0o005);
  });

  it('tightens a deployments log an earlier agent left readable by everyone', async () => {
    chmodSync(join(root, 'deployment-logs', 'codedeploy-agent-deployments.log'), 0o644);
    expect((await runCli(['deploy', '-c', configFile, '-l', leakingBundle('modes', 0), '-g', 'modes'])).exitCode).toBe(0);
    expect(statSync(join(root, 'deployment-logs', 'codedeploy-agent-deployments.log')).mode & 0o7777).toBe(0o640);
  });

  describe.skipIf(hostileUserMissing())('against a local user', () => {
    const eve = useHostileUser('read', tmp.dir);

    it('cannot read another deployment\'s hook output', async () => {
      for (const path of [scriptsLog, join(root, 'deployment-logs', 'codedeploy-agent-deployments.log'), join(logDir, 'codedeploy-local.log')]) {
        const attempt = await eve.sh(`cat '${path}'`);
        expect(attempt.exitCode, `${path}: ${attempt.stdout}`).not.toBe(0);
        expect(attempt.stderr).toContain('Permission denied');
        expect(attempt.stdout).toBe('');
      }
    });
  });
});
