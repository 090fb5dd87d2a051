import { LineCounter, isMap, isScalar, parseAllDocuments, type Document, type Node, type YAMLError } from 'yaml';
import { AppSpecError, type AppSpecProblem, type SourcePosition } from '../report/errors.js';
import { parseFiles } from './files.js';
import { findAppSpec, readAppSpecText } from './find.js';
import { parseHooks } from './hooks.js';
import { parsePermissions } from './permissions.js';
import { AppSpecReader, type MapEntry } from './reader.js';
import { closestName } from './suggest.js';
import { parseFileExistsBehavior, parseOs, parseVersion, type Platform } from './top-level.js';
import type { AppSpec, FileMapping, HookScript } from './types.js';

/*
 * Reading an appspec (agent-spec §4). Every problem is collected, not just the first, each with the
 * line and column of the value (or key) at fault and a hint saying what to write instead. Messages
 * are the anchor's where it has one, so searches for them still land on the right answers.
 *
 * YAML is read with 1.1 rules as the anchor's Psych does (`yes`/`no` are booleans), except where the
 * anchor's result surprises users (§10.25): `mode: 0644` means 0644, `version: "0.0"` is accepted,
 * and `sudo: "false"` means false.
 */

export interface ParseOptions {
  /** The platform the agent runs on; `os` must name it. Default: this machine's. */
  platform?: Platform;
  /**
   * The custom events of a local run (`--events` names that are not lifecycle events). When given, an
   * event under hooks that is neither a lifecycle event nor one of these is an error: its scripts would
   * never run (`AfterInstal:`). Undefined for the daemon, where the service decides the events: a warning.
   */
  customEvents?: readonly string[];
}

export interface LoadOptions extends ParseOptions {
  /** Receives each warning (unknown keys, relative paths, …); by default they are dropped. */
  onWarning?: (warning: AppSpecProblem) => void;
}

export interface ParseResult {
  /** Present only when there are no problems. */
  spec?: AppSpec;
  problems: AppSpecProblem[];
  warnings: AppSpecProblem[];
  /** The scripts and files that could be read, even when other parts have problems (for checks against the bundle). */
  sections?: Pick<AppSpec, 'hooks' | 'files'>;
  /** Where each hook script's location and each files entry's source was written. */
  positions: Map<HookScript | FileMapping, SourcePosition>;
}

const TOP_LEVEL_KEYS = ['version', 'os', 'files', 'permissions', 'hooks', 'file_exists_behavior'];

const EMPTY_FILE =
  "The deployment failed because the application specification file was empty. Make sure your AppSpec file defines at minimum the 'version' and 'os' properties.";

export function parseAppSpec(text: string, file: string, options: ParseOptions = {}): ParseResult {
  const platform = options.platform ?? (process.platform === 'win32' ? 'windows' : 'linux');
  const positions = new Map<HookScript | FileMapping, SourcePosition>();
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { version: '1.1', uniqueKeys: false, prettyErrors: false, lineCounter });
  const emptyResult = (): ParseResult => ({
    problems: [{ file, line: 1, col: 1, message: EMPTY_FILE, hint: 'start the file with "version: 0.0" and "os: linux"' }],
    warnings: [],
    positions,
  });
  if (!Array.isArray(documents) || documents.length === 0) return emptyResult();

  // Psych reads only the first document of a stream, and so do we.
  const doc = documents[0];
  if (doc.errors.length > 0) {
    return { problems: doc.errors.map((error) => syntaxProblem(error, file, lineCounter)), warnings: [], positions };
  }
  const reader = new AppSpecReader(doc as Document, lineCounter, file);
  if (documents.length > 1) {
    const second = documents[1].contents as Node | null;
    reader.warn(second ?? (doc.contents as Node), 'the file holds more than one YAML document; only the first is read', 'remove the --- line and what follows it, or merge the documents');
  }
  for (const warning of doc.warnings) reader.warnings.push(syntaxProblem(warning, file, lineCounter));

  const root = reader.resolve(doc.contents);
  // The anchor treats a document that is `false` like an empty one (`unless yaml_hash`).
  if (root === undefined || (isScalar(root) && root.value === false)) return { ...emptyResult(), warnings: reader.warnings };
  if (!isMap(root)) {
    reader.wrongType(root, 'the AppSpec file', 'a mapping of keys such as version, os, files and hooks', root, 'start the file with "version: 0.0" and "os: linux" on their own lines');
    return { problems: reader.problems, warnings: reader.warnings, positions };
  }

  const entries = reader.entries(root);
  for (const [key, entry] of entries) {
    if (TOP_LEVEL_KEYS.includes(key)) continue;
    const suggestion = closestName(key, TOP_LEVEL_KEYS);
    reader.warn(entry.keyNode, `unknown top-level key ${key} is ignored`, suggestion ? `did you mean ${suggestion}?` : `the keys are ${TOP_LEVEL_KEYS.join(', ')}`);
  }
  const section = (key: string): MapEntry => entries.get(key) ?? { key, keyNode: root, value: undefined, at: root };

  // The anchor's order of checks: version, os, hooks, files, permissions, file_exists_behavior.
  const version = parseVersion(reader, entries.get('version'), root);
  const os = parseOs(reader, entries.get('os'), root, platform);
  const hooks = parseHooks(reader, section('hooks'), positions, options.customEvents);
  const files = parseFiles(reader, section('files'), positions);
  const permissions = parsePermissions(reader, section('permissions'), os.written);
  const fileExistsBehavior = parseFileExistsBehavior(reader, entries.get('file_exists_behavior'));

  if (reader.problems.length > 0 || version === undefined || os.os === undefined || fileExistsBehavior === null) {
    return { problems: reader.problems, warnings: reader.warnings, sections: { hooks, files }, positions };
  }
  const spec: AppSpec = { version, os: os.os, files, permissions, hooks, path: file };
  if (fileExistsBehavior !== undefined) spec.fileExistsBehavior = fileExistsBehavior;
  return { spec, problems: [], warnings: reader.warnings, sections: { hooks, files }, positions };
}

/** Reads and parses one appspec file; throws `AppSpecError` listing every problem. */
export function loadAppSpec(path: string, options: LoadOptions = {}): AppSpec {
  const text = readAppSpecText(path);
  const result = parseAppSpec(text, path, options);
  for (const warning of result.warnings) options.onWarning?.(warning);
  if (!result.spec) throw new AppSpecError(result.problems);
  return result.spec;
}

/** The appspec of an unpacked revision, found with `findAppSpec`. */
export function loadAppSpecFromDir(archiveDir: string, name?: string, options: LoadOptions = {}): AppSpec {
  return loadAppSpec(findAppSpec(archiveDir, name), options);
}

function syntaxProblem(error: YAMLError, file: string, lineCounter: LineCounter): AppSpecProblem {
  const { line, col } = lineCounter.linePos(error.pos[0]);
  const message = error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  const hint =
    error.code === 'TAB_AS_INDENT'
      ? 'indent with spaces; YAML does not allow tabs for indentation'
      : error.code === 'DUPLICATE_KEY'
        ? 'remove one of the two keys'
        : 'check the indentation and quoting on this line and the one before it';
  return { file, line, col, message: `YAML syntax error: ${message}`, hint };
}
