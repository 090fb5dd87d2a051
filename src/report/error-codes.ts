/**
 * Numeric lifecycle error codes the agent reports in its diagnostics payload (AWS's numbers; docs/compatibility.md).
 * The service maps 0–5 to the public LifecycleErrorCode names; 6 and 7 are agent-only.
 */
export const ErrorCode = {
  Succeeded: 0,
  ScriptMissing: 1,
  ScriptNotExecutable: 2,
  ScriptTimedOut: 3,
  ScriptFailed: 4,
  UnknownError: 5,
  OutputsLeftOpen: 6,
  FailedAfterRestart: 7,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;
export type ErrorCodeValue = (typeof ErrorCode)[ErrorCodeName];

export function errorCodeName(code: number): ErrorCodeName {
  const entry = Object.entries(ErrorCode).find(([, value]) => value === code);
  return (entry?.[0] as ErrorCodeName | undefined) ?? 'UnknownError';
}
