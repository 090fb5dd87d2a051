/**
 * The clock requests are signed with. When the commands service refuses a signature for its time and its
 * Date header is far from our clock, sign with the service's time from then on (as the AWS SDKs do), so
 * a host with a wrong clock keeps working instead of failing every call.
 */
import type { Logger } from '../log/logger.js';
import type { ServiceError } from '../report/errors.js';
import { CLOCK_SKEW_ERROR_TYPES } from './service-errors.js';

/** The first instant after year 9999, which SigV4's YYYYMMDD dates cannot express. */
const LAST_SIGNABLE_TIME_MS = Date.UTC(10_000, 0, 1);

/** Clock skew beyond which the signing clock is corrected from the service's Date header. */
const CLOCK_SKEW_TOLERANCE_MS = 4 * 60_000;

export class SigningClock {
  private offsetMs = 0;

  constructor(private readonly logger: Logger) {}

  /** The time to sign with now. */
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  /**
   * Takes the service's time from `dateHeader` when `error` is a clock-skew refusal and the offset moved
   * by more than the tolerance; true when it did (the request is then worth one more try at once).
   */
  correct(error: ServiceError, dateHeader: string | undefined): boolean {
    if (!CLOCK_SKEW_ERROR_TYPES.has(error.errorType) || !dateHeader) return false;
    const serverTime = Date.parse(dateHeader);
    // Only a time SigV4 can write (years 1970-9999): Date.parse takes years up to 275760, and signing
    // with such an offset throws a RangeError on every request from then on.
    if (!Number.isFinite(serverTime) || serverTime < 0 || serverTime >= LAST_SIGNABLE_TIME_MS) return false;
    const offset = serverTime - Date.now();
    if (Math.abs(offset - this.offsetMs) <= CLOCK_SKEW_TOLERANCE_MS) return false;
    this.logger.warn(`The commands service's clock differs from ours by ${Math.round(offset / 1000)} s; signing with its time`);
    this.offsetMs = offset;
    return true;
  }
}
