/**
 * What S3 names can be, checked before anything is asked of S3: the bucket of a revision (it comes
 * from a deployment specification or a `deploy -l` location) and the region S3 names in a redirect.
 */

/**
 * A bucket name S3 can be asked for: letters, digits, dots, hyphens and underscores, up to 255
 * characters, the widest rule S3 ever had (buckets made in us-east-1 before 2018). Anything else the
 * SDK percent-encodes into another name (`?` becomes a bucket called `%3F`), or, as `..`, into a path
 * that resolves elsewhere.
 */
export function isBucketName(name: string): boolean {
  return /^[A-Za-z0-9._-]{1,255}$/.test(name) && name !== '.' && name !== '..';
}

/** `us-east-1`, `eusc-de-east-1`: what may stand in an endpoint's host name and a client's region. */
export function isRegionName(name: string): boolean {
  return /^[a-z0-9]+(-[a-z0-9]+)*$/.test(name) && name.length <= 63;
}
