/**
 * Which proxy a request goes through, the same way for the commands service, S3 and GitHub:
 * `:proxy_uri:` when set (AWS's key), otherwise the usual HTTPS_PROXY / HTTP_PROXY (either case)
 * unless NO_PROXY names the host. An operator who sets HTTPS_PROXY in the service's environment file
 * therefore gets every download through it, not only the commands service.
 */

/** `:proxy_uri:` always wins; otherwise the usual environment variables, honouring NO_PROXY. */
export function proxyFor(endpoint: URL, proxyUri: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (proxyUri?.trim()) return proxyUri.trim();
  const fromEnv =
    endpoint.protocol === 'https:'
      ? env.HTTPS_PROXY ?? env.https_proxy
      : env.HTTP_PROXY ?? env.http_proxy;
  if (!fromEnv?.trim()) return undefined;
  if (matchesNoProxy(endpoint, env.NO_PROXY ?? env.no_proxy)) return undefined;
  return fromEnv.trim();
}

export function matchesNoProxy(endpoint: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = endpoint.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = endpoint.port || (endpoint.protocol === 'https:' ? '443' : '80');
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const match = /^(.*?)(?::(\d+))?$/.exec(entry)!;
    const entryHost = match[1].replace(/^\*?\./, '');
    if (match[2] && match[2] !== port) continue;
    if (host === entryHost || host.endsWith(`.${entryHost}`)) return true;
  }
  return false;
}
