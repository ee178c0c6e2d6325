/**
 * ClickHouse going away in the middle of a sink's start-up, at an exact request: after the probe that
 * found it up (reading its version, creating the dashboard views). The sink must wait for it and start,
 * with every table and dashboard object a start without the outage makes; before, it either exited
 * ("start-up failed") or went on without its dashboard views, the materialized view included. The
 * outage comes from a proxy in front of the shared ClickHouse (test/helpers/outage-proxy.ts), so the
 * server itself is never stopped.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../../core/config.ts';
import { createLogger } from '../../core/log.ts';
import { startSinks } from '../../sinks/daemon.ts';
import { quoteString } from '../../sinks/schema/sql.ts';
import { OutageProxy } from '../helpers/outage-proxy.ts';
import { testConfig, uniqueName } from '../helpers/pipeline.ts';
import { cleanUp, testClickHouse } from '../helpers/sink-pipeline.ts';

const OUTAGE_MS = 1_500;

describe('sinks: ClickHouse going away during start-up', { timeout: 300_000 }, () => {
  const prefix = uniqueName('isso');
  const databases: string[] = [];
  let proxy: OutageProxy;
  let ch: ClickHouseClient;

  const configFor = (name: string): Config => {
    const database = `${prefix.replace(/[^A-Za-z0-9_]/g, '_')}_${name}`;
    databases.push(database);
    return testConfig(
      prefix,
      { sinks: { group: `${prefix}-${name}` }, startup: { retryMaxMs: 500 } },
      { CLICKHOUSE_URL: proxy.url, CLICKHOUSE_DATABASE: database },
    );
  };

  const tablesOf = async (database: string): Promise<string[]> => {
    const rs = await ch.query({
      // 18.16 has no query parameters.
      query: `SELECT name FROM system.tables WHERE database = ${quoteString(database)} ORDER BY name`,
      format: 'JSONEachRow',
    });
    return (await rs.json<{ name: string }>()).map((r) => r.name);
  };

  before(async () => {
    const plain = testConfig(prefix);
    proxy = await OutageProxy.start(plain.clickhouse.url);
    ch = testClickHouse(plain);
  });
  after(async () => {
    await proxy?.close();
    await ch?.close();
    await cleanUp(testConfig(prefix), databases);
  });

  test('whichever request it goes away at, the sink waits, starts, and makes every table and view', async (t) => {
    // A start without an outage: how many requests start-up makes, and what it creates.
    const clean = configFor('clean');
    proxy.cutAtRequest(Number.MAX_SAFE_INTEGER, 0);
    const first = await startSinks(clean, createLogger('test', undefined, 'error'));
    const requests = proxy.requests;
    await first.stop();
    const want = await tablesOf(clean.clickhouse.database);
    t.diagnostic(`a start-up makes ${requests} ClickHouse requests and ${want.length} tables and views`);
    assert.ok(want.includes('audit_logs') && want.includes('dash_audit_events_per_minute_mv'), want.join());

    // The probe (1), the version (2), the first statements of the views, then spread over the rest.
    const picks = new Set([1, 2, 3]);
    for (let i = 1; i <= 4; i += 1) picks.add(Math.max(1, Math.round((requests * i) / 4)));
    for (const at of [...picks].sort((a, b) => a - b)) {
      const config = configFor(`at${at}`);
      const lines: string[] = [];
      const logger = createLogger(
        'test',
        new Writable({
          write(chunk: Buffer, _enc, cb) {
            lines.push(chunk.toString());
            cb();
          },
        }),
        'info',
      );
      proxy.cutAtRequest(at, OUTAGE_MS);
      const t0 = Date.now();
      const sinks = await startSinks(config, logger).catch((err: Error) => {
        throw new Error(`start-up with ClickHouse gone at request ${at} failed: ${err.message}`);
      });
      const t1 = Date.now();
      try {
        assert.ok(proxy.cut, `request ${at} was cut`);
        assert.ok(
          lines.some((l) => l.includes('waiting for ClickHouse')),
          `request ${at}: start-up says it waits for ClickHouse`,
        );
        assert.ok(
          !lines.some((l) => l.includes('the sinks run without them')),
          `request ${at}: the dashboard views are not given up`,
        );
        assert.deepEqual(
          await tablesOf(config.clickhouse.database),
          want,
          `request ${at}: every table and view`,
        );
        assert.equal(sinks.runner.failure, undefined);
      } finally {
        await sinks.stop();
        t.diagnostic(`at ${at}: start ${t1 - t0} ms, stop ${Date.now() - t1} ms`);
      }
    }
  });
});
