import { statSync, type Stats } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { archiveTypeFromContents, archiveTypeFromName, givenTypeMismatch, type ArchiveType } from '../archive/bundle-type.js';
import { checkBundle } from '../appspec/check-bundle.js';
import { customEventsOf, customEventsWithoutScripts } from '../appspec/custom-events.js';
import { findAppSpec, readAppSpecText } from '../appspec/find.js';
import { bundleLimitsOf, type BundleLimits } from '../archive/bundle-limits.js';
import { diskFiles, type RevisionFiles } from '../archive/revision-files.js';
import { parseAppSpec } from '../appspec/parse.js';
import { loadAgentConfig } from '../config/agent-config.js';
import { missingRunasUsers } from '../deployment/revision-check.js';
import { AgentError, AppSpecError, type AppSpecProblem } from '../report/errors.js';

export interface ValidateOptions {
  appspecFilename?: string;
  /** `--events` of the deployment to check for: its custom events may have scripts. */
  events?: string;
  type?: string;
  config?: string;
  json?: boolean;
}

export interface ValidationReport {
  ok: boolean;
  problems: AppSpecProblem[];
  warnings: AppSpecProblem[];
}

const BUNDLE_TYPES = ['tar', 'tgz', 'zip', 'directory'];

/** `codedeploy-agent validate [PATH]`: check an appspec and the bundle around it without deploying anything. */
export function register(program: Command): void {
  program
    .command('validate')
    .description('check an appspec and its bundle (folder, archive or the appspec file itself) without deploying')
    .argument('[path]', 'bundle folder, archive (.tar, .tgz, .tar.gz, .zip) or appspec file', '.')
    .option('-A, --appspec-filename <name>', 'name of the appspec file in the bundle (default appspec.yml, then appspec.yaml)')
    .option('-t, --type <type>', 'bundle type when the file name and contents do not tell: tar, tgz, zip or directory')
    .option('-e, --events <events>', 'the --events of the local deployment to check for: custom events it names may have scripts')
    .option('-c, --config <file>', 'also check this agent configuration file')
    .option('--json', 'print {ok, problems, warnings} as JSON')
    .action(async (path: string, options: ValidateOptions) => {
      const report = await validateTarget(path, options);
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, path));
      process.exitCode = report.ok ? 0 : 1;
    });
}

/** Validates a bundle folder, archive or appspec file; every problem found is in the report. */
export async function validateTarget(path: string, options: ValidateOptions = {}): Promise<ValidationReport> {
  const problems: AppSpecProblem[] = [];
  const warnings: AppSpecProblem[] = [];
  // An archive is held to the limits of the configuration it would be deployed with.
  const limits = options.config !== undefined ? checkConfig(options.config, problems, warnings) : undefined;

  const target = await openTarget(path, options, limits);
  if ('problem' in target) problems.push(target.problem);
  else await checkAppSpec(target, options, problems, warnings);
  return { ok: problems.length === 0, problems, warnings };
}

interface Target {
  /** Folder the appspec's paths are relative to. */
  bundleRoot: string;
  /** The appspec file itself, when PATH named it. */
  appspecFile?: string;
  /** How to show files of the bundle in messages. */
  display: (file: string) => string;
  /** The bundle's files: the disk, or an archive read into memory (nothing of it is written anywhere). */
  files: RevisionFiles;
}

async function openTarget(path: string, options: ValidateOptions, limits: BundleLimits | undefined): Promise<Target | { problem: AppSpecProblem }> {
  const absolute = resolve(path);
  const stats = statOrUndefined(absolute);
  if (stats === undefined) return { problem: { message: `${path} does not exist`, hint: 'give a bundle folder, an archive or an appspec file' } };
  if (options.type !== undefined && !BUNDLE_TYPES.includes(options.type)) {
    return { problem: { message: `type ${options.type} is not a valid type. Must be one of ${BUNDLE_TYPES.join(',')}` } };
  }
  // The rule and message of `deploy`: a -t that contradicts the contents says what the file looks like.
  const mismatch = options.type === undefined ? undefined : givenTypeMismatch(path, absolute, options.type as ArchiveType | 'directory', 'leave out -t for an appspec file');
  if (mismatch) return { problem: { message: mismatch } };
  const underPath = (file: string) => join(path, relative(absolute, file));
  if (stats.isDirectory()) return { bundleRoot: absolute, display: underPath, files: diskFiles };
  const archiveType = (options.type as ArchiveType | undefined) ?? archiveTypeFromContents(absolute) ?? archiveTypeFromName(absolute);
  if (archiveType === undefined) {
    return { bundleRoot: dirname(absolute), appspecFile: absolute, display: (file) => join(dirname(path), relative(dirname(absolute), file)), files: diskFiles };
  }
  try {
    // Read as the dry run reads it: through the unpacker's checks and the bundle limits, into memory
    // (the appspec's text, the first bytes of scripts), so $TMPDIR never holds any of it. Loaded
    // lazily: only archives need it.
    const { readBundleManifest, appspecCandidates } = await import('../archive/bundle-manifest.js');
    const manifest = await readBundleManifest(absolute, archiveType, { root: absolute, keepText: appspecCandidates(options.appspecFilename), limits });
    return { bundleRoot: absolute, display: (file) => (file === absolute ? path : `${path}/${relative(absolute, file)}`), files: manifest };
  } catch (error) {
    return { problem: { file: path, message: `cannot unpack ${path} as a ${archiveType} archive: ${error instanceof Error ? error.message : String(error)}` } };
  }
}

