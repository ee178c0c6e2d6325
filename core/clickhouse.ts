import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { readFileSync } from 'node:fs';
import type { Config } from './config.ts';
import { errorChain, firstLine, networkFailure, redact, ServiceConnectionError } from './secrets.ts';

/**
 * Credentials travel as client options (an HTTP Basic Authorization header), never in the URL, so they
 * cannot leak through a logged URL; the config refuses a CLICKHOUSE_URL with user:password@ in it. The
 * database is not selected here because the sinks create it first.
 */
export function createClickHouse(config: Config, overrides: { database?: string } = {}): ClickHouseClient {
  const { clickhouse } = config;
  const client = createClient({
    url: clickhouse.url,
    username: clickhouse.user,
    password: clickhouse.password,
    ...(overrides.database ? { database: overrides.database } : {}),
    request_timeout: clickhouse.requestTimeoutMs,
    ...(clickhouse.caFile ? { tls: { ca_cert: readFileSync(clickhouse.caFile) } } : {}),
    // 18.16 rejects settings it does not know, so nothing version-specific is set globally.
    clickhouse_settings: {},
    compression: { request: false, response: false },
    // Failures reach our own structured logs with context; the client's console lines would duplicate them.
    log: { level: ClickHouseLogLevel.OFF },
  });
  configOf.set(client, config);
  return client;
}

/** Which config made a client, so that serverVersion can explain a failure without being told. */
const configOf = new WeakMap<ClickHouseClient, Config>();

/** Server error codes that mean the credentials (or the user's rights) were refused. */
const AUTH_CODES = new Set([
  192, // UNKNOWN_USER
  193, // WRONG_PASSWORD
  194, // REQUIRED_PASSWORD
  195, // IP_ADDRESS_NOT_ALLOWED
  497, // ACCESS_DENIED
  516, // AUTHENTICATION_FAILED
]);

function serverCode(err: unknown): number | undefined {
  for (const e of errorChain(err)) {
    const code = (e as { code?: unknown })?.code;
    if (typeof code === 'string' && /^\d+$/.test(code)) return Number(code);
    const match = /Code:\s*(\d+)/.exec(String((e as Error)?.message ?? ''));
    if (match) return Number(match[1]);
  }
  return undefined;
}

/** The URL as it may be shown: scheme, host, port and path only. */
function shownUrl(config: Config): string {
  try {
    const url = new URL(config.clickhouse.url);
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    return '(invalid CLICKHOUSE_URL)';
  }
}

/**
 * A failure to reach or log in to ClickHouse, as an error that names ClickHouse, the user and the URL
 * and says which settings to check. Anything that is not about connecting or logging in (a bad query,
 * a missing table) is returned unchanged.
 */
export function clickhouseConnectionError(config: Config, err: unknown): Error {
  if (err instanceof ServiceConnectionError) return err;
  const where = `user ${config.clickhouse.user} at ${shownUrl(config)}`;
  const code = serverCode(err);
  if (code !== undefined && AUTH_CODES.has(code)) {
    return new ServiceConnectionError(
      'ClickHouse',
      'auth',
      `ClickHouse authentication failed (${where}): check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD ` +
        `(server said: ${firstLine(err)})`,
      err,
    );
  }
  const net = networkFailure(err);
  if (net?.kind === 'tls') {
    return new ServiceConnectionError(
      'ClickHouse',
      'tls',
      `ClickHouse TLS handshake failed (${where}): ${redact(net.detail)}; check CLICKHOUSE_CA_FILE and ` +
        'that the URL names the host in the server certificate (https:// needs the HTTPS port, e.g. 8443)',
      err,
    );
  }
  if (net?.kind === 'unreachable' || /timeout|socket hang up/i.test(firstLine(err))) {
    return new ServiceConnectionError(
      'ClickHouse',
      'unreachable',
      `ClickHouse unreachable (${where}): ${net ? redact(net.detail) : firstLine(err)}; check CLICKHOUSE_URL`,
      err,
    );
  }
  if (code === undefined) {
    return new ServiceConnectionError(
      'ClickHouse',
      'other',
      `ClickHouse request failed (${where}): ${firstLine(err)}`,
      err,
    );
  }
  return err instanceof Error ? err : new Error(redact(String(err)));
}

/**
 * A request the server never answered (no ClickHouse error code: refused, reset, timed out), as the
 * ServiceConnectionError start-up waits out; undefined for the server's own answer (a refused
 * statement), which waiting would not change. A client createClickHouse did not make gets a plain
 * "unreachable" error.
 */
export function unansweredFailure(client: object, err: unknown): ServiceConnectionError | undefined {
  if (serverCode(err) !== undefined) return undefined;
  const config = configOf.get(client as ClickHouseClient);
  if (config) return clickhouseConnectionError(config, err) as ServiceConnectionError;
  return new ServiceConnectionError(
    'ClickHouse',
    networkFailure(err)?.kind ?? 'unreachable',
    `ClickHouse unreachable: ${firstLine(err)}`,
    err,
  );
}

/**
 * e.g. "18.16.1" → [18, 16]; used to choose dedup tokens and syntax per server generation. Being the
 * first call a sink makes, it is also the connection check: a refused login or an untrusted
 * certificate fails here with a ServiceConnectionError naming ClickHouse.
 */
export async function serverVersion(
  client: ClickHouseClient,
  config: Config | undefined = configOf.get(client),
): Promise<[number, number]> {
  let v: string;
  try {
    const result = await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
    const rows = await result.json<{ v: string }>();
    v = rows[0]?.v ?? '0.0';
  } catch (err) {
    throw config ? clickhouseConnectionError(config, err) : err;
  }
  const [major = 0, minor = 0] = v.split('.').map(Number);
  return [major, minor];
}

/** Logs in and asks the version: a start-up check that fails fast with a named, secret-free error. */
export async function checkClickHouse(config: Config): Promise<string> {
  const client = createClickHouse(config);
  try {
    const [major, minor] = await serverVersion(client, config);
    return `${major}.${minor}`;
  } finally {
    await client.close().catch(() => undefined);
  }
}
