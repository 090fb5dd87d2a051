/** Failures of the connection itself, worth a retry, as opposed to local ones such as a full disk. */
const NETWORK_ERROR_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN',
  'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET',
]);

/** The subset where no connection was made at all (the server or the name cannot be reached). */
const CONNECT_ERROR_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN']);

/** The Node error code of `error` or of its cause (the SDK sometimes wraps socket errors). */
export function errorCode(error: unknown): string | undefined {
  const err = error as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = err?.code ?? err?.cause?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isNetworkError(error: unknown): boolean {
  const code = errorCode(error);
  if (code !== undefined) return NETWORK_ERROR_CODES.has(code);
  return /socket hang up|aborted|premature close|ECONNRESET/i.test(String((error as Error | undefined)?.message ?? ''));
}

export function isConnectError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && CONNECT_ERROR_CODES.has(code);
}

/**
 * The endpoint could not be reached: no connection was made, or it timed out (a socket's ETIMEDOUT or the
 * SDK's TimeoutError). The message then names the endpoint to check, not the request.
 */
export function isUnreachable(error: unknown): boolean {
  return isConnectError(error) || errorCode(error) === 'ETIMEDOUT' || (error as { name?: unknown } | undefined)?.name === 'TimeoutError';
}
