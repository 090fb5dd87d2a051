import { describe, expect, it } from 'vitest';
import {
  allPossibleLocalEvents,
  checkLocalEventOrder,
  lastEventOnHost,
  localEventsToRun,
  revisionModeFor,
} from '../../src/deployment/lifecycle.js';

const normal = { deploymentCreator: 'user', deploymentType: 'IN_PLACE' };
const rollback = { deploymentCreator: 'codeDeployRollback', deploymentType: 'BLUE_GREEN' };

describe('which revision an event runs from', () => {
  it.each([
    ['BeforeBlockTraffic', 'LastSuccessfulOrIgnore', 'MostRecentOrIgnore'],
    ['AfterBlockTraffic', 'LastSuccessfulOrIgnore', 'MostRecentOrIgnore'],
    ['ApplicationStop', 'LastSuccessfulOrIgnore', 'LastSuccessfulOrIgnore'],
    ['BeforeInstall', 'New', 'New'],
    ['AfterInstall', 'New', 'New'],
    ['ApplicationStart', 'New', 'New'],
    ['ValidateService', 'New', 'New'],
    ['BeforeAllowTraffic', 'New', 'LastSuccessfulOrIgnore'],
    ['AfterAllowTraffic', 'New', 'LastSuccessfulOrIgnore'],
    ['MyCustomEvent', 'New', 'New'],
  ])('%s: %s, on blue/green rollback %s', (event, mode, rollbackMode) => {
    expect(revisionModeFor(event, normal)).toBe(mode);
    expect(revisionModeFor(event, rollback)).toBe(rollbackMode);
  });

  it('an in-place rollback is not a blue/green rollback', () => {
    expect(revisionModeFor('BeforeBlockTraffic', { deploymentCreator: 'codeDeployRollback', deploymentType: 'IN_PLACE' })).toBe('LastSuccessfulOrIgnore');
  });
});

describe('codedeploy-local --events', () => {
  it('runs the default order when no events are given', () => {
    expect(localEventsToRun(undefined)).toEqual([
      'BeforeBlockTraffic', 'AfterBlockTraffic', 'ApplicationStop', 'DownloadBundle', 'BeforeInstall', 'Install',
      'AfterInstall', 'ApplicationStart', 'ValidateService', 'BeforeAllowTraffic', 'AfterAllowTraffic',
    ]);
  });

  it('prepends DownloadBundle and Install when missing', () => {
    expect(localEventsToRun(['ApplicationStart'])).toEqual(['DownloadBundle', 'Install', 'ApplicationStart']);
    expect(localEventsToRun(['ApplicationStop', 'DownloadBundle', 'AfterInstall'])).toEqual(['DownloadBundle', 'ApplicationStop', 'Install', 'AfterInstall']);
  });

  it('swaps Install and DownloadBundle when Install would come first', () => {
    expect(localEventsToRun(['Install', 'DownloadBundle'])).toEqual(['DownloadBundle', 'Install']);
  });

  it('refuses new-revision events before DownloadBundle or Install', () => {
    expect(checkLocalEventOrder(['AfterInstall', 'DownloadBundle'], 'AfterInstall,DownloadBundle')).toBe(
      'The only events that can be specified before DownloadBundle are BeforeBlockTraffic,AfterBlockTraffic,ApplicationStop. Please fix the order of your specified events: AfterInstall,DownloadBundle',
    );
    expect(checkLocalEventOrder(['Install', 'DownloadBundle'], 'Install,DownloadBundle')).toMatch(/before DownloadBundle/);
    expect(checkLocalEventOrder(['ApplicationStart', 'Install'], 'ApplicationStart,Install')).toBe(
      'The only events that can be specified before Install are BeforeBlockTraffic,AfterBlockTraffic,ApplicationStop,DownloadBundle,BeforeInstall. Please fix the order of your specified events: ApplicationStart,Install',
    );
    expect(checkLocalEventOrder(['ApplicationStop', 'DownloadBundle', 'BeforeInstall', 'Install', 'AfterInstall'], 'x')).toBeUndefined();
    expect(checkLocalEventOrder(['MyEvent', 'Install'], 'x')).toBeUndefined();
  });

  it('adds custom events after the default ones', () => {
    expect(allPossibleLocalEvents(['MyEvent', 'ApplicationStart']).slice(-2)).toEqual(['AfterAllowTraffic', 'MyEvent']);
  });
});

describe('lastEventOnHost (when operator post-deployment hooks run in the daemon)', () => {
  it('in place: ValidateService, or AfterAllowTraffic when a load balancer takes part (the deployment began by blocking traffic)', () => {
    expect(lastEventOnHost({ deploymentType: 'IN_PLACE' }, 'ApplicationStop')).toBe('ValidateService');
    expect(lastEventOnHost({ deploymentType: 'IN_PLACE' }, 'BeforeBlockTraffic')).toBe('AfterAllowTraffic');
  });

  it('blue/green: a host leaving service ends at AfterBlockTraffic, one entering it at AfterAllowTraffic', () => {
    expect(lastEventOnHost({ deploymentType: 'BLUE_GREEN' }, 'BeforeBlockTraffic')).toBe('AfterBlockTraffic');
    expect(lastEventOnHost({ deploymentType: 'BLUE_GREEN' }, 'ApplicationStop')).toBe('AfterAllowTraffic');
    // A rollback puts the original hosts back: they run only the allow-traffic events.
    expect(lastEventOnHost({ deploymentType: 'BLUE_GREEN' }, 'BeforeAllowTraffic')).toBe('AfterAllowTraffic');
  });
});
