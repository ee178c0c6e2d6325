// The dashboard's data shaping (cli/dashboard/queries.ts) and its cache (cli/dashboard/cache.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TtlCache } from '../../../cli/dashboard/cache.ts';
import {
  DEFAULT_MINUTES,
  MAX_MINUTES,
  MIN_MINUTES,
  bucketSeconds,
  clampMinutes,
  clickhouseSource,
  fieldsByName,
  timeBuckets,
  toSeries,
  type FieldRow,
} from '../../../cli/dashboard/queries.ts';
import type { ResourceStatus } from '../../../cli/status.ts';
import { loadConfig } from '../../../core/config.ts';
import { RESOURCE_NAMES } from '../../../core/resources.ts';

describe('time buckets', () => {
  test('minutes from the query string are clamped, with a default', () => {
    assert.equal(clampMinutes(null), DEFAULT_MINUTES);
    assert.equal(clampMinutes(''), DEFAULT_MINUTES);
    assert.equal(clampMinutes('abc'), DEFAULT_MINUTES);
    assert.equal(clampMinutes('1'), MIN_MINUTES);
    assert.equal(clampMinutes('90.4'), 90);
    assert.equal(clampMinutes('99999999'), MAX_MINUTES);
  });

  test('a minute per bucket up to three hours, never more than 180 points', () => {
    assert.equal(bucketSeconds(15), 60);
    assert.equal(bucketSeconds(180), 60);
    assert.equal(bucketSeconds(360), 300);
    assert.equal(bucketSeconds(1440), 900);
    for (const m of [5, 60, 181, 1000, 1440, 4000, MAX_MINUTES]) {
      assert.ok((m * 60) / bucketSeconds(m) <= 180, `${m} min`);
    }
  });

  test('buckets are aligned, contiguous and cover the window up to now', () => {
    const now = Date.UTC(2026, 0, 10, 12, 30, 42);
    const labels = timeBuckets(now, 60, 60);
    assert.equal(labels.length, 61);
    assert.equal(labels.at(-1), Date.UTC(2026, 0, 10, 12, 30) / 1000);
    assert.equal(labels[0], Date.UTC(2026, 0, 10, 11, 30) / 1000);
    for (let i = 1; i < labels.length; i++) assert.equal(labels[i]! - labels[i - 1]!, 60);
    const fives = timeBuckets(now, 360, 300);
    assert.ok(fives.every((t) => t % 300 === 0));
  });

  test('rows become zero-filled series in a fixed order, then by size; outside rows are dropped', () => {
    const labels = [60, 120, 180];
    const { series, total } = toSeries(
      labels,
      [
        { t: '60', name: 'COMPLETE', n: '2' },
        { t: 180, name: 'COMPLETE', n: 1 },
        { t: 120, name: 'ZED', n: 5 },
        { t: 120, name: 'RUNNING', n: 1 },
        { t: 60, name: 'AAA', n: 1 },
        { t: 9999, name: 'COMPLETE', n: 100 },
      ],
      ['RUNNING', 'COMPLETE'],
    );
    assert.deepEqual(series, [
      { name: 'RUNNING', counts: [0, 1, 0] },
      { name: 'COMPLETE', counts: [2, 0, 1] },
      { name: 'ZED', counts: [0, 5, 0] },
      { name: 'AAA', counts: [1, 0, 0] },
    ]);
    assert.equal(total, 10);
  });

  test('fields per name: counts add up, confidence weighted by scored fields', () => {
    const row = (field_name: string, fields: number, errors: number, scored: number, mean: number | null) =>
      ({
        field_name,
        class_name: 'c',
        fields,
        errors,
        error_rate: errors / fields,
        invalid: 0,
        scored,
        mean_confidence: mean,
      }) satisfies FieldRow;
    const out = fieldsByName([row('b', 10, 1, 10, 0.5), row('a', 4, 0, 0, null), row('b', 30, 3, 10, 0.9)]);
    assert.deepEqual(
      out.map((f) => [f.field_name, f.fields, f.errors, f.error_rate, f.scored, f.mean_confidence]),
      [
        ['a', 4, 0, 0, 0, null],
        ['b', 40, 4, 0.1, 20, 0.7],
      ],
    );
  });
});

