import { ServiceError } from '../report/errors.js';
import { redact } from '../log/redact.js';

/**
 * Decoding AWS JSON 1.1 error answers and sorting failures into throttling / retryable / final, for the
 * commands client's own retries and for the poller's backoff (agent-spec §1.7).
 */

/** The connection failed or broke before an answer (reset, refused, DNS, TLS, proxy). */
export const NETWORKING_ERROR = 'NetworkingError';
/** No complete answer within `http_read_timeout`. */
export const TIMEOUT_ERROR = 'TimeoutError';

export const THROTTLING_ERROR_TYPES: ReadonlySet<string> = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'LimitExceededException',
  'RequestThrottled',
  'SlowDown',
  'PriorRequestNotComplete',
  'EC2ThrottledException',
]);

const TRANSIENT_ERROR_TYPES: ReadonlySet<string> = new Set([
  NETWORKING_ERROR,
  TIMEOUT_ERROR,
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalFailure',
  'InternalError',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'ServerException',
  'IDPCommunicationError',
]);

export const CLOCK_SKEW_ERROR_TYPES: ReadonlySet<string> = new Set([
  'RequestTimeTooSkewed',
  'RequestExpired',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'AuthFailure',
  'RequestInTheFuture',
]);

/** The service refused who we are: wrong, unknown, expired or unauthorised credentials (or a signature for another region). */
export const AUTH_ERROR_TYPES: ReadonlySet<string> = new Set([
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'ExpiredTokenException',
  'ExpiredToken',
  'AccessDeniedException',
  'AccessDenied',
]);

export function isAuthError(error: unknown): boolean {
  return error instanceof ServiceError && AUTH_ERROR_TYPES.has(error.errorType);
}

/** `com.amazon.coral.service#ThrottlingException` → `ThrottlingException`; also the `x-amzn-errortype` form `Type:http://...`. */
export function stripErrorType(raw: string): string {
  let type = raw.trim();
  const colon = type.indexOf(':');
  if (colon >= 0) type = type.slice(0, colon);
  const hash = type.lastIndexOf('#');
  if (hash >= 0) type = type.slice(hash + 1);
  return type;
}

/** A non-2xx answer of `operation` → ServiceError with the service's error type, status and body. */
export function decodeServiceError(operation: string, statusCode: number, body: string, errorTypeHeader?: string): ServiceError {
  let parsed: Record<string, unknown> = {};
  let isJson = true;
  try {
    const value: unknown = JSON.parse(body);
    if (value && typeof value === 'object' && !Array.isArray(value)) parsed = value as Record<string, unknown>;
  } catch {
    isJson = false; // a proxy's or load balancer's page; keep the status
  }
  const rawType =
    (typeof parsed.__type === 'string' && parsed.__type) ||
    (typeof parsed.code === 'string' && parsed.code) ||
    (typeof parsed.Code === 'string' && parsed.Code) ||
    errorTypeHeader ||
    (statusCode >= 500 ? 'ServerException' : statusCode === 429 ? 'ThrottlingException' : 'ClientException');
  const errorType = stripErrorType(rawType);
  // A body that is not the service's JSON is usually a proxy's or load balancer's page: its text says who answered.
  const serviceMessage = [parsed.message, parsed.Message, parsed.errorMessage].find((m): m is string => typeof m === 'string')
    ?? (isJson ? '' : textOf(body));
  const message = redact(`${operation}: ${errorType} (HTTP ${statusCode})${serviceMessage ? `: ${serviceMessage}` : ''}`);
  return new ServiceError(errorType, statusCode, message, redact(body.slice(0, 4096)));
}

/** A failure before an answer: connection reset/refused, DNS, TLS, proxy, or the read timeout. */
export function transportError(operation: string, kind: typeof NETWORKING_ERROR | typeof TIMEOUT_ERROR, detail: string, cause?: unknown): ServiceError {
  const error = new ServiceError(kind, 0, redact(`${operation}: ${kind === TIMEOUT_ERROR ? 'timed out' : 'network error'}: ${detail}`), '');
  if (cause !== undefined) Object.defineProperty(error, 'cause', { value: cause, enumerable: false });
  return error;
}

export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof ServiceError;
}

/** The service asks us to slow down: throttling error types, HTTP 429, or "throttl…"/"rate exceeded" text. */
export function isThrottlingError(error: unknown): boolean {
  if (error instanceof ServiceError) {
    if (THROTTLING_ERROR_TYPES.has(error.errorType) || error.statusCode === 429) return true;
  }
  if (error instanceof Error) return /throttl|rate ?exceeded/i.test(error.message);
  return false;
}

/** Worth another try: throttling, 5xx, network failures and timeouts. */
export function isRetryableError(error: unknown): boolean {
  if (isThrottlingError(error)) return true;
  if (!(error instanceof ServiceError)) return false;
  return error.statusCode >= 500 || TRANSIENT_ERROR_TYPES.has(error.errorType);
}

/**
 * Failures that are not the service's answer to this request (our signing clock was just corrected, or a
 * pooled socket had gone stale): worth one more try at once, even where no retries were asked for.
 */
export function markRetryAtOnce(error: ServiceError): void {
  Object.defineProperty(error, 'retryAtOnce', { value: true });
}

export function isRetryAtOnce(error: unknown): boolean {
  return (error as { retryAtOnce?: boolean } | undefined)?.retryAtOnce === true;
}

/** The readable text of a non-JSON answer (tags and runs of whitespace removed), cut to 200 characters. */
function textOf(body: string): string {
  const text = body.replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
