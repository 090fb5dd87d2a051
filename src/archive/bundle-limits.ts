import { ErrorCode } from '../report/error-codes.js';
import { ArchiveError } from '../report/errors.js';
import { formatMegabytes as megabytes, MB } from '../util/byte-size.js';

/**
 * What a bundle may cost to unpack: a total of unpacked bytes, and a ratio of unpacked bytes to the
 * bundle's own size. Both are judged at each file's header, from the size it declares, before a byte of
 * it is inflated: the tar reader reads exactly the declared size and the zip reader refuses an entry
 * that inflates to more than its header says, so a declared size is a promise kept. A gzip or zip bomb
 * (10 GB of zeros in 10 MB) is refused at its first large entry, in milliseconds, with nothing written.
 *
 * The ratio is not judged below RATIO_FLOOR_BYTES: a small bundle holding a file of zeros compresses
 * a thousandfold and costs nothing.
 */
export interface BundleLimits {
  /** `:max_bundle_unpacked_mb:` in bytes. */
  maxUnpackedBytes: number;
  /** `:max_bundle_compression_ratio:`. */
  maxCompressionRatio: number;
}

export { DEFAULT_MAX_BUNDLE_COMPRESSION_RATIO, DEFAULT_MAX_BUNDLE_UNPACKED_MB } from '../config/agent-config.js';
export const RATIO_FLOOR_BYTES = 256 * 1024 * 1024;

export function bundleLimitsOf(config: { max_bundle_unpacked_mb: number; max_bundle_compression_ratio: number }): BundleLimits {
  return { maxUnpackedBytes: config.max_bundle_unpacked_mb * MB, maxCompressionRatio: config.max_bundle_compression_ratio };
}

/** Counts what a bundle unpacks to, entry by entry; refuses the entry that would go over a limit. */
export class BundleBudget {
  #unpacked = 0;

  constructor(private readonly limits: BundleLimits, private readonly bundleBytes: number) {}

  get unpackedBytes(): number {
    return this.#unpacked;
  }

  /** Before `entryPath`'s `size` bytes are written (or read): throws an ArchiveError when they are too many. */
  charge(entryPath: string, size: number): void {
    const after = this.#unpacked + size;
    const { maxUnpackedBytes, maxCompressionRatio } = this.limits;
    if (after > maxUnpackedBytes) {
      throw new ArchiveError(
        `The bundle unpacks to more than ${megabytes(maxUnpackedBytes)} (max_bundle_unpacked_mb): refused at '${entryPath}' (${megabytes(size)}), ` +
          `with ${megabytes(this.#unpacked)} before it; nothing of it was kept. If the bundle is real, raise :max_bundle_unpacked_mb: in the agent configuration`,
        ErrorCode.UnknownError,
      );
    }
    if (after > RATIO_FLOOR_BYTES && after > maxCompressionRatio * Math.max(1, this.bundleBytes)) {
      throw new ArchiveError(
        `The bundle unpacks to more than ${maxCompressionRatio} times its own size (${megabytes(this.bundleBytes)} to at least ${megabytes(after)}; ` +
          `max_bundle_compression_ratio), which no real bundle does: a compression bomb? Refused at '${entryPath}' (${megabytes(size)}); nothing of it was kept. ` +
          'If the bundle is real, raise :max_bundle_compression_ratio: in the agent configuration',
        ErrorCode.UnknownError,
      );
    }
    this.#unpacked = after;
  }
}
