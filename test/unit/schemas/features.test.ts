// The feature table (sinks/schema/features.ts): what each server version gets, the insert settings,
// and that the version is asked once per client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClickHouseClient } from '@clickhouse/client';
import {
  FEATURE_TABLE,
  LEGACY_FEATURES,
  featuresFor,
  insertSettings,
  serverFeatures,
  type Feature,
} from '../../../sinks/schema/features.ts';

const on = (v: readonly [number, number]): Feature[] => {
  const f = featuresFor(v);
  return FEATURE_TABLE.map((row) => row.feature).filter((name) => f[name]);
};

test('the versions the README names get exactly these features', () => {
  assert.deepEqual(on([18, 16]), []);
  assert.deepEqual(on([22, 1]), [
    'dateTime64',
    'lowCardinality',
    'bool',
    'zstdRawJson',
    'monthlyPartitions',
    'asyncInsertSetting',
  ]);
  assert.deepEqual(on([22, 2]), [
    'dateTime64',
    'lowCardinality',
    'bool',
    'zstdRawJson',
    'monthlyPartitions',
    'dedupTokens',
    'asyncInsertSetting',
  ]);
  assert.deepEqual(on([23, 1]), on([22, 8]));
  assert.deepEqual(on([23, 2]), [...FEATURE_TABLE.map((r) => r.feature)]);
  assert.deepEqual(on([26, 9]), on([23, 2]));
  assert.deepEqual(on([100, 0]), on([23, 2]), 'a future major keeps everything');
  assert.deepEqual(LEGACY_FEATURES, featuresFor([18, 16]));
  assert.equal(featuresFor([22, 1]).dedupWindow, 0);
  assert.equal(featuresFor([22, 2]).dedupWindow, 1000);
});

test('insert settings: the token where the server has tokens, async_insert=0 where it has async inserts', () => {
  assert.equal(insertSettings(featuresFor([18, 16]), 'tok'), undefined);
  assert.deepEqual(insertSettings(featuresFor([21, 11]), 'tok'), { async_insert: '0' });
  assert.deepEqual(insertSettings(featuresFor([26, 9]), 'tok'), {
    insert_deduplication_token: 'tok',
    async_insert: '0',
  });
  assert.deepEqual(insertSettings(featuresFor([26, 9]), undefined), { async_insert: '0' });
});

test('serverFeatures asks version() once per client, and does not keep a failure', async () => {
  let asked = 0;
  let fail = true;
  const client = {
    query: async ({ query }: { query: string }) => {
      asked += 1;
      assert.equal(query, 'SELECT version() AS v');
      if (fail) throw new Error('connect ECONNREFUSED 127.0.0.1:8123');
      return { json: async () => [{ v: '24.8.4.13' }] };
    },
  } as unknown as ClickHouseClient;
  await assert.rejects(serverFeatures(client), /ECONNREFUSED/);
  fail = false;
  const [a, b] = await Promise.all([serverFeatures(client), serverFeatures(client)]);
  assert.equal(a, b);
  assert.deepEqual(a.version, [24, 8]);
  assert.equal(a.replacingIsDeleted, true);
  await serverFeatures(client);
  assert.equal(asked, 2, 'one failed and one successful lookup');
});