/**
 * Parses the appspec as `deploy` would and checks it against the bundle: an event under hooks that is
 * neither a lifecycle event nor a custom event of `--events` is an error here as it is there, and a
 * `runas` user this host does not have is a warning in both.
 */
async function checkAppSpec(target: Target, options: ValidateOptions, problems: AppSpecProblem[], warnings: AppSpecProblem[]): Promise<void> {
  const events = options.events?.split(',').map((event) => event.trim()).filter(Boolean) ?? [];
  let appspecPath: string;
  try {
    appspecPath = target.appspecFile ?? findAppSpec(target.bundleRoot, options.appspecFilename, target.files);
  } catch (error) {
    if (!(error instanceof AppSpecError)) throw error;
    // The lookup names the folder it searched: for an archive, say the archive.
    const shown = target.display(target.bundleRoot);
    for (const problem of error.problems) {
      problems.push({
        ...problem,
        file: problem.file ?? shown,
        message: problem.message.replaceAll(target.bundleRoot, shown),
        ...(problem.hint === undefined ? {} : { hint: problem.hint.replaceAll(target.bundleRoot, shown) }),
      });
    }
    return;
  }
  const file = target.display(appspecPath);
  let text: string;
  try {
    text = readAppSpecText(appspecPath, file, target.files);
  } catch (error) {
    if (!(error instanceof AppSpecError)) throw error;
    for (const item of error.problems) problems.push(item);
    return;
  }
  const parsed = parseAppSpec(text, file, { customEvents: customEventsOf(events) });
  for (const item of parsed.problems) problems.push(item);
  for (const item of parsed.warnings) warnings.push(item);
  if (parsed.sections) {
    const bundle = checkBundle(parsed.sections, parsed.positions, target.bundleRoot, target.files);
    for (const item of bundle.problems) problems.push(item);
    for (const item of bundle.warnings) warnings.push(item);
    for (const item of await missingRunasUsers(parsed.sections.hooks, parsed.positions)) warnings.push(item);
    for (const item of customEventsWithoutScripts(parsed.sections.hooks, events, basename(appspecPath)).map((problem) => ({ ...problem, file }))) problems.push(item);
  }
}

function checkConfig(configFile: string, problems: AppSpecProblem[], warnings: AppSpecProblem[]): BundleLimits | undefined {
  try {
    const loaded = loadAgentConfig(configFile);
    for (const message of loaded.warnings) warnings.push({ file: configFile, message });
    return bundleLimitsOf(loaded.config);
  } catch (error) {
    if (!(error instanceof AgentError)) throw error;
    problems.push({ file: configFile, message: error.message });
    return undefined;
  }
}

/** Lines printed at most; the rest are counted (all of them are in --json). */
export const MAX_PRINTED_PROBLEMS = 200;

/**
 * Compiler-style lines (`file:line:col: error: message (hint)`), in file order, then a summary line. At
 * most MAX_PRINTED_PROBLEMS lines: an appspec generated wrong can hold a problem per line, and a screen of
 * the first ones says as much as a hundred thousand.
 */
export function formatReport(report: ValidationReport, path: string, maxLines = MAX_PRINTED_PROBLEMS): string {
  const all = [
    ...report.problems.map((problem) => ({ problem, severity: 'error' })),
    ...report.warnings.map((problem) => ({ problem, severity: 'warning' })),
  ].sort((a, b) =>
    (a.problem.file ?? '').localeCompare(b.problem.file ?? '') || (a.problem.line ?? 0) - (b.problem.line ?? 0) || (a.problem.col ?? 0) - (b.problem.col ?? 0));
  const lines = all.slice(0, maxLines).map(({ problem, severity }) => `${where(problem)}${severity}: ${problem.message}${problem.hint ? ` (${problem.hint})` : ''}`);
  const count = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (all.length > maxLines) lines.push(`... ${count(all.length - maxLines, 'more problem')} not shown (--json lists them all)`);
  const summary = report.ok
    ? `${path}: AppSpec file valid${report.warnings.length > 0 ? ` (${count(report.warnings.length, 'warning')})` : ''}`
    : `${path}: ${count(report.problems.length, 'error')}, ${count(report.warnings.length, 'warning')}`;
  return `${[...lines, summary].join('\n')}\n`;
}

function where(problem: AppSpecProblem): string {
  if (!problem.file) return '';
  return problem.line ? `${problem.file}:${problem.line}:${problem.col ?? 1}: ` : `${problem.file}: `;
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
