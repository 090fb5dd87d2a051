import { ErrorCode } from '../report/error-codes.js';
import { ArchiveError } from '../report/errors.js';

/** AWS's agent's wording when unzip exits 50; used for every full-disk failure here. */
export const DISK_FULL_MESSAGE = 'The disk is (or was) full during extraction.';

/**
 * What a failed unpack or copy throws: the abort reason when it was cancelled, a refusal as is, the
 * AWS's disk-full message for ENOSPC (and EDQUOT, a full quota), otherwise an ArchiveError
 * prefixed AWS's way (`Error extracting tar archive: <reason>`).
 */
export function toArchiveFailure(error: unknown, prefix: string, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason;
  if (error instanceof ArchiveError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new ArchiveError(DISK_FULL_MESSAGE, ErrorCode.UnknownError, { cause: error });
  const reason = error instanceof Error ? error.message : String(error);
  return new ArchiveError(`${prefix}: ${reason}`, ErrorCode.UnknownError, { cause: error });
}
