import { describe, expect, it } from 'vitest';
import { checkLifecycleEvents } from '../../src/appspec/custom-events.js';
import { DEFAULT_LIFECYCLE_EVENTS } from '../../src/appspec/events.js';
import type { AppSpec, HookScript } from '../../src/appspec/types.js';
import { AppSpecError } from '../../src/report/errors.js';

const script: HookScript = { location: 'a.sh', timeout: 3600, sudo: false };

function specWith(events: string[], path = '/bundle/appspec.yml'): AppSpec {
  return { version: '0.0', os: 'linux', files: [], permissions: [], path, hooks: Object.fromEntries(events.map((event) => [event, [script]])) };
}

function messageOf(run: () => void): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(AppSpecError);
    const problem = (error as AppSpecError).problems[0];
    expect(problem.hint).toBeTruthy();
    return problem.message;
  }
  throw new Error('expected an AppSpecError');
}

describe('checkLifecycleEvents (a local run\'s Install)', () => {
  const defaults = [...DEFAULT_LIFECYCLE_EVENTS];

  it('passes for default events and for custom events the appspec has scripts for', () => {
    expect(() => checkLifecycleEvents(specWith(['AfterInstall', 'ApplicationStart']), defaults)).not.toThrow();
    expect(() => checkLifecycleEvents(specWith(['AfterInstall', 'WarmCaches']), [...defaults, 'WarmCaches'])).not.toThrow();
  });

  it('refuses appspec events the run does not know, as a Ruby array', () => {
    expect(messageOf(() => checkLifecycleEvents(specWith(['UnknownHook', 'Other', 'AfterInstall']), defaults))).toBe(
      'appspec.yml file contains unknown lifecycle events: ["UnknownHook", "Other"]',
    );
  });

  it('names the appspec file by its own name', () => {
    expect(messageOf(() => checkLifecycleEvents(specWith(['UnknownHook'], '/b/custom.yaml'), defaults))).toBe(
      'custom.yaml file contains unknown lifecycle events: ["UnknownHook"]',
    );
  });

  it('counts the hook mapping events too', () => {
    expect(messageOf(() => checkLifecycleEvents(specWith([]), defaults, ['ApplicationStop', 'Mapped']))).toBe(
      'appspec.yml file contains unknown lifecycle events: ["Mapped"]',
    );
  });

  it('refuses custom events the appspec has no scripts for, comma-joined', () => {
    const events = [...defaults, 'ExampleLifecycleEvent', 'SecondLifecycleEvent', 'CustomHookNotInAppspec', 'AnotherMissing'];
    expect(messageOf(() => checkLifecycleEvents(specWith(['ExampleLifecycleEvent', 'SecondLifecycleEvent']), events))).toBe(
      "You specified a lifecycle event which is not a default one and doesn't exist in your appspec.yml file: CustomHookNotInAppspec,AnotherMissing",
    );
  });
});
