import type { DeploymentSpec } from './spec-types.js';
import { DEFAULT_LIFECYCLE_EVENTS, SCRIPTABLE_EVENTS } from '../appspec/events.js';

/**
 * Which lifecycle events exist, in which order they run, and which revision each one takes its
 * appspec and scripts from (docs/compatibility.md, "Which revision an event runs from"). Pure data and functions only.
 */

export const BUILTIN_EVENTS = ['DownloadBundle', 'Install'] as const;

/** The nine scriptable events of the daemon's hook mapping (each maps to itself). */
export const HOOK_EVENTS = SCRIPTABLE_EVENTS;

/** `DEFAULT_ORDERED_LIFECYCLE_EVENTS` of codedeploy-local. */
export const DEFAULT_ORDERED_EVENTS = DEFAULT_LIFECYCLE_EVENTS;

/** Events whose failure `--ignore-application-stop-failures` forgives (they run the previous revision's scripts). */
export const STOP_EVENTS = ['ApplicationStop', 'BeforeBlockTraffic', 'AfterBlockTraffic'] as const;

export type RevisionMode = 'New' | 'LastSuccessfulOrIgnore' | 'MostRecentOrIgnore';

export function isBuiltinEvent(event: string): boolean {
  return (BUILTIN_EVENTS as readonly string[]).includes(event);
}

export function isHookEvent(event: string): boolean {
  return (HOOK_EVENTS as readonly string[]).includes(event);
}

export function isBlueGreenRollback(spec: Pick<DeploymentSpec, 'deploymentCreator' | 'deploymentType'>): boolean {
  return spec.deploymentCreator === 'codeDeployRollback' && spec.deploymentType === 'BLUE_GREEN';
}

/** The block-traffic trio looks back; a blue/green rollback swaps which side looks back. */
export function revisionModeFor(event: string, spec: Pick<DeploymentSpec, 'deploymentCreator' | 'deploymentType'>): RevisionMode {
  const rollback = isBlueGreenRollback(spec);
  switch (event) {
    case 'BeforeBlockTraffic':
    case 'AfterBlockTraffic':
      return rollback ? 'MostRecentOrIgnore' : 'LastSuccessfulOrIgnore';
    case 'ApplicationStop':
      return 'LastSuccessfulOrIgnore';
    case 'BeforeAllowTraffic':
    case 'AfterAllowTraffic':
      return rollback ? 'LastSuccessfulOrIgnore' : 'New';
    default:
      return 'New';
  }
}

/** The block-traffic events the service sends before the rest when a load balancer takes part. */
const BLOCK_TRAFFIC_EVENTS = ['BeforeBlockTraffic', 'AfterBlockTraffic'];

/**
 * The last lifecycle event a deployment runs on this host, judged from the first one it ran here (the
 * service does not say). In place: ValidateService, or AfterAllowTraffic when the deployment began with
 * the block-traffic events (a load balancer takes part). Blue/green: a host that began by blocking
 * traffic is leaving service and ends with AfterBlockTraffic; any other host ends with AfterAllowTraffic.
 * A failed event ends a deployment too; the caller knows that.
 */
export function lastEventOnHost(spec: Pick<DeploymentSpec, 'deploymentType'>, firstEvent: string): string {
  const beganBlocking = BLOCK_TRAFFIC_EVENTS.includes(firstEvent);
  if (spec.deploymentType === 'BLUE_GREEN') return beganBlocking ? 'AfterBlockTraffic' : 'AfterAllowTraffic';
  return beganBlocking ? 'AfterAllowTraffic' : 'ValidateService';
}

/** Events that run from the new revision in a local run, so they may not precede DownloadBundle/Install. */
const NEW_REVISION_EVENTS = ['AfterInstall', 'ApplicationStart', 'BeforeAllowTraffic', 'AfterAllowTraffic', 'ValidateService'];

/**
 * codedeploy-local's `--events` rules: returns the problem message, or undefined when the order is fine.
 */
export function checkLocalEventOrder(events: string[], rawArgument: string): string | undefined {
  const download = events.indexOf('DownloadBundle');
  if (download >= 0) {
    const before = events.slice(0, download);
    if (before.some((e) => e === 'Install' || NEW_REVISION_EVENTS.includes(e))) {
      return `The only events that can be specified before DownloadBundle are BeforeBlockTraffic,AfterBlockTraffic,ApplicationStop. Please fix the order of your specified events: ${rawArgument}`;
    }
  }
  const install = events.indexOf('Install');
  if (install >= 0) {
    const before = events.slice(0, install);
    if (before.some((e) => NEW_REVISION_EVENTS.includes(e))) {
      return `The only events that can be specified before Install are BeforeBlockTraffic,AfterBlockTraffic,ApplicationStop,DownloadBundle,BeforeInstall. Please fix the order of your specified events: ${rawArgument}`;
    }
  }
  return undefined;
}

/**
 * The events a local run executes (as AWS's codedeploy-local): the given list (or the default order), with DownloadBundle and
 * Install prepended when missing and swapped if Install would precede DownloadBundle.
 */
export function localEventsToRun(given: string[] | undefined): string[] {
  const events = given && given.length > 0 ? [...given] : [...DEFAULT_ORDERED_EVENTS];
  for (const required of ['Install', 'DownloadBundle']) {
    if (!events.includes(required)) events.unshift(required);
  }
  const download = events.indexOf('DownloadBundle');
  const install = events.indexOf('Install');
  if (install < download) {
    events[install] = 'DownloadBundle';
    events[download] = 'Install';
  }
  return events;
}

/** AllPossibleLifecycleEvents of a local run: the default order first, then any custom events given. */
export function allPossibleLocalEvents(given: string[] | undefined): string[] {
  const all: string[] = [...DEFAULT_ORDERED_EVENTS];
  for (const event of given ?? []) if (!all.includes(event)) all.push(event);
  return all;
}
