import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { summarize } from '../../src/deployment/deployment-history.js';
import { DeploymentRecorder, readDeploymentRecord, type DeploymentRecord } from '../../src/deployment/deployment-record.js';
import { ScriptError } from '../../src/report/errors.js';
import { processStartTime } from '../../src/util/process-start-time.js';
import { makeTempDir } from '../helpers/tmp.js';

/** The record `logs` reads: what the recorder writes, and what a record says about its deployment. */
const tmp = makeTempDir('cda-record-');
afterAll(tmp.cleanup);

const spec = { deploymentId: 'd-RECORD123', deploymentGroupId: 'group-id', deploymentGroupName: 'GroupName', applicationName: 'App' };

function record(origin: DeploymentRecord['origin'], events: DeploymentRecord['events'], writer: Partial<DeploymentRecord> = {}): DeploymentRecord {
  return {
    ...spec,
    origin,
    pid: process.pid,
    pidStartedAt: processStartTime(process.pid)?.toISOString(),
    startedAt: '2024-05-01T12:00:00.000Z',
    updatedAt: '2024-05-01T12:00:10.000Z',
    events,
    ...writer,
  };
}

const done = (event: string, extra: Partial<DeploymentRecord['events'][number]> = {}) => ({ event, startedAt: '2024-05-01T12:00:00.000Z', finishedAt: '2024-05-01T12:00:05.000Z', status: 'Succeeded' as const, ...extra });
const running = (event: string) => ({ event, startedAt: '2024-05-01T12:00:06.000Z', status: 'Running' as const });

describe('DeploymentRecorder', () => {
  it('records each event as it starts and ends, with the first line of an error and its code', () => {
    const recorder = new DeploymentRecorder(tmp.dir, spec, 'local');
    recorder.eventStarted('BeforeInstall');
    expect(readDeploymentRecord(recorder.file)?.events).toEqual([expect.objectContaining({ event: 'BeforeInstall', status: 'Running' })]);
    recorder.eventFinished('BeforeInstall', 'Succeeded', { noop: true });
    recorder.eventStarted('AfterInstall');
    recorder.eventFinished('AfterInstall', 'Failed', { error: new ScriptError(4, 'scripts/a.sh', 'Script at specified location: scripts/a.sh failed with exit code 3\nmore') });
    const written = readDeploymentRecord(recorder.file) as DeploymentRecord;
    expect(recorder.file).toBe(join(tmp.dir, 'group-id', 'd-RECORD123', 'logs', 'deployment.json'));
    expect(written).toMatchObject({ ...spec, origin: 'local', pid: process.pid });
    expect(written.events).toEqual([
      expect.objectContaining({ event: 'BeforeInstall', status: 'Succeeded', noop: true }),
      expect.objectContaining({ event: 'AfterInstall', status: 'Failed', errorCode: 4, errorName: 'ScriptFailed', message: 'Script at specified location: scripts/a.sh failed with exit code 3' }),
    ]);
  });

  it('never fails the deployment: a record it cannot write is reported once', () => {
    const blocked = join(tmp.dir, 'a-file');
    writeFileSync(blocked, '');
    const reports: string[] = [];
    const recorder = new DeploymentRecorder(blocked, spec, 'daemon', (message) => reports.push(message));
    recorder.eventStarted('Install');
    recorder.eventFinished('Install', 'Succeeded');
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatch(/^Could not write .*deployment\.json: /);
  });
});

describe('summarize', () => {
  it('a failed event: Failed, with the event, code and error', () => {
    const summary = summarize(record('local', [done('BeforeInstall'), done('AfterInstall', { status: 'Failed', errorCode: 4, errorName: 'ScriptFailed', message: 'boom' })], { pid: 999_999_999 }));
    expect(summary).toMatchObject({ result: 'Failed', failedEvent: 'AfterInstall', errorCode: 4, errorName: 'ScriptFailed', error: 'boom', durationSeconds: 5 });
  });

  it('an event running in a live process: Running; in a process gone or replaced under its pid: Stopped', () => {
    expect(summarize(record('daemon', [done('Install'), running('AfterInstall')]))).toMatchObject({ result: 'Running', runningEvent: 'AfterInstall' });
    expect(summarize(record('daemon', [running('AfterInstall')], { pid: 999_999_999 })).result).toBe('Stopped');
    expect(summarize(record('local', [running('AfterInstall')], { pidStartedAt: '2001-01-01T00:00:00.000Z' })).result).toBe('Stopped');
  });

  it('between two events: a local run whose process lives is Running; the daemon\'s deployment has succeeded so far', () => {
    expect(summarize(record('local', [done('Install')])).result).toBe('Running');
    expect(summarize(record('local', [done('Install')], { pid: 999_999_999 })).result).toBe('Succeeded');
    expect(summarize(record('daemon', [done('Install')])).result).toBe('Succeeded');
  });
});
