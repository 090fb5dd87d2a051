import { userInfo } from 'node:os';
import { basename } from 'node:path';
import { appspecCandidates, readBundleManifest } from '../archive/bundle-manifest.js';
import { bundleLimitsOf } from '../archive/bundle-limits.js';
import { diskFiles, type RevisionFiles } from '../archive/revision-files.js';
import { checkBundle } from '../appspec/check-bundle.js';
import { checkLifecycleEvents } from '../appspec/custom-events.js';
import { findAppSpec } from '../appspec/find.js';
import { loadAppSpecFromDir, parseAppSpec } from '../appspec/parse.js';
import type { AppSpec, HookScript, SelinuxContext } from '../appspec/types.js';
import type { AgentConfig } from '../config/agent-config.js';
import { resolveIdentities } from '../install/identity.js';
import { planGroupInstall, toolsFor } from '../install/install.js';
import { formatMode } from '../install/install-json.js';
import { findInstallJournals } from '../install/recovery.js';
import type { EntryType, InstallPlan } from '../install/types.js';
import { AgentError, AppSpecError, type AppSpecProblem } from '../report/errors.js';
import { deploymentPaths } from './layout.js';
import { isBuiltinEvent, revisionModeFor, STOP_EVENTS } from './lifecycle.js';
import { revisionArchiveFor } from './engine.js';
import { revisionsToDelete } from './retention.js';
import { inspectRevision } from './revision-check.js';
import type { DeploymentSpec } from './spec-types.js';

/**
 * `deploy --dry-run`: what a local deployment would do, found by the code the real run uses and
 * written nowhere. The revision is read where it is (a folder, or an archive streamed into a
 * manifest: ../archive/bundle-manifest.ts), checked as the run checks it before its first event, and
 * Install is planned by the same planGroupInstall, identity lookup and tool search as the real
 * Install; the previous revision's files and scripts come from the group's records under the
 * deployment root, read only. Problems are every check that would stop the run before or at Install.
 */

export type FileChange = 'add' | 'replace' | 'keep' | 'remove' | 'mkdir';

export interface PlannedFileChange {
  path: string;
  change: FileChange;
  type: EntryType;
  /** A link's target, as it will be created. */
  linkTarget?: string;
  /** The file's mode as it comes from the revision (octal digits); owner and mode changes are in `permissions`. */
  mode?: string;
  /** A replaced or removed file installed by the group's previous deployment. */
  previousDeployment?: boolean;
}

export type PlannedPermission =
  | { path: string; kind: 'chmod'; mode: string }
  | { path: string; kind: 'chown'; owner?: string; group?: string }
  | { path: string; kind: 'acl'; acl: string[] }
  | { path: string; kind: 'selinux'; context: SelinuxContext }
  /** An SELinux rule the previous deployment added, deleted before this Install. */
  | { path: string; kind: 'selinux-remove' };

export interface PlannedScript {
  location: string;
  /** Seconds. */
  timeout: number;
  /** The user it runs as: the appspec's runas, else the agent's own user. */
  runas: string;
  sudo: boolean;
}

export interface PlannedEvent {
  event: string;
  /** Where its scripts come from: the new revision, the group's previous one, the agent itself, or nowhere. */
  source: 'new-revision' | 'previous-revision' | 'agent' | 'none';
  /** The previous revision's folder, for events that run its scripts. */
  revision?: string;
  scripts: PlannedScript[];
  /** What the agent does (DownloadBundle, Install) or why nothing runs. */
  note?: string;
}

export interface DryRunPlan {
  ok: boolean;
  deploymentId: string;
  deploymentGroupId: string;
  deploymentGroupName: string;
  applicationName: string;
  bundle: string;
  bundleType: string;
  /** Where the real run would work (not created by the dry run). */
  deploymentDir: string;
  /** Undefined when Install could not be planned (see problems). */
  fileExistsBehavior?: string;
  /** The group's old deployment folders DownloadBundle would delete (max_revisions). */
  oldRevisionsRemoved: string[];
  files: PlannedFileChange[];
  permissions: PlannedPermission[];
  events: PlannedEvent[];
  warnings: AppSpecProblem[];
  problems: AppSpecProblem[];
}

