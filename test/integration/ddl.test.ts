// Against a real ClickHouse (CLICKHOUSE_URL, default http://127.0.0.1:8123; 18.16 and current releases):
// every resource's tables and views from the Avro schemas, rows read back exactly, current-state views,
// and an ADD COLUMN evolution. Works in a fresh database that it drops at the end.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import {
  RESOURCES,
  avroType,
  entityKey,
  valueSchema,
  type AvroRecordSchema,
  type ResourceName,
} from '../../schemas/index.ts';
import {
  INDEX_COLUMN,
  deriveLayout,
  type ResourceLayout,
  type TableLayout,
} from '../../sinks/schema/layout.ts';
import { applySchema } from '../../sinks/schema/migrate.ts';
import { IncompatibleTableError, replaceViewStatements } from '../../sinks/schema/ddl.ts';
import { createRowMapper } from '../../sinks/schema/rows.ts';
import { Convert } from '../../sinks/schema/types.ts';
import { serverFeatures } from '../../sinks/schema/features.ts';
import { TableTarget } from '../../sinks/target.ts';
import { createLogger } from '../../core/log.ts';
import { SAMPLES } from '../unit/schemas/samples.ts';
import { withStoredKey } from '../helpers/stored-key.ts';
import { existingColumns, mapRecords, withNewFields } from '../helpers/layout-rows.ts';

const url = process.env.CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
const database = `ddl_test_${randomBytes(4).toString('hex')}`;
let client: ClickHouseClient;
let nextOffset = 100;
const INGESTED_AT = 1764140000;

before(async () => {
  client = createClient({
    url,
    username: process.env.CLICKHOUSE_USER ?? 'default',
    password: process.env.CLICKHOUSE_PASSWORD ?? '',
    // Int64 as strings and inf/nan spelled out, so that reading back is exact.
    clickhouse_settings: {
      output_format_json_quote_64bit_integers: 1,
      output_format_json_quote_denormals: 1,
    },
  });
});

after(async () => {
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

async function select<T>(query: string): Promise<T[]> {
  const rs = await client.query({ query, format: 'JSONEachRow' });
  return rs.json<T>();
}

function layoutOf(resource: ResourceName, schema: AvroRecordSchema = valueSchema(resource)): ResourceLayout {
  return deriveLayout(resource, schema, { database });
}

/** Encodes and decodes through Avro (as the sink receives it), maps, and inserts with JSONEachRow. */
async function insert(
  layout: ResourceLayout,
  records: readonly unknown[],
  schema?: AvroRecordSchema,
): Promise<void> {
  const mapped = mapRecords(layout, records, {
    topic: `instabase.${layout.resource}`,
    offset: nextOffset,
    ingestedAt: INGESTED_AT,
    ...(schema ? { schema } : {}),
  });
  nextOffset += records.length;
  for (const { name, rows } of mapped.tables) {
    if (rows.length)
      await client.insert({ table: `${database}.${name}`, values: rows, format: 'JSONEachRow' });
  }
}

/** ClickHouse's JSON output back to the values avsc decodes. */
function fromClickHouse(v: unknown, how: Convert | undefined): unknown {
  if (v === null) return null;
  switch (how) {
    case Convert.Int64: {
      const big = BigInt(v as string);
      const n = Number(big);
      return BigInt(n) === big ? n : big;
    }
    case Convert.Float64:
      return v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v === 'nan' ? NaN : v;
    case Convert.Bool:
      return v === 1;
    case Convert.ArrayInt64:
      return (v as unknown[]).map((x) => fromClickHouse(x, Convert.Int64));
    case Convert.ArrayFloat64:
      return (v as unknown[]).map((x) => fromClickHouse(x, Convert.Float64));
    case Convert.ArrayBool:
      return (v as unknown[]).map((x) => x === 1);
    default:
      return v;
  }
}

/** The data columns (and a child table's _idx), converted back to avsc's values. */
async function readTable(table: TableLayout): Promise<Record<string, unknown>[]> {
  const data = table.columns.filter((c) => c.source === 'data' || c.name === INDEX_COLUMN);
  const rows = await select<Record<string, unknown>>(
    `SELECT ${data.map((c) => `\`${c.name}\``).join(', ')} FROM ${database}.${table.name}`,
  );
  return rows.map((row) =>
    Object.fromEntries(data.map((c) => [c.name, fromClickHouse(row[c.name], c.convert)])),
  );
}

function byKey(
  resource: ResourceName,
  rows: readonly Record<string, unknown>[],
): Map<string, Record<string, unknown>> {
  return new Map(rows.map((r) => [entityKey(resource, r), r]));
}

test('creates every table and view, idempotently', async (t) => {
  const [version] = await select<{ v: string }>('SELECT version() AS v');
  t.diagnostic(`ClickHouse ${version?.v} at ${url}, database ${database}`);
  for (const r of RESOURCES) {
    const layout = layoutOf(r);
    await applySchema(client, layout);
    const again = await applySchema(client, layout);
    assert.deepEqual(
      again,
      [`CREATE DATABASE IF NOT EXISTS \`${database}\``],
      `${r}: second run changes nothing`,
    );
  }
  const tables = await select<{ name: string; engine: string }>(
    `SELECT name, engine FROM system.tables WHERE database = '${database}' ORDER BY name`,
  );
  const expected = RESOURCES.flatMap((r) => {
    const l = layoutOf(r);
    return [
      ...[l.table, ...l.children].map((t) => `${t.name} ReplacingMergeTree`),
      ...l.views.map((v) => `${v.name} View`),
    ];
  }).sort();
  assert.deepEqual(
    tables.map((t) => `${t.name} ${t.engine}`),
    expected,
  );
});

