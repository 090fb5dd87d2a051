/**
 * One Install at a time in this process. The poller runs several commands at once, and two groups (or
 * two deployments of one group) may install into the same folders and share the group's cleanup file;
 * AWS's agent let them interleave. Installs are short, so waiting costs little.
 */
let last: Promise<unknown> = Promise.resolve();

export function withInstallLock<T>(task: () => Promise<T>): Promise<T> {
  const run = last.then(task, task);
  last = run.catch(() => undefined);
  return run;
}
