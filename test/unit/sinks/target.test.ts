import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import { createLogger } from '../../../core/log.ts';
import { avroType } from '../../../schemas/index.ts';
import { TableTarget } from '../../../sinks/target.ts';

/** Records the statements a target runs; an empty database as far as system.columns is concerned. */
function fakeClickHouse(): { client: ClickHouseClient; statements: string[] } {
  const statements: string[] = [];
  const client = {
    command: async ({ query }: { query: string }) => {
      statements.push(query);
      return {};
    },
    query: async () => ({ json: async () => [] }),
  } as unknown as ClickHouseClient;
  return { client, statements };
}

const logger = createLogger('test', undefined, 'silent');

for (const [dedupWindow, expected] of [
  [1_000, 3],
  [undefined, 0],
] as const) {
  test(`the deduplication window is part of CREATE TABLE where the server has one (${String(dedupWindow)})`, async () => {
    const { client, statements } = fakeClickHouse();
    const target = new TableTarget({
      resource: 'runs_results',
      topic: 't.runs_results',
      dlqTopic: 't.runs_results.sink-dlq',
      database: 'db',
      clickhouse: client,
      logger,
      ...(dedupWindow ? { dedupWindow } : {}),
    });
    await target.prepare(1, avroType('runs_results'));
    const settings = statements.filter((q) => q.includes('non_replicated_deduplication_window'));
    // runs_results, runs_results_fields and runs_results_page_layouts.
    assert.equal(settings.length, expected);
    for (const q of settings)
      assert.match(
        q,
        /^CREATE TABLE IF NOT EXISTS `db`\.`runs_results\w*` \([^]*\nSETTINGS non_replicated_deduplication_window = 1000$/,
      );
    assert.deepEqual(
      statements.filter((q) => q.startsWith('ALTER')),
      [],
      'no ALTER on every prepare',
    );
  });
}
