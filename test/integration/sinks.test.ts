/**
 * The sinks against the real stack: the producers poll the simulator once, the sinks consume every
 * topic into a fresh ClickHouse database, and every table holds exactly the simulator's ground truth.
 * Then replays: into a new table (row for row equal to the original), from a timestamp and from
 * explicit offsets.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../../core/config.ts';
import { RESOURCE_NAMES, type ResourceName } from '../../core/resources.ts';
import { resourceTopic } from '../../core/topics.ts';
import { replayCommand } from '../../cli/replay.ts';
import { resourceMeta, valueSchema } from '../../schemas/index.ts';
import { startSinks } from '../../sinks/daemon.ts';
import { deriveLayout } from '../../sinks/schema/layout.ts';
import type { Simulator } from '../../sim/index.ts';
import { quietLogger, readTopic, uniqueName, waitFor } from '../helpers/pipeline.ts';
import {
  SMALL_SCALE,
  batchRecords,
  cleanUp,
  committedOffsets,
  expectedRows,
  highWaterMarks,
  pipelineConfig,
  produce,
  produceOnce,
  readAll,
  decodeValue,
  encodeMessages,
  registerResource,
  scalar,
  select,
  startSim,
  testClickHouse,
  type ExpectedRows,
  type RegisteredSchema,
} from '../helpers/sink-pipeline.ts';

const q = (name: string) => '`' + name + '`';

/** replayCommand has no deadline of its own; a replay that never finishes fails the test instead. */
async function replay(config: Config, options: Parameters<typeof replayCommand>[1], ms = 60_000) {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      replayCommand(config, options),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`replay ${JSON.stringify(options)} did not finish in ${ms} ms`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function keyExpr(resource: ResourceName): string {
  return resourceMeta(resource).key.map(q).join(', ');
}

/** Every stored column of a table except _ingested_at (insert time), in table order. */
async function dataColumns(ch: ClickHouseClient, database: string, table: string): Promise<string[]> {
  const rows = await select<{ name: string }>(
    ch,
    `SELECT name FROM system.columns WHERE database = '${database}' AND table = '${table}' ` +
      `AND default_kind != 'ALIAS' AND name != '_ingested_at'`,
  );
  return rows.map((r) => r.name);
}

async function tableRows(
  ch: ClickHouseClient,
  database: string,
  table: string,
  columns: string[],
  orderBy: string,
): Promise<unknown[]> {
  return select(
    ch,
    `SELECT ${columns.map(q).join(', ')} FROM ${q(database)}.${q(table)} ORDER BY ${orderBy}`,
  );
}

describe('sinks: producers → Kafka → ClickHouse, exact', { timeout: 240_000 }, () => {
  let sim: Simulator;
  let config: Config;
  let ch: ClickHouseClient;
  let expected: ExpectedRows;
  const prefix = uniqueName('its');

  before(async () => {
    sim = await startSim('sinks-it', SMALL_SCALE, 0);
    config = pipelineConfig(prefix, sim);
    ch = testClickHouse(config);
    await produceOnce(config, sim);
    expected = expectedRows(sim, SMALL_SCALE);
  });
  after(async () => {
    await ch?.close();
    await sim?.close();
    if (config) await cleanUp(config, [`${config.clickhouse.database}_replay`]);
  });

  test('every resource lands exactly: counts, keys, contents, offsets committed', async () => {
    const sinks = await startSinks(config, quietLogger);
    const topics = RESOURCE_NAMES.map((r) => resourceTopic(config, r));
    const marks = await highWaterMarks(config, topics);
    try {
      await waitFor('the sinks to catch up', () => sinks.runner.caughtUp(marks), 120_000);
      assert.equal(sinks.runner.failure, undefined);
    } finally {
      await sinks.stop();
    }
    const db = q(config.clickhouse.database);
    assert.equal(sinks.runner.stats.deadLetters, 0, 'no dead letters');
    for (const resource of RESOURCE_NAMES) {
      const want = expected.records[resource];
      assert.ok(want > 0, `${resource}: the simulator serves some records`);
      const current = await scalar(ch, `SELECT count() AS n FROM ${db}.${q(`${resource}_current`)}`);
      assert.equal(current, want, `${resource}_current: one row per valid record`);
      const raw = await scalar(ch, `SELECT count() AS n FROM ${db}.${q(resource)}`);
      assert.equal(raw, want, `${resource}: each record inserted once`);
      const keys = await scalar(
        ch,
        `SELECT uniqExact(${keyExpr(resource)}) AS n FROM ${db}.${q(`${resource}_current`)}`,
      );
      assert.equal(keys, want, `${resource}: distinct keys`);
      const topic = resourceTopic(config, resource);
      const coords = await select<{ topics: string; n: string; positions: string }>(
        ch,
        `SELECT groupUniqArray(_topic) AS topics, count() AS n, uniqExact(_partition, _offset) AS positions ` +
          `FROM ${db}.${q(resource)}`,
      );
      assert.deepEqual(coords[0]!.topics, [topic], `${resource}: _topic`);
      assert.equal(Number(coords[0]!.positions), want, `${resource}: one row per Kafka position`);
      // Offsets are committed up to the high-water marks (transaction markers included).
      const committed = await committedOffsets(config, config.sinks.group, topic);
      for (const [tp, high] of marks) {
        if (!tp.startsWith(`${topic}:`)) continue;
        const partition = Number(tp.slice(topic.length + 1));
        if (high > 0) assert.equal(committed.get(partition), high, `${tp}: committed offset`);
      }
    }

    // Child tables.
    const fields = await scalar(ch, `SELECT count() AS n FROM ${db}.runs_results_fields_current`);
    assert.equal(fields, expected.runsResultsFields, 'runs_results_fields: docs × fields per doc');
    const queryResults = await scalar(ch, `SELECT count() AS n FROM ${db}.queries_status_results_current`);
    const fromTopic = (await readTopic(config, resourceTopic(config, 'queries_status'))).reduce(
      (n, m) => n + (m.value!.results as unknown[]).length,
      0,
    );
    assert.equal(queryResults, fromTopic, 'queries_status_results: one row per result item');

    // Contents: batch ids, run status and nanosecond timestamps, extracted fields.
    const batchIds = await select<{ id: string }>(ch, `SELECT id FROM ${db}.batches_current ORDER BY id`);
    assert.deepEqual(
      batchIds.map((r) => Number(r.id)),
      sim.expected.batches().keys,
    );
    const batch = (
      await select<Record<string, unknown>>(ch, `SELECT * FROM ${db}.batches_current WHERE id = 7`)
    )[0]!;
    const simBatch = sim.data.batch(6, sim.now());
    for (const f of ['name', 'workspace', 'batch_owner', 'path_suffix'])
      assert.equal(batch[f], simBatch[f], `batch 7 ${f}`);
    assert.equal(batch.created_at_ms, String(simBatch.created_at_ms));
    assert.equal(batch._deleted, 0);

    const runs = await select<{
      id: string;
      status: string;
      start_timestamp: string;
      finish_timestamp: string | null;
      tags: string[];
    }>(ch, `SELECT id, status, start_timestamp, finish_timestamp, tags FROM ${db}.runs_current`);
    assert.equal(runs.length, sim.expected.runs().keys.length);
    for (const run of runs) {
      const j = sim.data.runIndex(run.id, sim.now());
      assert.notEqual(j, undefined, `run ${run.id} is one of the simulator's`);
      const truth = sim.data.run(j!, sim.now());
      assert.equal(run.status, truth.status, `run ${run.id} status`);
      assert.equal(run.start_timestamp, String(truth.start_timestamp), `run ${run.id} start_timestamp (ns)`);
      assert.equal(
        run.finish_timestamp,
        truth.finish_timestamp === null ? null : String(truth.finish_timestamp),
        `run ${run.id} finish_timestamp (ns)`,
      );
      assert.deepEqual(run.tags, truth.tags ?? []);
    }

    const runId = expected.completeRunIds[0]!;
    const j = sim.data.runIndex(runId, sim.now())!;
    const extracted = await select<{ name: string; value: string; type: string; _idx: number }>(
      ch,
      `SELECT name, value, type, _idx FROM ${db}.runs_results_fields_current ` +
        `WHERE run_id = '${runId}' AND file_index = 1 AND document_index = 0 ORDER BY _idx`,
    );
    assert.deepEqual(
      extracted,
      [0, 1, 2].map((k) => ({ name: `field_${k}`, value: `value ${j}-1-0-${k}`, type: 'TEXT', _idx: k })),
    );
    const perRun = await select<{ run_id: string; n: string }>(
      ch,
      `SELECT run_id, count() AS n FROM ${db}.runs_results_fields_current GROUP BY run_id ORDER BY run_id`,
    );
    assert.deepEqual(
      perRun.map((r) => r.run_id),
      [...expected.completeRunIds].sort(),
      'fields for every complete run',
    );
    const auditTimes = await scalar(
      ch,
      `SELECT countIf(timestamp_ms = 0 OR _content_hash = '') AS n FROM ${db}.audit_logs_current`,
    );
    assert.equal(auditTimes, 0, 'audit entries carry their time and hash');
  });

  test('a replay into a new table equals the original, row for row', async () => {
    const db = config.clickhouse.database;
    for (const [resource, table] of [
      ['batches', 'batches_replay'],
      ['runs_results', 'rr_replay'],
    ] as const) {
      await replay(config, { resource, table, from: 'earliest', follow: false });
      const layout = deriveLayout(resource, valueSchema(resource), { database: db });
      const replayLayout = deriveLayout(resource, valueSchema(resource), { database: db, table });
      const pairs = [layout.table, ...layout.children].map((t, i) => ({
        original: t,
        replay: [replayLayout.table, ...replayLayout.children][i]!,
      }));
      for (const { original, replay } of pairs) {
        const columns = await dataColumns(ch, db, original.name);
        assert.deepEqual(await dataColumns(ch, db, replay.name), columns, `${replay.name}: same columns`);
        const orderBy = [...original.orderBy, '_offset'].map(q).join(', ');
        for (const suffix of ['', '_current']) {
          const a = await tableRows(ch, db, original.name + suffix, columns, orderBy);
          const b = await tableRows(ch, db, replay.name + suffix, columns, orderBy);
          // page_layouts stays empty: the producers do not ask for source info.
          if (!original.name.endsWith('page_layouts'))
            assert.ok(a.length > 0, `${original.name}${suffix} has rows`);
          assert.equal(b.length, a.length, `${replay.name}${suffix}: row count`);
          assert.deepEqual(b, a, `${replay.name}${suffix} equals ${original.name}${suffix}`);
        }
      }
    }
    // Into a new database as well, under a group of its own.
    const other = `${db}_replay`;
    await replay(config, { resource: 'batches', database: other, from: 'earliest', follow: false });
    const columns = await dataColumns(ch, db, 'batches');
    assert.deepEqual(
      await tableRows(ch, other, 'batches_current', columns, '`id`'),
      await tableRows(ch, db, 'batches_current', columns, '`id`'),
    );
  });
});

describe('replay --from a timestamp or offsets', { timeout: 180_000 }, () => {
  let config: Config;
  let ch: ClickHouseClient;
  let schema: RegisteredSchema;
  const prefix = uniqueName('itr');
  const T0 = Date.UTC(2026, 0, 1);
  const T1 = T0 + 3_600_000;

  before(async () => {
    const sim = await startSim('replay-from', { batches: 1 });
    config = pipelineConfig(prefix, sim);
    await sim.close();
    ch = testClickHouse(config);
    // The sinks create the topics; nothing consumes them here.
    const sinks = await startSinks(config, quietLogger, {
      resources: ['batches'],
      groupId: `${prefix}-idle`,
    });
    await sinks.stop();
    schema = await registerResource(config, 'batches');
    const topic = resourceTopic(config, 'batches');
    // 60 records spread over the partitions at T0, then 20 more at T1, all in partition 0.
    await produce(config, topic, encodeMessages(schema, batchRecords(1, 60), { timestamp: T0 }));
    await produce(
      config,
      topic,
      encodeMessages(schema, batchRecords(61, 20), { partition: 0, timestamp: T1 }),
    );
  });
  after(async () => {
    await ch?.close();
    if (config) await cleanUp(config);
  });

  async function ids(table: string): Promise<number[]> {
    const rows = await select<{ id: string }>(
      ch,
      `SELECT id FROM ${q(config.clickhouse.database)}.${q(table)} ORDER BY id`,
    );
    return rows.map((r) => Number(r.id));
  }

  test('--from a timestamp reads only what was written at or after it', async () => {
    await replay(config, {
      resource: 'batches',
      table: 'from_ts',
      from: new Date(T0 + 1_800_000).toISOString(),
      follow: false,
    });
    assert.deepEqual(
      await ids('from_ts'),
      Array.from({ length: 20 }, (_, k) => 61 + k),
    );
  });

  test('--from explicit offsets starts each partition exactly there', async () => {
    const topic = resourceTopic(config, 'batches');
    const messages = (await readAll(config, topic)).map((m) => ({
      partition: m.partition,
      offset: m.offset,
      id: Number(decodeValue(schema, m.value).id),
    }));
    const marks = await highWaterMarks(config, [topic]);
    // Partition 0 from offset 10, partition 1 from 3, partition 2 from its end (nothing).
    const from = new Map([
      [0, 10],
      [1, 3],
      [2, marks.get(`${topic}:2`)!],
    ]);
    const want = messages
      .filter((m) => m.offset >= from.get(m.partition)!)
      .map((m) => m.id)
      .sort((a, b) => a - b);
    assert.ok(want.length > 20 && want.length < 80, `a proper subset (${want.length})`);
    await replay(config, {
      resource: 'batches',
      table: 'from_offsets',
      from: [...from].map(([p, o]) => `${p}:${o}`).join(','),
      follow: false,
    });
    assert.deepEqual(await ids('from_offsets'), want);
    const committed = await committedOffsets(
      config,
      `${config.sinks.group}-replay-${config.clickhouse.database}-from_offsets`,
      topic,
    );
    for (const p of [0, 1, 2]) assert.equal(committed.get(p), marks.get(`${topic}:${p}`), `partition ${p}`);
  });
});