export interface DryRunOptions {
  config: AgentConfig;
  /** How the user named the bundle (messages show it rather than an absolute or unpacked path). */
  bundleShown: string;
  ignoreApplicationStopFailures?: boolean;
  /** A check of the deployment root the real run makes first (throws when it cannot be written). */
  checkRoot?: () => void;
  /** Relative appspec paths resolve against it, as Install's do. Default: the current folder. */
  cwd?: string;
}

/** The agent's own user, which a script without runas runs as. */
function agentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'the agent\'s user');
  }
}

/** Problems of an error a check throws: an appspec's list, or the one message. */
function problemsOf(error: unknown): AppSpecProblem[] {
  if (error instanceof AppSpecError) return error.problems;
  return [{ message: error instanceof Error ? error.message : String(error) }];
}

export async function planDryRun(spec: DeploymentSpec, events: string[], options: DryRunOptions): Promise<DryRunPlan> {
  const { config } = options;
  const rootDir = config.root_dir;
  const paths = deploymentPaths(rootDir, spec.deploymentGroupId, spec.deploymentId);
  const revision = spec.revision;
  const plan: DryRunPlan = {
    ok: false,
    deploymentId: spec.deploymentId,
    deploymentGroupId: spec.deploymentGroupId,
    deploymentGroupName: spec.deploymentGroupName,
    applicationName: spec.applicationName,
    bundle: options.bundleShown,
    bundleType: revision.bundleType ?? 'tar',
    deploymentDir: paths.deploymentDir,
    oldRevisionsRemoved: [],
    files: [],
    permissions: [],
    events: [],
    warnings: [],
    problems: [],
  };
  const problem = (...found: AppSpecProblem[]) => plan.problems.push(...found);

  try {
    options.checkRoot?.();
  } catch (error) {
    problem(...problemsOf(error));
  }
  for (const journal of findInstallJournals(rootDir, spec.deploymentGroupId)) {
    plan.warnings.push({
      file: journal,
      message: 'an Install of this group was cut short by a crash and is not rolled back yet; the deployment rolls it back before anything else, so what it does may differ from this plan, made from the files as they are now',
    });
  }
  plan.oldRevisionsRemoved = await revisionsToDelete(rootDir, spec.deploymentGroupId, paths.deploymentDir, config.max_revisions).catch(() => []);

  // The revision where it is: a folder as is, an archive read into memory.
  let bundleRoot: string;
  let files: RevisionFiles = diskFiles;
  let downloadNote: string;
  if (revision.type === 'Local Directory') {
    bundleRoot = revision.location;
    downloadNote = `copy the folder ${options.bundleShown} into ${paths.archiveDir}`;
  } else if (revision.type === 'Local File') {
    bundleRoot = revision.location;
    try {
      const manifest = await readBundleManifest(revision.location, revision.bundleType, { root: bundleRoot, keepText: appspecCandidates(spec.appSpecFilename), limits: bundleLimitsOf(options.config) });
      files = manifest;
      const { entries, bytes, strippedTopDirectory } = manifest.summary;
      downloadNote = `unpack ${entries} entries (${bytes} bytes) of ${options.bundleShown} into ${paths.archiveDir}` +
        (strippedTopDirectory === undefined ? '' : `, moving the content of its top folder ${strippedTopDirectory} up`);
    } catch (error) {
      problem({ file: options.bundleShown, message: `DownloadBundle would fail: ${error instanceof Error ? error.message : String(error)}` });
      plan.events = events.map((event) => ({ event, source: 'none', scripts: [], note: event === 'DownloadBundle' ? 'fails (see problems)' : 'not reached' }));
      return plan;
    }
  } else {
    throw new AgentError(`--dry-run reads a local bundle (a folder or an archive file); download ${options.bundleShown} and give its path with -l`);
  }
  const display = (path: string) => (path === bundleRoot || path.startsWith(`${bundleRoot}/`) ? `${options.bundleShown}${path.slice(bundleRoot.length)}` : path);

  // The check the run makes once the revision is there (before any of its hooks).
  const eventsFromRevision = events.slice(events.indexOf('DownloadBundle') + 1);
  const check = await inspectRevision({ bundleRoot, appspecFilename: spec.appSpecFilename, events, eventsFromRevision, display, files });
  plan.warnings.push(...check.warnings);
  problem(...check.problems);

  // Install: the appspec as Install reads it, then its plan, owners and tools.
  let appspec: AppSpec | undefined;
  try {
    const appspecPath = findAppSpec(bundleRoot, spec.appSpecFilename, files);
    const parsed = parseAppSpec(files.readText(appspecPath), display(appspecPath));
    if (!parsed.spec) throw new AppSpecError(parsed.problems);
    appspec = parsed.spec;
    if (spec.allPossibleLifecycleEvents) checkLifecycleEvents(appspec, spec.allPossibleLifecycleEvents);
  } catch (error) {
    // The revision check has said it already, at its place in the file.
    if (check.problems.length === 0) problem(...problemsOf(error));
  }
  let installPlan: InstallPlan | undefined;
  if (appspec) {
    try {
      installPlan = planGroupInstall({
        rootDir,
        groupId: spec.deploymentGroupId,
        archiveDir: bundleRoot,
        appspec,
        fileExistsBehavior: spec.fileExistsBehavior,
        cwd: options.cwd,
        revisionFiles: files,
      }).plan;
    } catch (error) {
      problem(...problemsOf(error).map((found) => ({ ...found, message: found.message.replaceAll(`${bundleRoot}/`, `${options.bundleShown}/`) })));
    }
  }
  if (installPlan) {
    plan.fileExistsBehavior = installPlan.fileExistsBehavior;
    describeInstall(installPlan, plan);
    await resolveIdentities(installPlan.users, installPlan.groups).catch((error: unknown) => problem(...problemsOf(error)));
    try {
      toolsFor(installPlan);
    } catch (error) {
      problem(...problemsOf(error));
    }
  }

  for (const event of events) plan.events.push(plannedEvent(spec, event, { appspec, config, downloadNote, installPlan, options, plan }));
  plan.ok = plan.problems.length === 0;
  return plan;
}

