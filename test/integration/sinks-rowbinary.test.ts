/**
 * What ClickHouse stores from the sinks' RowBinary inserts (sinks/schema/rowbinary.ts) against what it
 * stored from their JSONEachRow inserts (the row mapper, sinks/schema/rows.ts), on ClickHouse 18.16 (the
 * local stack) and on 26.x (chDB, skipped with the reason when its venv is missing): for every resource,
 * its samples and edge variants (test/unit/sinks/rowbinary-cases.ts: escapes, NULLs, int64 at ±2^63,
 * NaN and infinities, unicode, empty strings and arrays, child items, keyless records) go through Avro
 * into two identical tables, one per path, and every column of every row, `_dt` columns included, must
 * read back the same. Also: records of two writer schemas with different fields in one buffer (two
 * RowBinary inserts, one per column list) land like their JSONEachRow rows, the older ones with the
 * newer columns at their defaults.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import { createClickHouse } from '../../core/clickhouse.ts';
import {
  RESOURCES,
  parseAvroSchema,
  resourceMeta,
  valueSchema,
  type AvroRecordSchema,
  type ResourceName,
} from '../../schemas/index.ts';
import { BatchBuffer } from '../../sinks/batch-buffer.ts';
import { insertEncoded } from '../../sinks/runner.ts';
import { insertSettings, serverFeatures, type ServerFeatures } from '../../sinks/schema/features.ts';
import { deriveLayout, type ResourceLayout } from '../../sinks/schema/layout.ts';
import { applySchema } from '../../sinks/schema/migrate.ts';
import { createRowMapper, type Row } from '../../sinks/schema/rows.ts';
import { createTranscoder } from '../../sinks/schema/rowbinary.ts';
import { qualifiedName, quoteIdentifier } from '../../sinks/schema/sql.ts';
import { chdbUnavailable, startChdbClickHouse, type ChdbClickHouse } from '../chdb/harness.ts';
import { withNewFields, jsonLines } from '../helpers/layout-rows.ts';
import { cleanUp, testClickHouse } from '../helpers/sink-pipeline.ts';
import { testConfig, uniqueName } from '../helpers/pipeline.ts';
import { edgeRecords } from '../unit/sinks/rowbinary-cases.ts';

const INGESTED_AT = 1764140000;
const TOPIC = 'instabase.rb';

function wire(schema: AvroRecordSchema, record: unknown): Buffer {
  const body = parseAvroSchema(schema).toBuffer(record);
  const v = Buffer.alloc(body.length + 5);
  body.copy(v, 5);
  return v;
}

/** Both paths into tables `<resource>_json…` and `<resource>_bin…`; the records of each schema in turn. */
async function insertBoth(
  ch: ClickHouseClient,
  features: ServerFeatures,
  database: string,
  resource: ResourceName,
  batches: { schema: AvroRecordSchema; records: readonly unknown[] }[],
  suffix = '',
): Promise<{ json: ResourceLayout; bin: ResourceLayout }> {
  const layouts = (table: string) =>
    batches.map(({ schema }) => deriveLayout(resource, schema, { database, table, features }));
  const json = layouts(`${resource}_json${suffix}`);
  const bin = layouts(`${resource}_bin${suffix}`);
  // As a sink prepares them: each schema once, in the order first seen (v1, v2, then v1 again is known).
  const seen = new Set<AvroRecordSchema>();
  for (const [b, { schema }] of batches.entries()) {
    if (seen.has(schema)) continue;
    seen.add(schema);
    await applySchema(ch, json[b]!);
    await applySchema(ch, bin[b]!);
  }
  const binary = new BatchBuffer(INGESTED_AT * 1000, INGESTED_AT);
  let offset = 0;
  for (const [b, { schema, records }] of batches.entries()) {
    const mapper = createRowMapper(json[b]!);
    const out = mapper.buffers();
    const type = parseAvroSchema(schema);
    const transcoder = createTranscoder(bin[b]!, schema, TOPIC);
    const tables = transcoder.tables.map((t) => ({ ...t, table: qualifiedName(database, t.table) }));
    for (const r of records) {
      mapper.map(type.fromBuffer(type.toBuffer(r)), { topic: TOPIC, partition: 1, offset }, INGESTED_AT, out);
      transcoder.transcode(wire(schema, r), 5, 1, offset, INGESTED_AT, binary.binary(b, tables));
      offset += 1;
    }
    for (const [i, name] of mapper.tables.entries()) {
      const rows = out[i] as Row[];
      if (rows.length)
        await insertEncoded(
          ch,
          qualifiedName(database, name),
          jsonLines(rows),
          insertSettings(features, undefined),
        );
    }
  }
  for (const e of binary.encoded.values()) {
    if (e.rows === 0) continue;
    await insertEncoded(ch, e.table, e.body(), insertSettings(features, undefined), {
      format: e.format,
      columns: e.columns!,
    });
  }
  // The widest layout: the last schema's columns are the table's when it is the newest.
  const widest = (ls: ResourceLayout[]) =>
    ls.reduce((a, l) => (l.table.columns.length > a.table.columns.length ? l : a));
  return { json: widest(json), bin: widest(bin) };
}

