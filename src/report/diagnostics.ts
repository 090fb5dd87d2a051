import { ErrorCode } from './error-codes.js';
import { AgentError, ReportedError, ScriptError } from './errors.js';

/** The service's limit on `Diagnostics.Payload` (API model: Envelope.Payload max 8192). */
export const MAX_PAYLOAD_CHARS = 8192;

export interface Envelope {
  Format: string;
  Payload: string;
}

export interface DiagnosticsBody {
  error_code: number;
  script_name: string;
  message: string;
  log: string;
}

/**
 * Serialises the diagnostics object with the anchor's key order (§1.6) and keeps it under the payload
 * limit by trimming the oldest part of the log (and, only if that is not enough, the message), never
 * by cutting the JSON itself.
 */
export function diagnosticsEnvelope(body: DiagnosticsBody): Envelope {
  const ordered = (b: DiagnosticsBody) =>
    JSON.stringify({ error_code: b.error_code, script_name: b.script_name, message: b.message, log: b.log });
  let current = { ...body };
  let payload = ordered(current);
  if (payload.length > MAX_PAYLOAD_CHARS) {
    const withoutLog = ordered({ ...current, log: '' }).length;
    if (withoutLog > MAX_PAYLOAD_CHARS) {
      // A message this long is unusual (the anchor would be rejected by the service); keep its start.
      const room = MAX_PAYLOAD_CHARS - ordered({ ...current, message: '', log: '' }).length - 32;
      current = { ...current, message: `${truncateToJsonLength(current.message, room, 'start')}... (truncated)`, log: '' };
    } else {
      const room = MAX_PAYLOAD_CHARS - withoutLog;
      current = { ...current, log: truncateToJsonLength(current.log, room, 'end') };
    }
    payload = ordered(current);
  }
  return { Format: 'JSON', Payload: payload };
}

/** Longest part of `text` (its start or its end) whose JSON-escaped form fits `room` characters. */
function truncateToJsonLength(text: string, room: number, keep: 'start' | 'end'): string {
  const escapedLength = (s: string) => JSON.stringify(s).length - 2;
  if (room <= 0) return '';
  let low = 0;
  let high = text.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    const candidate = keep === 'end' ? text.slice(text.length - mid) : text.slice(0, mid);
    if (escapedLength(candidate) <= room) low = mid;
    else high = mid - 1;
  }
  let result = keep === 'end' ? text.slice(text.length - low) : text.slice(0, low);
  // Never leave half of a surrogate pair at the cut.
  if (keep === 'end' && /^[\uDC00-\uDFFF]/.test(result)) result = result.slice(1);
  if (keep === 'start' && /[\uD800-\uDBFF]$/.test(result)) result = result.slice(0, -1);
  return result;
}

/** Better than the anchor (§10.6): a successful hook's output tail is reported too. */
export function successDiagnostics(logTail = ''): Envelope {
  return diagnosticsEnvelope({ error_code: ErrorCode.Succeeded, script_name: '', message: 'Succeeded: ', log: logTail });
}

export function noopCompletionDiagnostics(): Envelope {
  return diagnosticsEnvelope({ error_code: ErrorCode.Succeeded, script_name: '', message: 'Succeeded: CompletedNoopCommand', log: '' });
}

export function failedAfterRestartDiagnostics(): Envelope {
  return diagnosticsEnvelope({
    error_code: ErrorCode.FailedAfterRestart,
    script_name: '',
    message: 'Failed: Failing in-progress lifecycle event after an agent restart.',
    log: '',
  });
}

/**
 * ScriptError → its code, script and log tail; an error from the command worker → the diagnostics it made;
 * anything else → UnknownError (5) with its message.
 */
export function failureDiagnostics(error: unknown): Envelope {
  if (error instanceof ReportedError) return error.diagnostics;
  if (error instanceof ScriptError) {
    return diagnosticsEnvelope({ error_code: error.code, script_name: error.scriptName, message: error.message, log: error.logTail });
  }
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof AgentError && error.code !== ErrorCode.Succeeded ? error.code : ErrorCode.UnknownError;
  return diagnosticsEnvelope({ error_code: code, script_name: '', message, log: '' });
}

export function ackDiagnostics(isNoop: boolean): Envelope {
  return { Format: 'JSON', Payload: JSON.stringify({ IsCommandNoop: isNoop }) };
}
