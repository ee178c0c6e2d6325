import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { readFileSync } from 'node:fs';
import type { Config } from './config.ts';

/**
 * Credentials travel as client options (HTTP headers), never in the URL, so they cannot leak through
 * a logged URL. The database is not selected here because the sinks create it first.
 */
export function createClickHouse(config: Config, overrides: { database?: string } = {}): ClickHouseClient {
  const { clickhouse } = config;
  return createClient({
    url: clickhouse.url,
    username: clickhouse.user,
    password: clickhouse.password,
    ...(overrides.database ? { database: overrides.database } : {}),
    request_timeout: clickhouse.requestTimeoutMs,
    ...(clickhouse.caFile ? { tls: { ca_cert: readFileSync(clickhouse.caFile) } } : {}),
    // 18.16 rejects settings it does not know, so nothing version-specific is set globally.
    clickhouse_settings: {},
    compression: { request: false, response: false },
  });
}

/** e.g. "18.16.1" → [18, 16]; used to choose dedup tokens and syntax per server generation. */
export async function serverVersion(client: ClickHouseClient): Promise<[number, number]> {
  const result = await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
  const rows = await result.json<{ v: string }>();
  const [major = 0, minor = 0] = (rows[0]?.v ?? '0.0').split('.').map(Number);
  return [major, minor];
}
