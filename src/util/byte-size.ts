/** Sizes and rates for people, in binary units: `0 B`, `512 B`, `1.5 KiB`, `1.0 GiB` (a rate adds `/s`). */
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Bytes in one unit of the configuration keys that end in `_mb` (`:max_bundle_unpacked_mb:`, `:s3_download_part_size_mb:`). */
export const MB = 1024 * 1024;

export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/**
 * A size next to an `_mb` configuration key, in that key's unit (`1.0 MB`, `10240 MB`), so the operator
 * compares it with the number they wrote instead of converting `10.0 GiB` back.
 */
export function formatMegabytes(bytes: number): string {
  return bytes >= 10 * MB ? `${Math.round(bytes / MB)} MB` : `${(bytes / MB).toFixed(1)} MB`;
}