test('every sample reads back exactly, child rows included', async () => {
  for (const r of RESOURCES) {
    const layout = layoutOf(r);
    await insert(layout, SAMPLES[r]);
    const rows = byKey(r, await readTable(layout.table));
    assert.equal(rows.size, SAMPLES[r].length, r);
    for (const sample of SAMPLES[r]) {
      // A record without id is stored under its key's stand-in (sinks/schema/rows.ts).
      const decoded = withStoredKey(
        r,
        structuredClone(avroType(r).fromBuffer(avroType(r).toBuffer(sample))) as Record<string, unknown>,
      );
      const row = rows.get(entityKey(r, decoded));
      assert.ok(row, `${r}: ${entityKey(r, decoded)}`);
      const expected = Object.fromEntries(Object.keys(row).map((k) => [k, decoded[k]]));
      assert.deepEqual(row, expected, r);
      for (const child of layout.children) {
        const items = decoded[child.field] as Record<string, unknown>[];
        const childRows = (await readTable(child)).filter((c) => entityKey(r, c) === entityKey(r, decoded));
        childRows.sort((a, b) => Number(a._idx) - Number(b._idx));
        const columns = child.columns.filter((c) => c.source === 'data' || c.name === INDEX_COLUMN);
        assert.deepEqual(
          childRows,
          items.map((item, i) => {
            const full: Record<string, unknown> = { ...decoded, ...item, _idx: i };
            return Object.fromEntries(columns.map((c) => [c.name, full[c.name]]));
          }),
          child.name,
        );
      }
    }
  }
  const [meta] = await select<Record<string, unknown>>(
    `SELECT _topic, _partition, toUnixTimestamp(_ingested_at) AS t FROM ${database}.batches LIMIT 1`,
  );
  assert.deepEqual(meta, { _topic: 'instabase.batches', _partition: 0, t: INGESTED_AT });
});

test('DateTime aliases for dashboards', async () => {
  const [run] = await select<{ s: number; f: number | null }>(
    `SELECT toUnixTimestamp(start_timestamp_dt) AS s, finish_timestamp_dt AS f FROM ${database}.runs_current WHERE id = 'run-2'`,
  );
  assert.deepEqual(run, { s: 1765912514, f: null });
  const [audit] = await select<{ t: number }>(
    `SELECT toUnixTimestamp(timestamp_dt) AS t FROM ${database}.audit_logs_current WHERE timestamp_millis = '1749139277810'`,
  );
  assert.equal(audit?.t, 1749139277);
});

test('current-state views show the latest version per key and hide deleted entities', async () => {
  const batches = layoutOf('batches');
  const [live, deleted] = SAMPLES.batches as [Record<string, unknown>, Record<string, unknown>];
  const current = async () =>
    await select<{ id: string; name: string | null }>(
      `SELECT id, name FROM ${database}.batches_current ORDER BY id`,
    );
  // The sample set already holds one deleted batch.
  assert.deepEqual(await current(), [{ id: '9007199254740991', name: live.name as string }]);

  await insert(batches, [{ ...live, name: 'v2' }]);
  await insert(batches, [{ ...deleted, _deleted: false, name: 'back again' }]);
  assert.deepEqual(await current(), [
    { id: '-9007199254740991', name: 'back again' },
    { id: '9007199254740991', name: 'v2' },
  ]);
  // At-least-once: a redelivered message has its original (lower) offset and changes nothing.
  const redelivered = createRowMapper(batches);
  const out = redelivered.buffers();
  redelivered.map(live, { topic: 'instabase.batches', partition: 0, offset: '1' }, INGESTED_AT, out);
  await client.insert({ table: `${database}.batches`, values: out.flat(), format: 'JSONEachRow' });
  await insert(batches, [{ ...live, name: 'v2', _deleted: true }]);
  assert.deepEqual(await current(), [{ id: '-9007199254740991', name: 'back again' }]);
  const [{ n } = { n: '0' }] = await select<{ n: string }>(`SELECT count() AS n FROM ${database}.batches`);
  assert.ok(Number(n) >= 2, 'older versions stay in the table until merges drop them');

  // Child rows follow their parent's current version: a shorter fields list hides the dropped items,
  // and deleting the document hides all of them.
  const results = layoutOf('runs_results');
  const doc = SAMPLES.runs_results[0] as Record<string, unknown>;
  const fieldsOf = async () =>
    select<{ name: string }>(
      `SELECT name FROM ${database}.runs_results_fields_current WHERE run_id = 'run-1' AND file_index = 0 ORDER BY _idx`,
    );
  assert.equal((await fieldsOf()).length, 3);
  await insert(results, [{ ...doc, fields: [(doc.fields as unknown[])[2]] }]);
  assert.deepEqual(await fieldsOf(), [{ name: 'total' }]);
  await insert(results, [{ ...doc, fields: [], _deleted: true }]);
  assert.deepEqual(await fieldsOf(), []);
  const docs = await select<{ n: string }>(`SELECT count() AS n FROM ${database}.runs_results_current`);
  assert.deepEqual(docs, [{ n: '1' }]);
});

