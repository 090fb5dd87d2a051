import { ErrorCode, type ErrorCodeValue } from './error-codes.js';
import type { Envelope } from './diagnostics.js';

/** Base of every error the agent raises on purpose: it carries the code reported to the service. */
export class AgentError extends Error {
  readonly code: ErrorCodeValue;
  constructor(message: string, code: ErrorCodeValue = ErrorCode.UnknownError, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A hook script failed; reported with the script's appspec location and the output tail (§6). */
export class ScriptError extends AgentError {
  readonly scriptName: string;
  readonly logTail: string;
  constructor(code: ErrorCodeValue, scriptName: string, message: string, logTail = '') {
    super(message, code);
    this.scriptName = scriptName;
    this.logTail = logTail;
  }
}

/**
 * An error raised in another process of the agent (the daemon's command worker), as it arrived: its
 * class name, message and code, and the diagnostics that process made of it, reported as they are.
 */
export class ReportedError extends AgentError {
  readonly diagnostics: Envelope;
  constructor(name: string, message: string, code: ErrorCodeValue, diagnostics: Envelope) {
    super(message, code);
    this.name = name;
    this.diagnostics = diagnostics;
  }
}

/** Where a problem sits in a YAML file: 1-based line and column. */
export interface SourcePosition {
  file: string;
  line: number;
  col: number;
}

export interface AppSpecProblem extends Partial<SourcePosition> {
  message: string;
  /** What to write instead. */
  hint?: string;
}

export function formatProblem(problem: AppSpecProblem): string {
  const where = problem.file ? `${problem.file}${problem.line ? `:${problem.line}:${problem.col ?? 1}` : ''}: ` : '';
  return `${where}${problem.message}${problem.hint ? ` (${problem.hint})` : ''}`;
}

/** The appspec is missing or invalid; holds every problem found, not just the first. */
export class AppSpecError extends AgentError {
  readonly problems: AppSpecProblem[];
  constructor(problems: AppSpecProblem[]) {
    super(problems.map(formatProblem).join('\n'), ErrorCode.UnknownError);
    this.problems = problems;
  }
}

/** The agent configuration file is unreadable or holds a value of the wrong type. */
export class ConfigError extends AgentError {}

/** A bundle could not be unpacked safely (traversal, links out of the archive, device nodes...). */
export class ArchiveError extends AgentError {}

/** Install refused or failed; the destination has been restored to its state before Install. */
export class InstallError extends AgentError {}

/**
 * Files the revision would install are already there and file_exists_behavior is DISALLOW; `conflicts`
 * are those files, so a local run can say how to choose (`-b OVERWRITE` / `-b RETAIN`).
 */
export class FileExistsError extends InstallError {
  readonly conflicts: string[];
  constructor(message: string, conflicts: string[]) {
    super(message);
    this.conflicts = conflicts;
  }
}

/** The deployment specification is malformed or unsupported (§2). */
export class DeploymentSpecError extends AgentError {}

/** A revision could not be fetched (S3, GitHub, local). */
export class RevisionError extends AgentError {}

/** The commands service answered with an error. */
export class ServiceError extends AgentError {
  readonly errorType: string;
  readonly statusCode: number;
  readonly body: string;
  constructor(errorType: string, statusCode: number, message: string, body: string) {
    super(message, ErrorCode.UnknownError);
    this.errorType = errorType;
    this.statusCode = statusCode;
    this.body = body;
  }
}

/**
 * A `pre-` operator hook (the host's own hooks folder, not the bundle) failed, timed out or was refused,
 * so the lifecycle event did not run. ScriptFailed (4), or ScriptTimedOut (3) for a timeout: the codes
 * the console already explains; the message names the hook.
 */
export class OperatorHookError extends ScriptError {}
