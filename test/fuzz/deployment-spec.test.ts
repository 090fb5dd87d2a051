import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { openEnvelope, PKCS7_JSON, TEXT_JSON, type OpenedEnvelope } from '../../src/deployment/envelope.js';
import { parseDeploymentSpec } from '../../src/deployment/spec.js';
import type { DeploymentSpec } from '../../src/deployment/spec-types.js';
import { DeploymentSpecError } from '../../src/report/errors.js';
import { signJson, toPem } from '../doubles/pkcs7.js';
import { anyJson, anyText, fuzz, mutatedBytes, parseOrTypedError, settleOrTypedError, testTimeout, usuallyOr } from './fuzz.js';

/**
 * The deployment specification comes from the commands service inside a PKCS7 envelope. For any
 * envelope: the signed JSON (with a signature status) or a DeploymentSpecError; for any JSON: a spec
 * whose fields are what the rest of the agent expects, or a DeploymentSpecError.
 */

const jsonValue = anyJson(['', '.', '..', 'a/b', 'tar', 'zip', 'tgz', 'directory', 'S3', 'GitHub', 'Local File', 'Local Directory', 'arn:aws:codedeploy:us-east-1:1:deployment/d-1', 'arn:x']);
const either = <T>(usual: fc.Arbitrary<T>) => usuallyOr(usual, jsonValue);

const revision = fc.oneof(
  fc.record({
    RevisionType: either(fc.constant('S3')),
    S3Revision: either(fc.record({ Bucket: either(fc.string()), Key: either(fc.string()), BundleType: either(fc.constantFrom('tar', 'tgz', 'zip')), Version: either(fc.string()), ETag: either(fc.string()) }, { requiredKeys: [] })),
  }, { requiredKeys: [] }),
  fc.record({
    RevisionType: either(fc.constant('GitHub')),
    GitHubRevision: either(fc.record({ Account: either(fc.string()), Repository: either(fc.string()), CommitId: either(fc.string()), BundleType: either(fc.constantFrom('tar', 'zip')), Anonymous: either(fc.boolean()), OAuthToken: either(fc.string()) }, { requiredKeys: [] })),
  }, { requiredKeys: [] }),
  fc.record({
    RevisionType: either(fc.constantFrom('Local File', 'Local Directory')),
    LocalRevision: either(fc.record({ Location: either(fc.string()), BundleType: either(fc.constantFrom('tar', 'tgz', 'zip', 'directory')) }, { requiredKeys: [] })),
  }, { requiredKeys: [] }),
);

const specObject = fc.record({
  DeploymentId: either(fc.oneof(fc.constant('d-ABCDEFGHI'), fc.string().map((id) => `arn:aws:codedeploy:us-east-1:123412341234:deployment/${id}`))),
  DeploymentGroupId: either(fc.string()),
  DeploymentGroupName: either(fc.string()),
  ApplicationName: either(fc.string()),
  DeploymentCreator: either(fc.constantFrom('user', 'codeDeployRollback', 'autoscaling')),
  DeploymentType: either(fc.constantFrom('IN_PLACE', 'BLUE_GREEN')),
  AppSpecFilename: either(fc.string()),
  AgentActionOverrides: either(fc.record({ AgentOverrides: either(fc.record({ FileExistsBehavior: either(fc.constantFrom('overwrite', 'RETAIN')) })) })),
  AllPossibleLifecycleEvents: either(fc.array(fc.string(), { maxLength: 3 })),
  GitHubAccessToken: either(fc.string()),
  Revision: either(revision),
}, { requiredKeys: [] });

function isPlainString(value: unknown): boolean {
  return typeof value === 'string';
}

function checkSpec(spec: DeploymentSpec): void {
  for (const field of [spec.deploymentId, spec.deploymentGroupId, spec.deploymentGroupName, spec.applicationName, spec.deploymentCreator, spec.deploymentType, spec.appSpecFilename]) {
    expect(isPlainString(field)).toBe(true);
  }
  // They name folders under the deployment root.
  for (const segment of [spec.deploymentId, spec.deploymentGroupId]) {
    expect(segment).not.toBe('');
    expect(['.', '..']).not.toContain(segment);
    expect(segment).not.toMatch(/[/\\\0]/);
  }
  const r = spec.revision;
  switch (r.type) {
    case 'S3':
      expect([r.bucket, r.key].every((value) => isPlainString(value) && value !== '')).toBe(true);
      expect(['tar', 'tgz', 'zip']).toContain(r.bundleType);
      if (r.version !== undefined) expect(isPlainString(r.version)).toBe(true);
      if (r.etag !== undefined) expect(isPlainString(r.etag)).toBe(true);
      break;
    case 'GitHub':
      expect([r.account, r.repository, r.commitId].every((value) => isPlainString(value) && value !== '')).toBe(true);
      if (r.bundleType !== undefined) expect(['tar', 'zip']).toContain(r.bundleType);
      break;
    case 'Local File':
    case 'Local Directory':
      expect(isPlainString(r.location) && r.location !== '').toBe(true);
      break;
    default:
      throw new Error(`unknown revision type ${JSON.stringify(r)}`);
  }
  if (spec.allPossibleLifecycleEvents) expect(spec.allPossibleLifecycleEvents.every(isPlainString)).toBe(true);
  if (spec.fileExistsBehavior !== undefined) expect(isPlainString(spec.fileExistsBehavior)).toBe(true);
  if (spec.gitHubAccessToken !== undefined) expect(isPlainString(spec.gitHubAccessToken)).toBe(true);
}

