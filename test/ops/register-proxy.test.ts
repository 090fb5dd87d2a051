/**
 * `register` and `deregister` reach CodeDeploy through the proxy every other request of the agent uses:
 * `:proxy_uri:` of the agent configuration, else HTTPS_PROXY / HTTP_PROXY (minus NO_PROXY hosts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { operatorEnv, startControlPlaneDouble, TEST_CREDENTIALS, type ControlPlaneDouble } from '../doubles/codedeploy-control.js';
import { runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { startConnectProxy, type ConnectProxy } from '../revision/connect-proxy.js';

const USER_ARN = 'arn:aws:iam::111122223333:user/CodeDeployUser-OnPrem';

let double: ControlPlaneDouble;
let proxy: ConnectProxy;
let tmp: { dir: string; cleanup: () => void };

beforeEach(async () => {
  double = await startControlPlaneDouble();
  proxy = await startConnectProxy();
  tmp = makeTempDir('cda-register-proxy-');
});
afterEach(async () => {
  await proxy.stop();
  await double.close();
  tmp.cleanup();
});

function cli(args: string[], env: Record<string, string> = {}) {
  return runCli([...args, '--region', double.region, '--endpoint', double.endpoint, '--config-file-out', join(tmp.dir, 'onprem.yml')], {
    env: operatorEnv(tmp.dir, { HTTP_PROXY: '', HTTPS_PROXY: '', http_proxy: '', https_proxy: '', NO_PROXY: '', ...env }),
    extendEnv: true,
  });
}

describe('register and deregister through a proxy', () => {
  it('register goes through :proxy_uri: of the agent configuration', async () => {
    const config = join(tmp.dir, 'agent.yml');
    writeFileSync(config, `:proxy_uri: ${proxy.uri}\n`);
    const result = await cli(['register', '--instance-name', 'web-1', '--iam-user-arn', USER_ARN, '--access-key-id', 'AKIAINSTANCEKEY00001',
      '--secret-access-key', 'instance/secret', '-c', config]);
    expect(result.exitCode, result.all).toBe(0);
    expect(double.requests.map((r) => r.operation)).toEqual(['RegisterOnPremisesInstance']);
    const host = new URL(double.endpoint).host;
    expect(proxy.tunnels.map((t) => t.target)).toContain(host);
  });

  it('deregister goes through HTTP_PROXY when no :proxy_uri: is set, and not when NO_PROXY names the host', async () => {
    const registered = await cli(['register', '--instance-name', 'web-2', '--iam-user-arn', USER_ARN, '--access-key-id', 'AKIAINSTANCEKEY00001', '--secret-access-key', 'instance/secret']);
    expect(registered.exitCode, registered.all).toBe(0);
    expect(proxy.tunnels).toEqual([]);
    const deregistered = await cli(['deregister', '--instance-name', 'web-2', '--keep-config'], { HTTP_PROXY: proxy.uri, HTTPS_PROXY: proxy.uri });
    expect(deregistered.exitCode, deregistered.all).toBe(0);
    expect(proxy.tunnels.length).toBeGreaterThan(0);
    const before = proxy.tunnels.length;
    const bypassed = await cli(['deregister', '--instance-name', 'web-2', '--keep-config'], { HTTP_PROXY: proxy.uri, NO_PROXY: '127.0.0.1' });
    expect(bypassed.exitCode, bypassed.all).toBe(0);
    expect(proxy.tunnels.length).toBe(before);
  });
});
