import { isIPv4, isIPv6 } from 'node:net';
import type { Logger } from './log.ts';

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 (and its IPv4-mapped forms), localhost. */
export function isLoopback(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) {
    if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped ? mapped[1]!.startsWith('127.') : false;
  }
  return false;
}

/**
 * Warns (once per call) when an HTTP server is about to listen beyond loopback without a dashboard
 * token: anyone who can reach the port could read the dashboard and /metrics. Returns true when it
 * warned, so the caller (the CLI) can also print it somewhere a person will see it.
 */
export function warnIfExposed(
  host: string,
  token: string | undefined,
  logger: Pick<Logger, 'warn'>,
  what = 'the dashboard and /metrics',
): boolean {
  if (isLoopback(host) || (token !== undefined && token !== '')) return false;
  const everywhere = host === '' || host === '0.0.0.0' || host === '::' || host === '[::]';
  logger.warn(
    { host },
    `${what} will listen on ${everywhere ? 'every network interface' : host} without DASHBOARD_TOKEN: ` +
      'anyone who can reach this port can read them. Set DASHBOARD_TOKEN, or HTTP_HOST=127.0.0.1 ' +
      '(the default) and put a reverse proxy with authentication in front.',
  );
  return true;
}
