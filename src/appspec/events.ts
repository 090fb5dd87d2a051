/**
 * Lifecycle event names as an appspec sees them (the daemon's hook mapping and codedeploy-local's default order).
 */

/** The nine events a `hooks` section may give scripts to (the daemon's hook mapping). */
export const SCRIPTABLE_EVENTS = [
  'BeforeBlockTraffic',
  'AfterBlockTraffic',
  'ApplicationStop',
  'BeforeInstall',
  'AfterInstall',
  'ApplicationStart',
  'BeforeAllowTraffic',
  'AfterAllowTraffic',
  'ValidateService',
] as const;

/** codedeploy-local's `DEFAULT_ORDERED_LIFECYCLE_EVENTS`: the scriptable events plus the two the agent runs itself. */
export const DEFAULT_LIFECYCLE_EVENTS = [
  'BeforeBlockTraffic',
  'AfterBlockTraffic',
  'ApplicationStop',
  'DownloadBundle',
  'BeforeInstall',
  'Install',
  'AfterInstall',
  'ApplicationStart',
  'ValidateService',
  'BeforeAllowTraffic',
  'AfterAllowTraffic',
] as const;

/**
 * Steps the agent or the service performs itself; scripts listed under them would never run.
 * The value says which scriptable events to use instead.
 */
export const RESERVED_EVENTS: Readonly<Record<string, string>> = {
  Start: 'ApplicationStop or BeforeInstall',
  DownloadBundle: 'ApplicationStop or BeforeInstall',
  Install: 'BeforeInstall or AfterInstall',
  BlockTraffic: 'BeforeBlockTraffic or AfterBlockTraffic',
  AllowTraffic: 'BeforeAllowTraffic or AfterAllowTraffic',
  End: 'ValidateService or AfterAllowTraffic',
};

export function isScriptableEvent(name: string): boolean {
  return (SCRIPTABLE_EVENTS as readonly string[]).includes(name);
}
