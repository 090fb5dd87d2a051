import { styleText } from 'node:util';
import type { DryRunPlan, PlannedEvent, PlannedFileChange, PlannedPermission } from '../deployment/dry-run.js';
import { semanageAddArguments } from '../install/selinux.js';
import { formatProblem } from '../report/errors.js';

type Style = Parameters<typeof styleText>[0];

/**
 * The text form of a dry run: a diff-like list of the files (`+` new, `~` replaced, `=` kept, `-`
 * removed), the permission changes, the events in order with their scripts, then warnings and
 * problems. Coloured only when asked (stdout a terminal and NO_COLOR unset: ./deploy.ts decides).
 */
export function renderDryRun(plan: DryRunPlan, colour: boolean): string {
  // validateStream off: the caller has decided; Node 22+ would otherwise look at process.stdout again.
  const paint = (style: Style, text: string) => (colour ? styleText(style, text, { validateStream: false }) : text);
  const out: string[] = [];
  out.push(paint('bold', `Dry run of deployment ${plan.deploymentId}: nothing was written.`));
  out.push(`  bundle       ${plan.bundle} (${plan.bundleType})`);
  out.push(`  group        ${plan.deploymentGroupId} (${plan.deploymentGroupName}), application ${plan.applicationName}`);
  out.push(`  would run in ${plan.deploymentDir}`);

  if (plan.oldRevisionsRemoved.length > 0) {
    out.push('', paint('bold', 'Old revisions DownloadBundle would delete (max_revisions):'));
    for (const path of plan.oldRevisionsRemoved) out.push(paint('red', `- ${path}`));
  }

  out.push('', paint('bold', plan.fileExistsBehavior === undefined ? 'Files: Install cannot be planned (see the problems)' : `Files (file_exists_behavior ${plan.fileExistsBehavior}):`));
  if (plan.fileExistsBehavior !== undefined && plan.files.length === 0) out.push('  none');
  for (const file of plan.files) out.push(fileLine(file, paint));

  if (plan.permissions.length > 0) {
    out.push('', paint('bold', 'Permissions:'));
    for (const permission of plan.permissions) out.push(`  ${permissionLine(permission)}`);
  }

  out.push('', paint('bold', 'Events, in order:'));
  const width = Math.max(...plan.events.map((event) => event.event.length));
  for (const event of plan.events) out.push(...eventLines(event, width, paint));

  if (plan.warnings.length > 0) {
    out.push('', paint('bold', `Warnings (${plan.warnings.length}):`));
    for (const warning of plan.warnings) out.push(paint('yellow', `  ! ${indented(formatProblem(warning))}`));
  }
  out.push('');
  if (plan.problems.length > 0) {
    out.push(paint('bold', `Problems (${plan.problems.length}):`));
    for (const problem of plan.problems) out.push(paint('red', `  x ${indented(formatProblem(problem))}`));
    out.push('', paint(['bold', 'red'], `The deployment would fail: ${plan.problems.length} problem${plan.problems.length === 1 ? '' : 's'} above.`));
  } else {
    out.push(paint(['bold', 'green'], 'The deployment would get past Install\'s checks.'));
  }
  return `${out.join('\n')}\n`;
}

/** A message of several lines (every file already there) under its mark. */
function indented(text: string): string {
  return text.replaceAll('\n', '\n    ');
}

const FILE_MARK: Record<PlannedFileChange['change'], { mark: string; style: Style; label: string }> = {
  add: { mark: '+', style: 'green', label: 'new' },
  mkdir: { mark: '+', style: 'green', label: 'folder created' },
  replace: { mark: '~', style: 'yellow', label: 'replaced' },
  keep: { mark: '=', style: 'cyan', label: 'kept, RETAIN' },
  remove: { mark: '-', style: 'red', label: 'removed' },
};

function fileLine(file: PlannedFileChange, paint: (style: Style, text: string) => string): string {
  const { mark, style, label } = FILE_MARK[file.change];
  const name = file.change === 'mkdir' ? `${file.path}/` : file.linkTarget !== undefined ? `${file.path} -> ${file.linkTarget}` : file.path;
  const details = [file.type === 'symlink' && file.change !== 'remove' ? `link, ${label}` : label];
  if (file.mode !== undefined && file.type === 'file') details.push(file.mode.padStart(4, '0'));
  if (file.previousDeployment) details.push(file.change === 'remove' ? 'installed by the previous deployment' : 'the previous deployment\'s removed first');
  return paint(style, `${mark} ${name} (${details.join(', ')})`);
}

function permissionLine(permission: PlannedPermission): string {
  switch (permission.kind) {
    case 'chmod':
      return `chmod ${permission.mode} ${permission.path}`;
    case 'chown':
      return `chown ${permission.owner ?? ''}${permission.group === undefined ? '' : `:${permission.group}`} ${permission.path}`;
    case 'acl':
      return `setfacl ${permission.acl.join(',')} ${permission.path}`;
    case 'selinux':
      return `semanage ${semanageAddArguments(permission.context, permission.path).join(' ')}`;
    case 'selinux-remove':
      return `semanage fcontext -d ${permission.path} (the previous deployment's rule)`;
  }
}

function eventLines(event: PlannedEvent, width: number, paint: (style: Style, text: string) => string): string[] {
  const name = paint('bold', event.event.padEnd(width));
  const header = `${event.source === 'previous-revision' ? `from the previous revision ${event.revision}: ` : ''}${event.note ?? ''}`.trimEnd();
  const scripts = event.scripts.map((script) => `${script.location}  (timeout ${script.timeout} s, as ${script.runas}${script.sudo ? ', sudo' : ''})`);
  // The first script on the event's own line when there is nothing else to say there.
  const first = header === '' ? scripts.shift() ?? '' : header;
  return [`  ${name}  ${first}`.trimEnd(), ...scripts.map((script) => `  ${' '.repeat(width)}  ${script}`)];
}