describe('pipeline data', () => {
  const config = loadConfig({ env: { CLICKHOUSE_DATABASE: 'db' }, cwd: '/nonexistent' });
  const status = (resource: string, rows: number): ResourceStatus => ({
    resource,
    topicMessages: rows + 1,
    consumerLag: 2,
    rows,
    currentRows: rows,
    producerDeadLetters: 1,
    sinkDeadLetters: 0,
    freshnessSeconds: 5,
    lastPoll: null,
  });
  const fakeClickHouse = (rows: unknown[] | Error) =>
    ({
      query: async () => {
        if (rows instanceof Error) throw rows;
        return { json: async () => rows };
      },
      close: async () => undefined,
    }) as never;

  test('Kafka status and the freshness view, merged per resource with totals', async () => {
    const source = clickhouseSource(
      config,
      fakeClickHouse(RESOURCE_NAMES.map((r) => ({ resource: r, rows: '10', rows_last_minute: '3' }))),
      { status: async () => RESOURCE_NAMES.map((r) => status(r, 10)) },
    );
    const data = await source.pipeline();
    assert.deepEqual(data.errors, []);
    assert.equal(data.resources.length, RESOURCE_NAMES.length);
    assert.deepEqual(data.totals, {
      rows: 10 * RESOURCE_NAMES.length,
      rowsLastMinute: 3 * RESOURCE_NAMES.length,
      consumerLag: 2 * RESOURCE_NAMES.length,
      deadLetters: RESOURCE_NAMES.length,
      maxFreshnessSeconds: 5,
    });
  });

  test('with Kafka down, ClickHouse numbers are still shown and the failure is reported', async () => {
    const source = clickhouseSource(
      config,
      fakeClickHouse([{ resource: 'runs', rows: '7', freshness_seconds: '12', rows_last_minute: '1' }]),
      {
        status: async () => {
          throw new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
        },
      },
    );
    const data = await source.pipeline();
    assert.match(data.errors[0]!, /^Kafka\/status: .*ECONNREFUSED/);
    const runs = data.resources.find((r) => r.resource === 'runs')!;
    assert.equal(runs.rows, 7);
    assert.equal(runs.freshnessSeconds, 12);
    assert.equal(runs.consumerLag, null);
    assert.equal(data.totals.maxFreshnessSeconds, null, 'some resources have no freshness yet');
  });
});

describe('TtlCache', () => {
  test('shares a load in flight, reuses it for ttl after it settles, then loads again', async () => {
    let t = 0;
    const cache = new TtlCache(1_000, () => t);
    let loads = 0;
    let release!: () => void;
    const slow = () =>
      new Promise<number>((resolve) => {
        loads += 1;
        release = () => resolve(loads);
      });
    const a = cache.get('k', slow);
    t = 5_000; // still in flight: shared, however long it takes
    const b = cache.get('k', slow);
    release();
    assert.equal(await a, 1);
    assert.equal(await b, 1);
    t += 999;
    assert.equal(await cache.get('k', async () => 99), 1);
    t += 1;
    assert.equal(await cache.get('k', async () => 2), 2);
    assert.equal(await cache.get('other', async () => 3), 3);
  });

  test('a failure is shared for the ttl too, and a synchronous throw becomes a rejection', async () => {
    let t = 0;
    const cache = new TtlCache(1_000, () => t);
    let calls = 0;
    const failing = (): Promise<number> => {
      calls += 1;
      throw new Error('down');
    };
    await assert.rejects(cache.get('k', failing), /down/);
    await assert.rejects(cache.get('k', failing), /down/);
    assert.equal(calls, 1);
    t = 2_000;
    assert.equal(await cache.get('k', async () => 1), 1);
  });
});
