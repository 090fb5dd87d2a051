import type { FileExistsBehavior } from '../appspec/types.js';

export type BundleType = 'tar' | 'tgz' | 'zip' | 'directory';

export type Revision =
  | { type: 'S3'; bucket: string; key: string; bundleType: 'tar' | 'tgz' | 'zip'; version?: string; etag?: string }
  | { type: 'GitHub'; account: string; repository: string; commitId: string; bundleType?: 'tar' | 'zip' }
  | { type: 'Local File'; location: string; bundleType: 'tar' | 'tgz' | 'zip' }
  | { type: 'Local Directory'; location: string; bundleType: 'directory' };

/** A parsed deployment specification (the fields AWS's agent reads). */
export interface DeploymentSpec {
  deploymentId: string;
  deploymentGroupId: string;
  deploymentGroupName: string;
  applicationName: string;
  /** `user` unless the service says otherwise; `codeDeployRollback` matters for a blue/green rollback. */
  deploymentCreator: string;
  /** `IN_PLACE` or `BLUE_GREEN`. */
  deploymentType: string;
  appSpecFilename: string;
  revision: Revision;
  /** From AgentActionOverrides; the appspec's own value wins. */
  fileExistsBehavior?: FileExistsBehavior | string;
  /** Present only for local runs (codedeploy-local). */
  allPossibleLifecycleEvents?: string[];
  /** Never logged. */
  gitHubAccessToken?: string;
}
