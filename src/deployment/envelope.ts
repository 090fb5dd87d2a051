import { X509Certificate } from 'node:crypto';
import { DeploymentSpecError } from '../report/errors.js';

/**
 * Opens the `GenericEnvelope` of a deployment specification (`PKCS7/JSON`; `TEXT/JSON` only for local runs) and returns its JSON text.
 *
 * About trust: AWS's agent "verifies" with OpenSSL's NOVERIFY flag and ignores the result, so any
 * well-formed PKCS7 is accepted. We check what can be checked without a trust anchor — that the
 * signature verifies against the signer certificate the PKCS7 carries — and report the signer's subject.
 * We do NOT validate that certificate's chain against AWS's agent's `certs/host-agent-deployment-signer-ca-chain.pem`:
 * three of its four CAs expired between 2020 and 2023 and the service's current signer is not known to
 * chain to the fourth, so chain validation would reject every real deployment. Whether an `invalid`
 * signature stops the deployment is the caller's policy (`enforce_deployment_spec_signature`, or
 * `requireValidSignature` here); by default the content is used as AWS's agent does.
 */

export type SignatureStatus = 'valid' | 'invalid' | 'unsigned' | 'not-applicable';

export interface Envelope {
  Format?: string | null;
  Payload?: string | null;
}

export interface OpenedEnvelope {
  /** The encapsulated JSON document, as text. */
  json: string;
  /**
   * `valid`: the signature verifies against the embedded signer certificate; `invalid`: it does not (or
   * the signer certificate is absent); `unsigned`: a SignedData without signers; `not-applicable`: TEXT/JSON.
   */
  signature: SignatureStatus;
  /** The signer certificate's subject, OpenSSL style: `/C=US/ST=Washington/.../CN=codedeploy-signer-...`. */
  signer?: string;
  /** Why the signature is `invalid`. */
  signatureProblem?: string;
}

export interface OpenEnvelopeOptions {
  /** TEXT/JSON is only for `codedeploy-local`. */
  allowText: boolean;
  /** Throw instead of returning an `invalid` or `unsigned` result. */
  requireValidSignature?: boolean;
}

export const PKCS7_JSON = 'PKCS7/JSON';
export const TEXT_JSON = 'TEXT/JSON';

const ID_SIGNED_DATA = '1.2.840.113549.1.7.2';

function fail(message: string): never {
  throw new DeploymentSpecError(message);
}

export async function openEnvelope(envelope: Envelope | null | undefined, options: OpenEnvelopeOptions): Promise<OpenedEnvelope> {
  if (envelope === null || envelope === undefined) fail('Provided deployment spec was nil');
  const format: unknown = envelope.Format;
  const payload: unknown = envelope.Payload ?? '';
  if (format !== TEXT_JSON && format !== PKCS7_JSON) {
    fail(`Unsupported DeploymentSpecification format: ${typeof format === 'string' ? format : format === null || format === undefined ? '' : JSON.stringify(format)}`);
  }
  // The service's JSON is not checked against the model on the way in: a Payload can be anything.
  if (typeof payload !== 'string') fail(`The DeploymentSpecification Payload must be text, but it is ${Array.isArray(payload) ? 'a list' : typeof payload}`);
  if (format === TEXT_JSON) {
    if (options.allowText) return { json: payload, signature: 'not-applicable' };
    fail(`Unsupported DeploymentSpecification format: ${format}`);
  }
  const opened = await openPkcs7(payload);
  if (options.requireValidSignature && opened.signature !== 'valid') {
    fail(`The deployment specification's signature is not valid (${opened.signatureProblem ?? opened.signature})`);
  }
  return opened;
}

/** PEM armour (any label), bare base64, or the DER bytes themselves carried in a binary string. */
export function pkcs7Bytes(payload: string): Uint8Array {
  const armoured = /-----BEGIN [A-Z0-9 ]+-----([\s\S]*?)-----END [A-Z0-9 ]+-----/.exec(payload);
  if (armoured) return Buffer.from(armoured[1].replace(/\s+/g, ''), 'base64');
  const compact = payload.replace(/\s+/g, '');
  if (compact.length > 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return Buffer.from(compact, 'base64');
  return Buffer.from(payload, 'latin1');
}

async function openPkcs7(payload: string): Promise<OpenedEnvelope> {
  // pkijs and asn1js are large; load them only when a deployment arrives so an idle daemon stays small.
  const [asn1js, pkijs] = await Promise.all([import('asn1js'), import('pkijs')]);
  const bytes = pkcs7Bytes(payload);
  let signedData: InstanceType<typeof pkijs.SignedData>;
  try {
    // fromBER reports most damage in `offset`, but throws on some (a malformed time, for one).
    const parsed = asn1js.fromBER(bytes);
    if (parsed.offset === -1 || bytes.length === 0) fail('Could not parse the PKCS7: nested asn1 error');
    const contentInfo = new pkijs.ContentInfo({ schema: parsed.result });
    if (contentInfo.contentType !== ID_SIGNED_DATA) {
      fail(`Could not parse the PKCS7: expected SignedData (${ID_SIGNED_DATA}), got content type ${contentInfo.contentType}`);
    }
    signedData = new pkijs.SignedData({ schema: contentInfo.content });
  } catch (error) {
    if (error instanceof DeploymentSpecError) throw error;
    fail('Could not parse the PKCS7: nested asn1 error');
  }

  const eContent = signedData.encapContentInfo.eContent;
  if (!eContent) fail('The PKCS7 deployment specification carries no content');
  const json = Buffer.from(eContent.getValue()).toString('utf8');

  if (signedData.signerInfos.length === 0) return { json, signature: 'unsigned' };
  try {
    const result = await signedData.verify({ signer: 0, checkChain: false, extendedMode: true });
    const signer = subjectOf(result.signerCertificate);
    return result.signatureVerified
      ? { json, signature: 'valid', signer }
      : { json, signature: 'invalid', signer, signatureProblem: 'the signature does not match the content' };
  } catch (error) {
    const certificate = (error as { signerCertificate?: unknown }).signerCertificate;
    const problem = (error as Error).message || String(error);
    return { json, signature: 'invalid', signer: subjectOf(certificate), signatureProblem: problem };
  }
}

function subjectOf(certificate: unknown): string | undefined {
  if (!certificate || typeof (certificate as { toSchema?: unknown }).toSchema !== 'function') return undefined;
  try {
    const der = (certificate as { toSchema(): { toBER(): ArrayBuffer } }).toSchema().toBER();
    const subject = new X509Certificate(Buffer.from(der)).subject;
    // Node escapes `,` `+` `"` … with a backslash (`O=Amazon.com\, Inc.`); OpenSSL's one-line form does not.
    return `/${subject.split('\n').map((part) => part.replace(/\\(.)/g, '$1')).join('/')}`;
  } catch {
    return undefined;
  }
}
