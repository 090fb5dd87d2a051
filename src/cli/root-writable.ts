import { accessSync, constants, existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { LocalDeployError } from '../deployment/local-spec.js';

/**
 * A user without root cannot write the default deployment root: say so before anything runs (not as
 * a failure of the first event with a scripts.log that was never written), and how to deploy elsewhere.
 */
export function checkRootWritable(rootDir: string, configFile: string | undefined): void {
  if (writable(rootDir)) return;
  const user = userInfo().username;
  const example = '  printf \':root_dir: %s\\n:log_dir: %s\\n\' ~/codedeploy/root ~/codedeploy/log > ~/codedeploy.yml\n' +
    '  codedeploy-agent deploy -c ~/codedeploy.yml ...';
  if (configFile === undefined) {
    throw new LocalDeployError(
      `the default deployment root ${rootDir} needs root, and ${user} cannot write it. Run deploy as root (sudo), or point -c at an agent ` +
        `configuration whose :root_dir: (and :log_dir:) ${user} can write, for example:\n${example}`,
    );
  }
  throw new LocalDeployError(
    `the deployment root ${rootDir} (:root_dir: in ${configFile}) is not writable by ${user}: run deploy as a user who can write it, or set :root_dir: to a folder ${user} can write`,
  );
}

/** Whether `path`, or the nearest folder above it that exists, can be written (where it would be made). */
function writable(path: string): boolean {
  let current = resolve(path);
  for (;;) {
    if (existsSync(current)) {
      try {
        accessSync(current, constants.W_OK);
        return true;
      } catch {
        return false;
      }
    }
    const parent = dirname(current);
    if (parent === current) return false;
    current = parent;
  }
}