/** Every column (ALIAS and MATERIALIZED ones too) of every row, as text, in offset order. */
async function rowsOf(ch: ClickHouseClient, database: string, table: string, columns: readonly string[]) {
  const order = columns.includes('_idx') ? '_offset, _idx' : '_offset';
  const rs = await ch.query({
    query: `SELECT ${columns.map(quoteIdentifier).join(', ')} FROM ${qualifiedName(database, table)} ORDER BY ${order}`,
    format: 'TabSeparated',
  });
  return (await rs.text()).split('\n');
}

async function compare(ch: ClickHouseClient, features: ServerFeatures, database: string) {
  let rows = 0;
  for (const resource of RESOURCES) {
    const records = edgeRecords(resource, resourceMeta(resource).key);
    const { json, bin } = await insertBoth(ch, features, database, resource, [
      { schema: valueSchema(resource), records },
    ]);
    const pairs = [
      [json.table, bin.table],
      ...json.children.map((c, i) => [c, bin.children[i]!] as const),
    ] as const;
    for (const [j, b] of pairs) {
      const columns = j.columns.map((c) => c.name);
      const expected = await rowsOf(ch, database, j.name, columns);
      const got = await rowsOf(ch, database, b.name, columns);
      assert.ok(expected.length > 1, `${j.name} has rows`);
      assert.equal(got.length, expected.length, `${b.name} row count`);
      got.forEach((row, i) => {
        const want = expected[i]!.split('\t');
        row
          .split('\t')
          .forEach((v, c) =>
            assert.equal(v.slice(0, 200), want[c]?.slice(0, 200), `${b.name} row ${i} column ${columns[c]}`),
          );
        assert.equal(row, expected[i], `${b.name} row ${i}`);
      });
      rows += got.length - 1;
    }
  }
  return rows;
}

async function schemaChange(ch: ClickHouseClient, features: ServerFeatures, database: string) {
  const resource: ResourceName = 'batches';
  const v1 = valueSchema(resource);
  const v2 = withNewFields(resource);
  const records = edgeRecords(resource, resourceMeta(resource).key).slice(0, 4);
  const newer = records.map((r, i) => ({
    ...r,
    id: 9_000 + i,
    owner_email: i % 2 ? null : 'o\twner@x',
    archived_at_ms: i % 2 ? null : 1764140000999,
  }));
  // v1 records, then v2 ones, then v1 again: one insert per column list on the RowBinary side.
  const { json, bin } = await insertBoth(
    ch,
    features,
    database,
    resource,
    [
      { schema: v1, records: records.slice(0, 2) },
      { schema: v2, records: newer },
      { schema: v1, records: records.slice(2) },
    ],
    '_evolved',
  );
  const columns = json.table.columns.map((c) => c.name);
  assert.ok(columns.includes('owner_email'));
  const expected = await rowsOf(ch, database, json.table.name, columns);
  const got = await rowsOf(ch, database, bin.table.name, columns);
  assert.equal(expected.length, 9);
  assert.deepEqual(got, expected);
}

describe('RowBinary inserts store what JSONEachRow inserts stored: ClickHouse 18.16 (local stack)', () => {
  const db = uniqueName('itrb_');
  const config = testConfig(db);
  let ch: ClickHouseClient;
  let features: ServerFeatures;
  before(async () => {
    ch = testClickHouse(config);
    features = await serverFeatures(ch);
  });
  after(async () => {
    await ch?.close();
    await cleanUp(config);
  });

  test('every resource, every edge record, every column', async () => {
    const n = await compare(ch, features, db);
    assert.ok(n > 100, `${n} rows compared`);
  });

  test('records of two writer schemas in one buffer', async () => {
    await schemaChange(ch, features, db);
  });
});

const unavailable = chdbUnavailable();
describe(
  'RowBinary inserts store what JSONEachRow inserts stored: ClickHouse 26.x (chDB)',
  { skip: unavailable ? `no current ClickHouse for this run: ${unavailable}` : false },
  () => {
    const db = uniqueName('itrbcur_');
    let server: ChdbClickHouse;
    let ch: ClickHouseClient;
    let features: ServerFeatures;
    before(async () => {
      server = await startChdbClickHouse();
      ch = createClickHouse(testConfig(db, {}, { CLICKHOUSE_URL: server.url, CLICKHOUSE_DATABASE: db }));
      features = await serverFeatures(ch);
    });
    after(async () => {
      await ch?.close();
      await server?.stop();
    });

    test('every resource, every edge record, every column', async () => {
      const n = await compare(ch, features, db);
      assert.ok(n > 100, `${n} rows compared`);
    });

    test('records of two writer schemas in one buffer', async () => {
      await schemaChange(ch, features, db);
    });
  },
);
