import { describe, expect, it } from 'vitest';
import {
  checkFipsRegion,
  checkPartitionRegion,
  commandsModel,
  domainForRegion,
  FIPS_REGION_MESSAGE,
  resolveCommandsEndpoint,
  serviceLabel,
} from '../../src/service/endpoint.js';

const base = { enableAuthPolicy: false, useFipsMode: false };

describe('commands endpoint', () => {
  it.each([
    [{ ...base, region: 'us-west-2' }, 'https://codedeploy-commands.us-west-2.amazonaws.com'],
    [{ ...base, useFipsMode: true, region: 'us-west-2' }, 'https://codedeploy-commands-fips.us-west-2.amazonaws.com'],
    [{ ...base, enableAuthPolicy: true, region: 'us-west-2' }, 'https://codedeploy-commands-secure.us-west-2.amazonaws.com'],
    [{ enableAuthPolicy: true, useFipsMode: true, region: 'us-west-2' }, 'https://codedeploy-commands-secure-fips.us-west-2.amazonaws.com'],
    [{ ...base, region: 'cn-north-1' }, 'https://codedeploy-commands.cn-north-1.amazonaws.com.cn'],
    [{ ...base, region: 'cn-northwest-1' }, 'https://codedeploy-commands.cn-northwest-1.amazonaws.com.cn'],
    [{ ...base, region: 'eusc-de-east-1' }, 'https://codedeploy-commands.eusc-de-east-1.amazonaws.eu'],
    [{ ...base, region: 'eu-west-1', imdsDomain: 'amazonaws.com' }, 'https://codedeploy-commands.eu-west-1.amazonaws.com'],
    [{ ...base, region: 'cn-north-1', imdsDomain: 'amazonaws.com.cn', onPremises: true }, 'https://codedeploy-commands.cn-north-1.amazonaws.com.cn'],
  ])('%j → %s', (inputs, url) => {
    expect(resolveCommandsEndpoint(inputs).url).toBe(url);
  });

  it('uses deploy_control_endpoint verbatim', () => {
    const resolved = resolveCommandsEndpoint({ ...base, region: 'us-east-1', deployControlEndpoint: 'https://tempuri' });
    expect(resolved.url).toBe('https://tempuri');
    expect(resolved.region).toBe('us-east-1');
  });

  it('labels and models', () => {
    expect(serviceLabel(false, false)).toBe('codedeploy-commands');
    expect(serviceLabel(true, true)).toBe('codedeploy-commands-secure-fips');
    expect(commandsModel(false)).toMatchObject({ signingName: 'codedeploy-commands', targetPrefix: 'CodeDeployCommandService_v20141006' });
    expect(commandsModel(true)).toMatchObject({ signingName: 'codedeploy-commands-secure', targetPrefix: 'CodeDeployCommandService' });
  });

  it('derives the domain from the region when IMDS cannot tell', () => {
    expect(domainForRegion('us-east-1')).toBe('amazonaws.com');
    expect(domainForRegion('cn-north-1')).toBe('amazonaws.com.cn');
    expect(domainForRegion('eusc-de-east-1')).toBe('amazonaws.eu');
    expect(domainForRegion('eu-central-1')).toBe('amazonaws.com');
  });

  it('checks the partition pattern for on-premises hosts that can reach IMDS', () => {
    expect(() => resolveCommandsEndpoint({ ...base, region: 'us-east-1', imdsDomain: 'example.org', onPremises: true })).toThrow('Unknown domain: example.org');
    expect(() => resolveCommandsEndpoint({ ...base, region: 'us-east-1', imdsDomain: 'amazonaws.com.cn', onPremises: true })).toThrow('Invalid region: us-east-1');
    expect(() => checkPartitionRegion('amazonaws.com', 'a-region-name-that-is-too-long')).toThrow('Invalid region: a-region-name-that-is-too-long');
    expect(() => checkPartitionRegion('amazonaws.eu', 'eusc-de-east-1')).not.toThrow();
    // Not on-premises: the domain is taken as IMDS says.
    expect(resolveCommandsEndpoint({ ...base, region: 'us-east-1', imdsDomain: 'example.org' }).url).toBe('https://codedeploy-commands.us-east-1.example.org');
  });

  it('allows FIPS only in the US regions', () => {
    for (const region of ['us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'us-gov-west-1', 'us-gov-east-1']) {
      expect(() => checkFipsRegion(true, region)).not.toThrow();
    }
    expect(() => checkFipsRegion(true, 'eu-west-1')).toThrow(FIPS_REGION_MESSAGE);
    expect(() => checkFipsRegion(false, 'eu-west-1')).not.toThrow();
    expect(() => resolveCommandsEndpoint({ ...base, useFipsMode: true, region: 'ap-south-1' })).toThrow(FIPS_REGION_MESSAGE);
  });
});
