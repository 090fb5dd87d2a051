import { existsSync, mkdirSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { formatOriginalAttributes, type OriginalAttributesMap } from '../archive/original-attributes.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { EngineContext } from './engine.js';
import type { BundleType, DeploymentSpec } from './spec-types.js';
import { bundleLimitsOf } from '../archive/bundle-limits.js';
import { archiveAttributesFileFor, deploymentPaths, groupDir, instructionsDir, mostRecentInstallFile } from './layout.js';
import { writeMarker } from './markers.js';
import { cleanupOldRevisions } from './retention.js';
import { linkLocalBundle } from '../revision/local.js';
import { ProgressTracker, revisionLabel } from '../revision/progress.js';
import { RevisionError } from '../report/errors.js';
import { MB } from '../util/byte-size.js';

/** How often a download in progress writes a line to the agent log (a stalled one says so too). */
const PROGRESS_LOG_INTERVAL_MS = 10_000;

type OnProgress = (progress: { bytes: number; total?: number }) => void;

/**
 * DownloadBundle (agent-spec §3.4): make room under the group folder, fetch the revision into
 * `bundle.tar` (or copy the folder), unpack it safely into `deployment-archive` (root's, with the
 * bundle's own modes and owners recorded beside it for Install), and point
 * `<group>_most_recent_install` at it. S3, GitHub and archive code load only when needed, so an idle
 * daemon stays small.
 */
export async function runDownloadBundle(spec: DeploymentSpec, context: EngineContext): Promise<void> {
  const paths = deploymentPaths(context.config.root_dir, spec.deploymentGroupId, spec.deploymentId);
  await fetchAndUnpack(spec, context, paths.archiveDir);
  markMostRecentInstall(spec, context);
}

/**
 * DownloadBundle's work done ahead, by a local run, before the events that precede DownloadBundle
 * (ApplicationStop and the block-traffic pair of the previous revision): the same room-making, fetch
 * and unpack, into `deployment-archive-staged`, so the new revision can be checked before any hook
 * runs. Those events still find no `deployment-archive` of this deployment, so they run from the
 * previous revision as usual; `placeStagedBundle` finishes DownloadBundle at its turn.
 */
export async function stageBundle(spec: DeploymentSpec, context: EngineContext): Promise<string> {
  const paths = deploymentPaths(context.config.root_dir, spec.deploymentGroupId, spec.deploymentId);
  // The engine makes this folder for each event; this work comes before the first.
  mkdirSync(paths.deploymentDir, { recursive: true });
  await fetchAndUnpack(spec, context, paths.stagedArchiveDir);
  return paths.stagedArchiveDir;
}

/**
 * DownloadBundle at its turn after `stageBundle`: the staged revision becomes `deployment-archive`
 * (one rename on one file system) and the most recent install. `markMostRecent` false leaves the
 * pointer alone: the revision was refused.
 */
export async function placeStagedBundle(spec: DeploymentSpec, context: EngineContext, options: { markMostRecent?: boolean } = {}): Promise<void> {
  const paths = deploymentPaths(context.config.root_dir, spec.deploymentGroupId, spec.deploymentId);
  // As unpacking does (the anchor's `rm -rf` before extracting); nothing else makes this folder.
  await rm(paths.archiveDir, { recursive: true, force: true });
  await rename(paths.stagedArchiveDir, paths.archiveDir);
  if (options.markMostRecent !== false) markMostRecentInstall(spec, context);
}

/** A staged revision whose DownloadBundle never came (an earlier event failed): its files go. */
export async function discardStagedBundle(spec: DeploymentSpec, context: EngineContext): Promise<void> {
  const paths = deploymentPaths(context.config.root_dir, spec.deploymentGroupId, spec.deploymentId);
  // Placed, it is deployment-archive now, and the attributes file beside it is that folder's.
  if (!existsSync(paths.stagedArchiveDir)) return;
  await rm(paths.stagedArchiveDir, { recursive: true, force: true });
  await rm(archiveAttributesFileFor(paths.stagedArchiveDir), { force: true });
}

function markMostRecentInstall(spec: DeploymentSpec, context: EngineContext): void {
  const { config } = context;
  mkdirSync(instructionsDir(config.root_dir), { recursive: true });
  writeMarker(mostRecentInstallFile(config.root_dir, spec.deploymentGroupId), deploymentPaths(config.root_dir, spec.deploymentGroupId, spec.deploymentId).deploymentDir);
}

/** Retention, then the revision fetched and unpacked (or a folder copied) into `archiveDir`. */
async function fetchAndUnpack(spec: DeploymentSpec, context: EngineContext, archiveDir: string): Promise<void> {
  const { config, logger } = context;
  const paths = deploymentPaths(config.root_dir, spec.deploymentGroupId, spec.deploymentId);
  await cleanupOldRevisions(config.root_dir, spec.deploymentGroupId, paths.deploymentDir, config.max_revisions, logger);
  mkdirSync(groupDir(config.root_dir, spec.deploymentGroupId), { recursive: true });
  // Written again once the new archive is root's (./archive-originals.ts): never beside a half-made one.
  await rm(archiveAttributesFileFor(archiveDir), { force: true });

  // A long download shows up in the agent log while it happens; the caller's onProgress gets the same
  // figures (the daemon's status file, the terminal bar of `deploy`).
  let tracker: ProgressTracker | undefined;
  let bytes = 0;
  const onProgress: OnProgress = (progress) => {
    tracker ??= new ProgressTracker({ label: revisionLabel(spec.revision), logger, logIntervalMs: PROGRESS_LOG_INTERVAL_MS, summary: false });
    tracker.update(progress.bytes, progress.total);
    bytes = progress.bytes;
    context.onProgress?.(progress);
  };
  let fetched: Fetched;
  const started = Date.now();
  let outcome: 'succeeded' | 'failed' = 'failed';
  try {
    fetched = await fetchRevision(spec, context, onProgress, archiveDir);
    outcome = 'succeeded';
  } finally {
    tracker?.finish();
    context.onDownloaded?.({ source: spec.revision.type, outcome, bytes, seconds: (Date.now() - started) / 1000 });
  }

  let originals = fetched.originals;
  if (fetched.bundleType !== 'directory') {
    // unpackBundle clears the archive folder itself (the anchor's `rm -rf` before extracting).
    const { unpackBundle } = await import('../archive/unpack.js');
    ({ originals } = await unpackBundle(paths.bundleFile, fetched.bundleType, archiveDir, { stripSingleTopDirectory: true, logger, signal: context.signal, limits: bundleLimitsOf(config) }));
  }
  await writeFileAtomic(archiveAttributesFileFor(archiveDir), formatOriginalAttributes(originals ?? new Map()));
}

interface Fetched {
  bundleType: BundleType;
  /** A folder copied straight into the archive folder: what its files had that the copy does not keep. */
  originals?: OriginalAttributesMap;
}

/** Puts the revision at `bundle.tar` (or, for a folder, straight into `archiveDir`); says how to unpack it. */
async function fetchRevision(spec: DeploymentSpec, context: EngineContext, onProgress: OnProgress, archiveDir: string): Promise<Fetched> {
  const { config, logger } = context;
  const paths = deploymentPaths(config.root_dir, spec.deploymentGroupId, spec.deploymentId);
  const revision = spec.revision;
  switch (revision.type) {
    case 'S3': {
      const { downloadS3Bundle } = await import('../revision/s3.js');
      const region = context.aws?.region ?? process.env.AWS_REGION;
      if (!region) {
        throw new RevisionError(
          `Cannot download s3://${revision.bucket}/${revision.key}: no AWS region is known (set AWS_REGION, or run on EC2 where the instance metadata gives it)`,
        );
      }
      await downloadS3Bundle(revision, paths.bundleFile, {
        region,
        credentials: context.aws?.credentials,
        endpointOverride: config.s3_endpoint_override,
        useFips: config.use_fips_mode,
        proxyUri: config.proxy_uri,
        partSizeBytes: config.s3_download_part_size_mb * MB,
        concurrency: config.s3_download_concurrency,
        onProgress,
        signal: context.signal,
        logger,
        clientOverrides: context.aws?.s3ClientOverrides,
      });
      return { bundleType: revision.bundleType };
    }
    case 'GitHub': {
      const { downloadGitHubBundle } = await import('../revision/github.js');
      const result = await downloadGitHubBundle(revision, paths.bundleFile, {
        token: spec.gitHubAccessToken,
        apiBase: config.github_api_base,
        proxyUri: config.proxy_uri,
        onProgress,
        signal: context.signal,
        logger,
      });
      return { bundleType: result.bundleType };
    }
    case 'Local File':
      await linkLocalBundle(revision.location, paths.bundleFile);
      return { bundleType: revision.bundleType };
    case 'Local Directory': {
      const { copyDirectoryBundle } = await import('../archive/copy-directory.js');
      return { bundleType: 'directory', originals: await copyDirectoryBundle(revision.location, archiveDir) };
    }
  }
}
