import { basename, dirname, join, resolve } from 'node:path';
import type { AppSpec, Permission } from '../appspec/types.js';
import { rubyInspect } from '../appspec/ruby-inspect.js';
import { FileExistsError, InstallError } from '../report/errors.js';
import { hasDefaultEntries } from './acl.js';
import { permissionMatcher } from './permission-match.js';
import { planRemovals } from './removals.js';
import type { InstallOperation, InstallPlan, InstallScan, PathState, Requirement, SourceEntry, SourceScan, ToolName } from './types.js';

export interface PlanInput {
  appspec: Pick<AppSpec, 'files' | 'permissions' | 'fileExistsBehavior'>;
  scan: InstallScan;
  /** `AgentActionOverrides.AgentOverrides.FileExistsBehavior` from the deployment spec. */
  fileExistsBehavior?: string;
}

/** agent-spec §4.7: the appspec's value, else the deployment's override (upper-cased), else DISALLOW. */
export function effectiveFileExistsBehavior(appspecValue: string | undefined, deploymentValue: string | undefined): string {
  return appspecValue ?? (deploymentValue ? deploymentValue.toUpperCase() : undefined) ?? 'DISALLOW';
}

/**
 * Every operation Install will perform, in order, with every check of agent-spec §5.2/§5.3 done here,
 * before the first write: a deployment refused by this function has changed nothing on the host.
 * Pure: the disk is known only through the scan.
 */
export function planInstall(input: PlanInput): InstallPlan {
  const { appspec, scan } = input;
  const fileExistsBehavior = effectiveFileExistsBehavior(appspec.fileExistsBehavior, input.fileExistsBehavior);
  const { removals, removed } = planRemovals(scan.cleanupEntries, scan.destination, scan.cleanupChildren, scan.cwd);
  const builder = new OperationBuilder();
  // The disk as it will be once the previous deployment's files are gone (the anchor removes them first).
  const stateOf = (path: string): PathState | undefined => (removed.has(path) ? undefined : scan.destination.get(path));
  const conflicts: string[] = [];
  const kept: string[] = [];

  const mkdirMissingAncestors = (path: string, source: string) => {
    const missing: string[] = [];
    let parent = dirname(path);
    while (stateOf(parent) === undefined && parent !== '/') {
      missing.unshift(parent);
      parent = dirname(parent);
    }
    // Where the walk stopped must be a directory, or mkdir would fail half-way through Install.
    if (stateOf(parent) !== undefined && stateOf(parent)?.resolved !== 'directory') throw notADirectory(parent, source);
    for (const dir of missing) builder.mkdir(dir);
  };

  const copyFile = (entry: SourceEntry, target: string) => {
    checkInstallable(entry, target);
    const existing = stateOf(target);
    // Unlike the anchor (which follows links here), a dangling link counts: copying would write through it.
    if (existing !== undefined) {
      switch (fileExistsBehavior) {
        case 'DISALLOW':
          conflicts.push(target);
          return;
        case 'OVERWRITE':
          if (existing.type === 'directory') throw cannotReplaceDirectory(target, entry.absolutePath);
          builder.copy(entry, target, true);
          return;
        case 'RETAIN':
          kept.push(target);
          return;
        default:
          throw new InstallError(
            `The deployment failed because an invalid option was specified for fileExistsBehavior: ${fileExistsBehavior}. Valid options include OVERWRITE, RETAIN, and DISALLOW.`,
          );
      }
    }
    builder.copy(entry, target, false);
  };

  const planSource = (source: SourceScan) => {
    checkSource(source);
    const root = source.entries[0];
    if (root.type === 'directory') {
      const destination = resolve(scan.cwd, source.mapping.destination);
      mkdirMissingAncestors(destination, root.absolutePath);
      for (const entry of source.entries) {
        const target = entry.relativePath === '' ? destination : join(destination, entry.relativePath);
        if (entry.type === 'directory') {
          const existing = stateOf(target);
          if (existing?.resolved === 'directory') continue;
          if (existing !== undefined) throw notADirectory(target, entry.absolutePath);
          checkInstallable(entry, target);
          builder.mkdir(target);
        } else {
          copyFile(entry, target);
        }
      }
    } else {
      // A file (or a link, never followed) keeps its name: the destination is always a directory.
      const target = resolve(scan.cwd, source.mapping.destination, basename(source.sourcePath));
      mkdirMissingAncestors(target, root.absolutePath);
      copyFile(root, target);
    }
  };

  try {
    for (const source of scan.sources) planSource(source);
  } catch (error) {
    // The anchor stops at the first problem in files-section order; an earlier conflict comes first.
    if (conflicts.length > 0) throw fileExistsConflict(conflicts);
    throw error;
  }
  if (conflicts.length > 0) throw fileExistsConflict(conflicts);

  for (const permission of appspec.permissions) {
    const object = resolve(scan.cwd, permission.object);
    if (builder.isCopyTarget(object)) {
      if (permission.type.includes('file')) {
        validateFilePermission(permission);
        validateFileAcl(permission);
        builder.setPermissions(object, permission);
      }
    } else if (builder.isMkdirTarget(object) || stateOf(object)?.resolved === 'directory') {
      const matches = permissionMatcher(permission, scan.cwd);
      const objects: string[] = [];
      if (permission.type.includes('file')) {
        for (const target of builder.copyTargets()) {
          if (!matches(target)) continue;
          validateFileAcl(permission);
          objects.push(target);
        }
      }
      if (permission.type.includes('directory')) {
        for (const target of builder.mkdirTargets()) if (matches(target)) objects.push(target);
      }
      for (const target of objects) builder.setPermissions(target, permission);
    }
  }

  return { fileExistsBehavior, removals, operations: builder.operations, kept, ...builder.requirements() };
}

