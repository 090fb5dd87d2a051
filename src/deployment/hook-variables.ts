import type { DeploymentSpec } from './spec-types.js';

/**
 * The variables every hook gets (docs/compatibility.md, "Hooks"). They describe the current deployment even when the
 * scripts come from the previous revision, as AWS's agent does. `undefined` removes a variable.
 */
export function hookVariables(spec: DeploymentSpec, event: string): Record<string, string | undefined> {
  const vars: Record<string, string | undefined> = {
    LIFECYCLE_EVENT: event,
    DEPLOYMENT_ID: spec.deploymentId,
    APPLICATION_NAME: spec.applicationName,
    DEPLOYMENT_GROUP_NAME: spec.deploymentGroupName,
    DEPLOYMENT_GROUP_ID: spec.deploymentGroupId,
  };
  const revision = spec.revision;
  if (revision.type === 'S3') {
    vars.BUNDLE_BUCKET = revision.bucket;
    vars.BUNDLE_KEY = revision.key;
    vars.BUNDLE_VERSION = revision.version;
    vars.BUNDLE_ETAG = revision.etag;
  } else if (revision.type === 'GitHub') {
    vars.BUNDLE_COMMIT = revision.commitId;
  }
  return vars;
}
