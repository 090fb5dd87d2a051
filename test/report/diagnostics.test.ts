import { describe, expect, it } from 'vitest';
import {
  ackDiagnostics,
  diagnosticsEnvelope,
  failedAfterRestartDiagnostics,
  failureDiagnostics,
  MAX_PAYLOAD_CHARS,
  noopCompletionDiagnostics,
  successDiagnostics,
} from '../../src/report/diagnostics.js';
import { AgentError, ScriptError } from '../../src/report/errors.js';
import { ErrorCode } from '../../src/report/error-codes.js';

describe('diagnostics payloads', () => {
  it('keeps AWS\'s key order and formats', () => {
    expect(successDiagnostics()).toEqual({ Format: 'JSON', Payload: '{"error_code":0,"script_name":"","message":"Succeeded: ","log":""}' });
    expect(noopCompletionDiagnostics().Payload).toBe('{"error_code":0,"script_name":"","message":"Succeeded: CompletedNoopCommand","log":""}');
    expect(failedAfterRestartDiagnostics().Payload).toBe(
      '{"error_code":7,"script_name":"","message":"Failed: Failing in-progress lifecycle event after an agent restart.","log":""}',
    );
    expect(ackDiagnostics(true)).toEqual({ Format: 'JSON', Payload: '{"IsCommandNoop":true}' });
  });

  it('maps script errors and other errors', () => {
    const script = failureDiagnostics(new ScriptError(ErrorCode.ScriptFailed, 'scripts/start.sh', 'Script at specified location: scripts/start.sh failed with exit code 3', '[stdout]hi\n'));
    expect(JSON.parse(script.Payload)).toEqual({ error_code: 4, script_name: 'scripts/start.sh', message: 'Script at specified location: scripts/start.sh failed with exit code 3', log: '[stdout]hi\n' });
    expect(JSON.parse(failureDiagnostics(new Error('boom')).Payload)).toEqual({ error_code: 5, script_name: '', message: 'boom', log: '' });
    expect(JSON.parse(failureDiagnostics(new AgentError('x')).Payload).error_code).toBe(5);
  });

  it('trims the oldest log under the 8192-character limit, even with characters JSON escapes', () => {
    const log = `${'"\\\n'.repeat(5000)}THE END`;
    const envelope = diagnosticsEnvelope({ error_code: 4, script_name: 's', message: 'm', log });
    expect(envelope.Payload.length).toBeLessThanOrEqual(MAX_PAYLOAD_CHARS);
    expect(envelope.Payload.length).toBeGreaterThan(MAX_PAYLOAD_CHARS - 8);
    const parsed = JSON.parse(envelope.Payload);
    expect(parsed.log.endsWith('THE END')).toBe(true);
    expect(parsed.message).toBe('m');
  });

  it('never splits a surrogate pair and survives a huge message', () => {
    const envelope = diagnosticsEnvelope({ error_code: 4, script_name: 's', message: 'm', log: '😀'.repeat(9000) });
    expect(JSON.parse(envelope.Payload).log).toMatch(/^(😀)+$/u);
    const huge = diagnosticsEnvelope({ error_code: 5, script_name: '', message: 'x'.repeat(20000), log: 'tail' });
    expect(huge.Payload.length).toBeLessThanOrEqual(MAX_PAYLOAD_CHARS);
    expect(JSON.parse(huge.Payload).message).toMatch(/\(truncated\)$/);
  });
});