/**
 * The anchor's `CommandBuilder`: refuses two operations on one path and records what each permission
 * needs from the host (users, groups, tools) so those are checked before anything is written.
 */
class OperationBuilder {
  readonly operations: InstallOperation[] = [];
  private readonly copies = new Map<string, SourceEntry>();
  private readonly mkdirs = new Set<string>();
  private readonly permissionTargets = new Set<string>();
  private readonly users = new Map<string, string>();
  private readonly groups = new Map<string, string>();
  private readonly tools = new Map<ToolName, string>();

  copy(entry: SourceEntry, destination: string, replaces: boolean): void {
    const previous = this.copies.get(destination);
    if (previous) {
      throw new InstallError(
        `The deployment failed because the application specification file specifies two source files named ${entry.absolutePath} and ${previous.absolutePath} for the same destination (${destination}). Remove one of the source file paths from the AppSpec file, and then try again.`,
      );
    }
    if (this.mkdirs.has(destination)) {
      throw new InstallError(
        `The deployment failed because the application specification file calls for installing the file ${entry.absolutePath}, but a file with that name already exists at the location (${destination}). Update your AppSpec file or directory structure, and then try again.`,
      );
    }
    this.operations.push({ type: 'copy', source: entry.absolutePath, destination, entry, replaces });
    this.copies.set(destination, entry);
  }

  mkdir(directory: string): void {
    const copied = this.copies.get(directory);
    if (copied) {
      throw new InstallError(
        `The deployment failed because the application specification file includes an mkdir command more than once for the same destination path (${directory}) from (${copied.absolutePath}). Update the files section of the AppSpec file, and then try again.`,
      );
    }
    if (this.mkdirs.has(directory)) return;
    this.operations.push({ type: 'mkdir', directory });
    this.mkdirs.add(directory);
  }

  isCopyTarget(path: string): boolean {
    return this.copies.has(path);
  }

  isMkdirTarget(path: string): boolean {
    return this.mkdirs.has(path);
  }

  copyTargets(): Iterable<string> {
    return this.copies.keys();
  }

  mkdirTargets(): Iterable<string> {
    return this.mkdirs;
  }

  setPermissions(object: string, permission: Permission): void {
    if (this.permissionTargets.has(object)) {
      throw new InstallError(
        `The deployment failed because the permissions setting for (${object}) is specified more than once in the application specification file. Update the files section of the AppSpec file, and then try again.`,
      );
    }
    this.permissionTargets.add(object);
    // chmod, setfacl and chcon on a link would change what it points to, which may be any file on the host.
    const isLink = this.copies.get(object)?.type === 'symlink';
    if (permission.mode !== undefined && !isLink) this.operations.push({ type: 'chmod', file: object, mode: permission.mode });
    if (permission.acls !== undefined && !isLink) {
      this.operations.push({ type: 'setfacl', file: object, acl: [...permission.acls] });
      this.need(this.tools, 'setfacl', object);
    }
    if (permission.context !== undefined && !isLink) {
      this.operations.push({ type: 'semanage', file: object, context: { ...permission.context } });
      this.need(this.tools, 'semanage', object);
      this.need(this.tools, 'restorecon', object);
    }
    if (permission.owner !== undefined || permission.group !== undefined) {
      this.operations.push({ type: 'chown', file: object, owner: permission.owner, group: permission.group, link: isLink });
      if (permission.owner !== undefined) this.need(this.users, permission.owner, object);
      if (permission.group !== undefined) this.need(this.groups, permission.group, object);
    }
  }

