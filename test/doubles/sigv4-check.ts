/**
 * An independent SigV4 verifier (written from the AWS documentation, not with @smithy/signature-v4, so
 * a mistake in how the client calls the signer cannot cancel itself out). Used by the fake commands
 * service to check every request the way the real service does.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SigV4CheckOptions {
  /** Every pair the service accepts (e.g. the old and the new after a rotation). */
  credentials: readonly SigV4Credentials[];
  region: string;
  service: string;
  /** Allowed difference between X-Amz-Date and now. Default 5 minutes (as AWS). */
  maxSkewMs?: number;
  now?: () => number;
}

export interface ReceivedRequest {
  method: string;
  /** Path with query string, as on the request line. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type SigV4ErrorType =
  | 'MissingAuthenticationTokenException'
  | 'IncompleteSignatureException'
  | 'UnrecognizedClientException'
  | 'InvalidSignatureException';

export type SigV4Result =
  | { ok: true; credentials: SigV4Credentials }
  | { ok: false; status: number; errorType: SigV4ErrorType; message: string };

const ALGORITHM = 'AWS4-HMAC-SHA256';

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** RFC 3986 encoding as SigV4 wants it. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalUri(path: string): string {
  if (path === '' || path === '/') return '/';
  return path
    .split('/')
    .map((segment) => uriEncode(decodeURIComponent(segment)))
    .join('/');
}

function canonicalQuery(query: string): string {
  if (!query) return '';
  return query
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf('=');
      const key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
      const value = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1));
      return [uriEncode(key), uriEncode(value)] as const;
    })
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : value;
}

/** `20240102T030405Z` → epoch ms. */
function parseAmzDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

export function checkSigV4(request: ReceivedRequest, options: SigV4CheckOptions): SigV4Result {
  const deny = (status: number, errorType: SigV4ErrorType, message: string): SigV4Result => ({ ok: false, status, errorType, message });
  const authorization = headerValue(request.headers, 'authorization');
  if (!authorization) return deny(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');

  const match = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(authorization.trim());
  if (!match) return deny(400, 'IncompleteSignatureException', `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters. Authorization=${authorization.split(' ')[0]}`);
  const [, credential, signedHeaderList, signature] = match;
  const scopeParts = credential.split('/');
  if (scopeParts.length !== 5 || scopeParts[4] !== 'aws4_request') {
    return deny(400, 'IncompleteSignatureException', `Credential should have 5 parts: ${scopeParts.length} given`);
  }
  const [accessKeyId, scopeDate, scopeRegion, scopeService] = scopeParts;
  const credentials = options.credentials.find((c) => c.accessKeyId === accessKeyId);
  if (!credentials) return deny(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');

  const amzDate = headerValue(request.headers, 'x-amz-date');
  const signedAt = amzDate ? parseAmzDate(amzDate) : undefined;
  if (!amzDate || signedAt === undefined) return deny(400, 'IncompleteSignatureException', 'Authorization header requires existence of either a \'X-Amz-Date\' or a \'Date\' header.');
  if (amzDate.slice(0, 8) !== scopeDate) return deny(403, 'InvalidSignatureException', `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scopeDate}' != '${amzDate.slice(0, 8)}'`);
  const now = (options.now ?? Date.now)();
  if (Math.abs(now - signedAt) > (options.maxSkewMs ?? 5 * 60_000)) {
    return deny(403, 'InvalidSignatureException', `Signature expired: ${amzDate} is now earlier or later than the allowed window.`);
  }
  if (scopeRegion !== options.region) return deny(403, 'InvalidSignatureException', `Credential should be scoped to a valid region, not '${scopeRegion}'.`);
  if (scopeService !== options.service) return deny(403, 'InvalidSignatureException', `Credential should be scoped to correct service: '${options.service}'.`);

  const token = headerValue(request.headers, 'x-amz-security-token');
  if ((credentials.sessionToken ?? undefined) !== token) {
    return deny(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  }

  const signedHeaders = signedHeaderList.split(';');
  if (!signedHeaders.includes('host')) return deny(403, 'InvalidSignatureException', "'Host' must be a 'SignedHeader' in the AWS Authorization.");
  const sorted = [...signedHeaders].sort();
  if (sorted.join(';') !== signedHeaderList) return deny(403, 'InvalidSignatureException', SIGNATURE_MISMATCH);
  let canonicalHeaders = '';
  for (const name of signedHeaders) {
    const value = headerValue(request.headers, name);
    if (value === undefined) return deny(403, 'InvalidSignatureException', SIGNATURE_MISMATCH);
    canonicalHeaders += `${name}:${value.trim().replace(/\s+/g, ' ')}\n`;
  }

  const payloadHash = sha256Hex(request.body);
  const claimedHash = headerValue(request.headers, 'x-amz-content-sha256');
  if (claimedHash !== undefined && claimedHash !== 'UNSIGNED-PAYLOAD' && claimedHash !== payloadHash) {
    return deny(400, 'InvalidSignatureException', 'The provided x-amz-content-sha256 header does not match what was computed.');
  }

  const [path, query = ''] = request.url.split('?', 2) as [string, string?];
  const canonicalRequest = [request.method, canonicalUri(path), canonicalQuery(query), canonicalHeaders, signedHeaderList, payloadHash].join('\n');
  const scope = `${scopeDate}/${scopeRegion}/${scopeService}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const kDate = hmac(`AWS4${credentials.secretAccessKey}`, scopeDate);
  const kRegion = hmac(kDate, scopeRegion);
  const kService = hmac(kRegion, scopeService);
  const kSigning = hmac(kService, 'aws4_request');
  const expected = createHmac('sha256', kSigning).update(stringToSign, 'utf8').digest();
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return deny(403, 'InvalidSignatureException', SIGNATURE_MISMATCH);
  }
  return { ok: true, credentials };
}