/** The file and permission changes of the plan, in the order Install makes them. */
function describeInstall(installPlan: InstallPlan, plan: DryRunPlan): void {
  // A path the previous deployment installed and this one installs again is one change, not two.
  const installed = new Set(installPlan.operations.flatMap((op) => (op.type === 'copy' ? [op.destination] : op.type === 'mkdir' ? [op.directory] : [])));
  for (const removal of installPlan.removals) {
    if (removal.type === 'semanage-delete') {
      plan.permissions.push({ path: removal.path, kind: 'selinux-remove' });
    } else if (!installed.has(removal.path)) {
      plan.files.push({ path: removal.path, change: 'remove', type: removal.entryType, previousDeployment: true });
    }
  }
  const removed = new Set(installPlan.removals.flatMap((op) => (op.type === 'remove' ? [op.path] : [])));
  const kept = new Set(installPlan.kept);
  for (const op of installPlan.operations) {
    switch (op.type) {
      case 'mkdir':
        plan.files.push({ path: op.directory, change: 'mkdir', type: 'directory', ...(removed.has(op.directory) ? { previousDeployment: true } : {}) });
        break;
      case 'copy': {
        const change: PlannedFileChange = {
          path: op.destination,
          change: op.replaces || removed.has(op.destination) ? 'replace' : 'add',
          type: op.entry.type,
        };
        if (op.entry.linkTarget !== undefined) change.linkTarget = op.entry.linkTarget;
        if (op.entry.stats) change.mode = formatMode(op.entry.stats.mode & 0o7777);
        if (removed.has(op.destination)) change.previousDeployment = true;
        plan.files.push(change);
        break;
      }
      case 'chmod':
        plan.permissions.push({ path: op.file, kind: 'chmod', mode: formatMode(op.mode).padStart(4, '0') });
        break;
      case 'chown':
        plan.permissions.push({ path: op.file, kind: 'chown', ...(op.owner === undefined ? {} : { owner: op.owner }), ...(op.group === undefined ? {} : { group: op.group }) });
        break;
      case 'setfacl':
        plan.permissions.push({ path: op.file, kind: 'acl', acl: op.acl });
        break;
      case 'semanage':
        plan.permissions.push({ path: op.file, kind: 'selinux', context: op.context });
        break;
    }
  }
  for (const path of kept) plan.files.push({ path, change: 'keep', type: 'file' });
  // By path, as a diff lists them: a folder before what goes into it.
  plan.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function scriptsOf(hooks: Record<string, HookScript[]> | undefined, event: string): PlannedScript[] {
  return (hooks?.[event] ?? []).map((script) => ({ location: script.location, timeout: script.timeout, runas: script.runas ?? agentUser(), sudo: script.sudo }));
}

function plannedEvent(
  spec: DeploymentSpec,
  event: string,
  context: { appspec?: AppSpec; config: AgentConfig; downloadNote: string; installPlan?: InstallPlan; options: DryRunOptions; plan: DryRunPlan },
): PlannedEvent {
  const { plan } = context;
  if (event === 'DownloadBundle') return { event, source: 'agent', scripts: [], note: context.downloadNote };
  if (event === 'Install') {
    const install = context.installPlan;
    if (!install) return { event, source: 'agent', scripts: [], note: 'cannot be planned (see problems)' };
    const count = (change: FileChange) => plan.files.filter((file) => file.change === change).length;
    return {
      event,
      source: 'agent',
      scripts: [],
      note: `${count('add')} new, ${count('replace')} replaced, ${count('keep')} kept, ${count('remove')} removed, ${count('mkdir')} folder(s) created, ${plan.permissions.length} permission change(s)`,
    };
  }
  if (isBuiltinEvent(event)) return { event, source: 'agent', scripts: [] };
  if (revisionModeFor(event, spec) === 'New') {
    const scripts = scriptsOf(context.appspec?.hooks, event);
    return { event, source: 'new-revision', scripts, ...(scripts.length === 0 ? { note: 'nothing to run' } : {}) };
  }
  // The previous revision's scripts, from the group's records (read only).
  const archive = revisionArchiveFor(spec, event, context.config.root_dir);
  if (!archive) return { event, source: 'none', scripts: [], note: 'nothing to run (no previous revision)' };
  const revision = archive.replace(/\/deployment-archive$/, '');
  let previous: AppSpec;
  try {
    previous = loadAppSpecFromDir(archive, spec.appSpecFilename);
  } catch (error) {
    const forgiven = context.options.ignoreApplicationStopFailures && (STOP_EVENTS as readonly string[]).includes(event);
    const found = problemsOf(error).map((problem) => ({ ...problem, message: `${event} (previous revision ${basename(revision)}): ${problem.message}` }));
    (forgiven ? plan.warnings : plan.problems).push(...found);
    return { event, source: 'previous-revision', revision, scripts: [], note: forgiven ? 'fails, ignored (--ignore-application-stop-failures)' : 'fails (see problems)' };
  }
  const scripts = scriptsOf(previous.hooks, event);
  const missing = checkBundle({ hooks: { [event]: previous.hooks[event] ?? [] }, files: [] }, new Map(), archive).problems;
  const forgiven = context.options.ignoreApplicationStopFailures && (STOP_EVENTS as readonly string[]).includes(event);
  for (const found of missing) (forgiven ? plan.warnings : plan.problems).push({ ...found, message: `${found.message} (previous revision ${basename(revision)})` });
  return { event, source: 'previous-revision', revision, scripts, ...(scripts.length === 0 ? { note: 'nothing to run' } : {}) };
}