test('a new field becomes a column, and the views follow', async () => {
  const v2 = withNewFields('batches');
  const layout = layoutOf('batches', v2);
  const ran = await applySchema(client, layout);
  assert.deepEqual(ran.slice(1), [
    `ALTER TABLE \`${database}\`.\`batches\` ADD COLUMN \`owner_email\` Nullable(String)`,
    `ALTER TABLE \`${database}\`.\`batches\` ADD COLUMN \`archived_at_ms\` Nullable(Int64)`,
    `ALTER TABLE \`${database}\`.\`batches\` ADD COLUMN \`archived_at_dt\` Nullable(DateTime) ALIAS toDateTime(intDiv(\`archived_at_ms\`, 1000))`,
    ...replaceViewStatements(layout, layout.views[0] as ResourceLayout['views'][number]),
  ]);
  await insert(
    layout,
    [{ ...(SAMPLES.batches[0] as object), id: 7, owner_email: 'o@x', archived_at_ms: 1764140000000 }],
    v2,
  );
  const rows = await select<Record<string, unknown>>(
    `SELECT id, owner_email, archived_at_ms, toUnixTimestamp(archived_at_dt) AS a FROM ${database}.batches_current ORDER BY id`,
  );
  assert.deepEqual(rows, [
    { id: '-9007199254740991', owner_email: null, archived_at_ms: null, a: null },
    { id: '7', owner_email: 'o@x', archived_at_ms: '1764140000000', a: 1764140000 },
  ]);
  assert.deepEqual(await applySchema(client, layout), [`CREATE DATABASE IF NOT EXISTS \`${database}\``]);
});

test('a retyped field stops with an error naming table, column and types, and changes nothing', async () => {
  const v1 = valueSchema('files_metadata');
  const retyped: AvroRecordSchema = {
    ...v1,
    fields: v1.fields.map((f) => (f.name === 'size' ? { ...f, type: ['null', 'string'] } : f)),
  };
  await assert.rejects(applySchema(client, layoutOf('files_metadata', retyped)), (e: unknown) => {
    assert.ok(e instanceof IncompatibleTableError);
    assert.deepEqual(
      [e.table, e.column, e.oldType, e.newType],
      ['files_metadata', 'size', 'Nullable(Int64)', 'Nullable(String)'],
    );
    return true;
  });
  const [col] = await select<{ type: string }>(
    `SELECT type FROM system.columns WHERE database = '${database}' AND table = 'files_metadata' AND name = 'size'`,
  );
  assert.equal(col?.type, 'Nullable(Int64)');
});

test("TableTarget makes the tables this server's version calls for (18.16: the DDL of before)", async (t) => {
  const features = await serverFeatures(client);
  t.diagnostic(`features for ${features.version.join('.')}: ${JSON.stringify(features)}`);
  const db = `${database}_target`;
  try {
    for (const resource of RESOURCES) {
      await new TableTarget({
        resource,
        topic: `t.${resource}`,
        dlqTopic: `t.${resource}.sink-dlq`,
        database: db,
        clickhouse: client,
        logger: createLogger('test', undefined, 'silent'),
      }).prepare(1, avroType(resource));
      const layout = deriveLayout(resource, valueSchema(resource), { database: db, features });
      for (const table of [layout.table, ...layout.children]) {
        const columns = await select<{ name: string; type: string; k: string }>(
          `SELECT name, type, default_kind AS k FROM system.columns ` +
            `WHERE database = '${db}' AND table = '${table.name}'`,
        );
        assert.deepEqual(
          columns.map((c) => [c.name, c.type, c.k]),
          existingColumns(table).map((c) => [c.name, c.type, c.default_kind]),
          table.name,
        );
      }
    }
  } finally {
    await client.command({ query: `DROP DATABASE IF EXISTS ${db}` });
  }
});
