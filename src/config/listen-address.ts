import { isIP } from 'node:net';

/**
 * `:metrics_listen:`: where the health and metrics listener binds. A bare port binds loopback only
 * (127.0.0.1); any other interface must be written out (`0.0.0.0:9126`, `[::]:9126`, `10.0.0.5:9126`),
 * so nobody exposes the agent's metrics to the network by leaving out a host.
 */
export interface ListenAddress {
  /** An IP literal (IPv6 without brackets). */
  host: string;
  port: number;
}

const LOOPBACK_NAMES: Record<string, string> = { localhost: '127.0.0.1' };

/** Parses the key's value; returns the problem (to finish "…, which is not …") when it is not an address. */
export function parseListenAddress(value: string): ListenAddress | { problem: string } {
  const text = value.trim();
  const problem = { problem: 'a port (9126, loopback only) or an IP address and port (127.0.0.1:9126, [::1]:9126, 0.0.0.0:9126)' };
  let host: string;
  let portText: string;
  if (/^\d+$/.test(text)) {
    host = '127.0.0.1';
    portText = text;
  } else {
    const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
    if (!match) return problem;
    host = LOOPBACK_NAMES[match[1].toLowerCase()] ?? match[1];
    portText = match[2];
    if (isIP(host) === 0) return problem;
  }
  const port = Number(portText);
  // 0 lets the system choose (tests); `status` shows the port it chose.
  if (!Number.isInteger(port) || port > 65535) return { problem: 'an address with a port between 0 and 65535' };
  return { host, port };
}

/** `127.0.0.1:9126`, `[::1]:9126`: for log lines and URLs. */
export function formatListenAddress(address: ListenAddress): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