function specCase(json: string): void {
  const spec = parseOrTypedError(() => parseDeploymentSpec(json), [DeploymentSpecError]);
  if (spec) checkSpec(spec);
}

const SIGNED_JSON = [
  JSON.stringify({ DeploymentId: 'd-ABCDEFGHI', DeploymentGroupId: 'g', DeploymentGroupName: 'group', ApplicationName: 'app', Revision: { RevisionType: 'S3', S3Revision: { Bucket: 'b', Key: 'k.tgz', BundleType: 'tgz' } } }),
  '{}',
  'not json at all',
];
let signed: { json: string; der: Buffer }[] = [];

beforeAll(async () => {
  signed = await Promise.all(SIGNED_JSON.map(async (json) => ({ json, der: Buffer.from(await signJson(json, { outform: 'DER' }), 'base64') })));
});

describe('fuzz: deployment specification JSON', () => {
  const budget = { runs: 600, timeMs: 1_500 };

  it('any text', { timeout: testTimeout(budget.timeMs) }, async () => {
    await fuzz(import.meta.url, fc.property(anyText(300), specCase), budget);
  });

  it('spec-shaped JSON with values of every type', { timeout: testTimeout(budget.timeMs) }, async () => {
    await fuzz(import.meta.url, fc.property(specObject.map((spec) => JSON.stringify(spec)), specCase), budget);
  });
});

describe('fuzz: the PKCS7 envelope', () => {
  const budget = { runs: 300, timeMs: 3_000 };

  async function envelopeCase(envelope: { Format?: unknown; Payload?: unknown }, original?: string): Promise<void> {
    const opened = await settleOrTypedError<OpenedEnvelope>(
      () => openEnvelope(envelope as { Format?: string; Payload?: string }, { allowText: false }),
      [DeploymentSpecError],
    );
    if (opened === undefined) return;
    expect(typeof opened.json).toBe('string');
    expect(['valid', 'invalid', 'unsigned']).toContain(opened.signature);
    // A signature that still verifies after a mutation must vouch for exactly what was signed.
    if (opened.signature === 'valid' && original !== undefined) expect(opened.json).toBe(original);
    specCase(opened.json);
  }

  function payload(form: string, der: Buffer): string {
    if (form === 'pem') return toPem(der);
    if (form === 'base64') return der.toString('base64');
    return der.toString('latin1');
  }

  it('mutated signed envelopes', { timeout: testTimeout(budget.timeMs) }, async () => {
    // Built here: the signed envelopes exist only once beforeAll has run.
    const mutated = fc.tuple(fc.nat({ max: signed.length - 1 }), fc.constantFrom('pem', 'base64', 'binary'))
      .chain(([index, form]) => mutatedBytes(signed[index].der, 6).map((der) => ({ index, form, der })));
    await fuzz(import.meta.url, fc.asyncProperty(mutated, async ({ index, form, der }) => {
      await envelopeCase({ Format: PKCS7_JSON, Payload: payload(form, der) }, signed[index].json);
    }), budget);
  });

  it('unmutated envelopes still open (the mutations above start from real ones)', async () => {
    for (const { json, der } of signed) {
      for (const form of ['pem', 'base64', 'binary']) {
        const opened = await openEnvelope({ Format: PKCS7_JSON, Payload: payload(form, der) }, { allowText: false });
        expect(opened).toMatchObject({ json, signature: 'valid' });
      }
    }
  });

  it('any format and payload', { timeout: testTimeout(budget.timeMs) }, async () => {
    const envelope = fc.record({
      Format: fc.oneof(fc.constantFrom(PKCS7_JSON, TEXT_JSON, 'JSON', ''), jsonValue),
      Payload: fc.oneof(anyText(400), fc.uint8Array({ maxLength: 400 }).map((bytes) => Buffer.from(bytes).toString('base64')), jsonValue),
    }, { requiredKeys: [] });
    await fuzz(import.meta.url, fc.asyncProperty(envelope, async (value) => envelopeCase(value)), budget);
  });
});