  requirements(): Pick<InstallPlan, 'users' | 'groups' | 'tools'> {
    const list = <Name extends string>(map: Map<Name, string>): Requirement<Name>[] =>
      [...map].map(([name, object]) => ({ name, object }));
    return { users: list(this.users), groups: list(this.groups), tools: list(this.tools) };
  }

  private need<Name extends string>(map: Map<Name, string>, name: Name, object: string): void {
    if (!map.has(name)) map.set(name, object);
  }
}

function checkSource(source: SourceScan): void {
  if (source.problem === 'outside') {
    throw new InstallError(
      `The deployment failed because the source ${source.mapping.source} in the files section of the AppSpec file points outside the revision (${source.sourcePath}). Use a path inside the revision, and then try again.`,
    );
  }
  if (source.problem === 'missing' || source.entries.length === 0) {
    throw new InstallError(
      `The deployment failed because the source ${source.mapping.source} in the files section of the AppSpec file does not exist in the revision (${source.sourcePath}). Correct the source, or add it to the revision, and then try again.`,
    );
  }
}

function checkInstallable(entry: SourceEntry, target: string): void {
  if (entry.type === 'other') {
    throw new InstallError(
      `The deployment failed because ${entry.absolutePath} in the revision is not a regular file, directory or symbolic link (a FIFO, socket or device cannot be installed). Remove it from the revision, and then try again.`,
    );
  }
  if (target.includes('\n')) {
    throw new InstallError(
      `The deployment failed because the revision holds a name with a line break (${JSON.stringify(entry.absolutePath)}), which the cleanup file cannot record. Rename it in the revision, and then try again.`,
    );
  }
}

/** The anchor's message for the first file, then (one a line) how many more there are: fix them all in one go. */
function fileExistsConflict(targets: string[]): FileExistsError {
  const shown = 20;
  let message = `The deployment failed because a specified file already exists at this location: ${targets[0]}`;
  if (targets.length > 1) {
    const others = targets.slice(1, shown);
    message += `\n${targets.length - 1} more file(s) already exist: ${others.join(', ')}${targets.length > shown ? ', …' : ''}`;
    message += '\nRemove them, or set file_exists_behavior to OVERWRITE or RETAIN in the AppSpec file.';
  }
  return new FileExistsError(message, targets);
}

function notADirectory(path: string, source: string): InstallError {
  return new InstallError(
    `The deployment failed because ${path} exists and is not a directory, but installing ${source} needs a directory there. Remove or rename ${path}, or change the destination in the files section of the AppSpec file, and then try again.`,
  );
}

function cannotReplaceDirectory(target: string, source: string): InstallError {
  return new InstallError(
    `The deployment failed because file_exists_behavior is OVERWRITE but ${target} is a directory, which the file ${source} cannot replace. Remove the directory or change the destination, and then try again.`,
  );
}

/** `validate_file_permission`: a permission whose object is one installed file cannot filter its children. */
function validateFilePermission(permission: Permission): void {
  if (permission.pattern !== '**') {
    throw new InstallError(
      `The deployment failed because the application specification file includes an object (${permission.object}) with an invalid pattern (${permission.pattern}), such as a pattern for a file applied to a directory. Correct the permissions section of the AppSpec file, and then try again.`,
    );
  }
  if (permission.except.length > 0) {
    throw new InstallError(
      `The deployment failed because the except parameter for a pattern in the permissions section (${rubyInspect(permission.except)}) for the object named ${permission.object} contains an invalid format. Update the AppSpec file, and then try again.`,
    );
  }
}

function validateFileAcl(permission: Permission): void {
  if (permission.acls !== undefined && hasDefaultEntries(permission.acls)) {
    throw new InstallError(
      'The deployment failed because the -d parameter has been specified to apply an acl setting to a file. This parameter is supported for directories only. Update the AppSpec file, and then try again.',
    );
  }
}
