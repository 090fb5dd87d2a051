import { describe, expect, it } from 'vitest';
import { openEnvelope, pkcs7Bytes } from '../../src/deployment/envelope.js';
import { DeploymentSpecError } from '../../src/report/errors.js';
import { DEFAULT_SIGNER_SUBJECT, makeSigningIdentity, signJson } from '../doubles/pkcs7.js';

const json = JSON.stringify({ DeploymentId: 'd-1', Note: 'ünïcödé' });

describe('openEnvelope', () => {
  it('opens a PEM PKCS7/JSON, verifies the signature and names the signer', async () => {
    const opened = await openEnvelope({ Format: 'PKCS7/JSON', Payload: await signJson(json) }, { allowText: false });
    expect(opened).toEqual({ json, signature: 'valid', signer: DEFAULT_SIGNER_SUBJECT });
  });

  it('accepts base64 DER without armour', async () => {
    const opened = await openEnvelope({ Format: 'PKCS7/JSON', Payload: await signJson(json, { outform: 'DER' }) }, { allowText: false });
    expect(opened.signature).toBe('valid');
    expect(opened.json).toBe(json);
  });

  it('reports a tampered payload as invalid but still returns its content (AWS\'s behaviour)', async () => {
    const opened = await openEnvelope({ Format: 'PKCS7/JSON', Payload: await signJson(json, { tamper: true }) }, { allowText: false });
    expect(opened.signature).toBe('invalid');
    expect(opened.signatureProblem).toMatch(/digest/i);
    expect(JSON.parse(opened.json)).toEqual(JSON.parse(json));
  });

  it('refuses a tampered payload when a valid signature is required', async () => {
    const payload = await signJson(json, { tamper: true });
    await expect(openEnvelope({ Format: 'PKCS7/JSON', Payload: payload }, { allowText: false, requireValidSignature: true }))
      .rejects.toThrow(/signature is not valid/);
  });

  it('a signature whose certificate is not included is invalid', async () => {
    const opened = await openEnvelope({ Format: 'PKCS7/JSON', Payload: await signJson(json, { noCerts: true }) }, { allowText: false });
    expect(opened.signature).toBe('invalid');
    expect(opened.signer).toBeUndefined();
  });

  it('a different signer is reported by subject', async () => {
    const subject = '/C=US/O=Somebody Else/CN=not-codedeploy';
    const identity = await makeSigningIdentity(subject);
    const opened = await openEnvelope({ Format: 'PKCS7/JSON', Payload: await signJson(json, { identity }) }, { allowText: false });
    expect(opened).toMatchObject({ signature: 'valid', signer: subject });
  });

  it('TEXT/JSON only when allowed (codedeploy-local)', async () => {
    await expect(openEnvelope({ Format: 'TEXT/JSON', Payload: json }, { allowText: true })).resolves.toEqual({ json, signature: 'not-applicable' });
    await expect(openEnvelope({ Format: 'TEXT/JSON', Payload: json }, { allowText: false }))
      .rejects.toThrow(new DeploymentSpecError('Unsupported DeploymentSpecification format: TEXT/JSON'));
  });

  it('other formats, null and garbage use AWS\'s messages', async () => {
    await expect(openEnvelope(null, { allowText: false })).rejects.toThrow('Provided deployment spec was nil');
    await expect(openEnvelope(undefined, { allowText: true })).rejects.toThrow('Provided deployment spec was nil');
    await expect(openEnvelope({ Format: 'XML', Payload: '<x/>' }, { allowText: true })).rejects.toThrow('Unsupported DeploymentSpecification format: XML');
    await expect(openEnvelope({ Payload: 'x' }, { allowText: true })).rejects.toThrow('Unsupported DeploymentSpecification format: ');
    const garbage = openEnvelope({ Format: 'PKCS7/JSON', Payload: 'this is not a pkcs7' }, { allowText: false });
    await expect(garbage).rejects.toThrow('Could not parse the PKCS7: nested asn1 error');
    await expect(garbage).rejects.toBeInstanceOf(DeploymentSpecError);
    await expect(openEnvelope({ Format: 'PKCS7/JSON', Payload: '' }, { allowText: false })).rejects.toThrow('Could not parse the PKCS7: nested asn1 error');
  });

  it('a well-formed DER that is not SignedData is refused', async () => {
    // An X.509 certificate is valid DER but no ContentInfo.
    const { certPem } = await makeSigningIdentity();
    await expect(openEnvelope({ Format: 'PKCS7/JSON', Payload: certPem }, { allowText: false })).rejects.toThrow(/^Could not parse the PKCS7/);
  });

  it('pkcs7Bytes understands PEM, bare base64 and binary strings', () => {
    const bytes = Buffer.from([0x30, 0x03, 0x02, 0x01, 0x05]);
    expect(Buffer.from(pkcs7Bytes(`-----BEGIN PKCS7-----\n${bytes.toString('base64')}\n-----END PKCS7-----\n`))).toEqual(bytes);
    expect(Buffer.from(pkcs7Bytes(bytes.toString('base64')))).toEqual(bytes);
    expect(Buffer.from(pkcs7Bytes(bytes.toString('latin1')))).toEqual(bytes);
  });
});

describe('openEnvelope: hostile envelopes (found by test/fuzz/deployment-spec.test.ts)', () => {
  it('a Format or Payload that is not text is a DeploymentSpecError', async () => {
    const format = openEnvelope({ Format: { x: 1 } } as never, { allowText: false });
    await expect(format).rejects.toBeInstanceOf(DeploymentSpecError);
    await expect(format).rejects.toThrow('Unsupported DeploymentSpecification format: {"x":1}');
    const payload = openEnvelope({ Format: 'PKCS7/JSON', Payload: 7 } as never, { allowText: false });
    await expect(payload).rejects.toThrow(new DeploymentSpecError('The DeploymentSpecification Payload must be text, but it is number'));
    await expect(openEnvelope({ Format: 'TEXT/JSON', Payload: ['{}'] } as never, { allowText: true })).rejects.toBeInstanceOf(DeploymentSpecError);
  });

  it('DER that asn1js throws on (a malformed GeneralizedTime) is the usual parse error', async () => {
    const der = Buffer.from([0x30, 0x05, 0x18, 0x03, 0x41, 0x42, 0x43]);
    const opened = openEnvelope({ Format: 'PKCS7/JSON', Payload: der.toString('base64') }, { allowText: false });
    await expect(opened).rejects.toBeInstanceOf(DeploymentSpecError);
    await expect(opened).rejects.toThrow('Could not parse the PKCS7: nested asn1 error');
  });
});

