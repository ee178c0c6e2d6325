/**
 * The sinks' own code against a current ClickHouse: the engine of ClickHouse 26.x (chDB, PyPI
 * chdb-core, pinned in test/python/requirements.txt) behind test/chdb/server.py, which @clickhouse/client
 * talks to like to a server. Nothing here is a stand-in: TableTarget.prepare, applySchema, the row
 * mapper, the sinks' insert (insertEncoded), createDashboardViews and the dashboard's queries all run
 * as they do in production, and at the end the whole sink daemon reads the shared Kafka into it. The
 * 18.16 integration tests (ddl, dashboard, sinks…) stay as they are.
 *
 * Skipped, with the reason, when the venv is missing (bash test/python/setup.sh makes it; CI runs it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import { clickhouseSource } from '../../cli/dashboard/queries.ts';
import { createClickHouse, serverVersion } from '../../core/clickhouse.ts';
import { createLogger } from '../../core/log.ts';
import type { Config } from '../../core/config.ts';
import { RESOURCE_NAMES } from '../../core/resources.ts';
import {
  RESOURCES,
  avroType,
  entityKey,
  valueSchema,
  type AvroRecordSchema,
  type ResourceName,
} from '../../schemas/index.ts';
import { insertEncoded } from '../../sinks/runner.ts';
import { replaceViewStatements } from '../../sinks/schema/ddl.ts';
import {
  FEATURE_TABLE,
  LEGACY_FEATURES,
  insertSettings,
  serverFeatures,
  type ServerFeatures,
} from '../../sinks/schema/features.ts';
import {
  INDEX_COLUMN,
  deriveLayout,
  type ResourceLayout,
  type TableLayout,
} from '../../sinks/schema/layout.ts';
import { applySchema } from '../../sinks/schema/migrate.ts';
import { Convert } from '../../sinks/schema/types.ts';
import { TableTarget } from '../../sinks/target.ts';
import {
  AUDIT_PER_MINUTE,
  FIELD_STATS,
  PIPELINE_FRESHNESS,
  RUNS_BY_STATUS,
  createDashboardViews,
  dashboardObjects,
} from '../../sinks/views.ts';
import { chdbUnavailable, startChdbClickHouse, type ChdbClickHouse } from '../chdb/harness.ts';
import { quietLogger, testConfig, uniqueName } from '../helpers/pipeline.ts';
import {
  cleanUp,
  encodeMessages,
  makeRecords,
  makePipelineTopics,
  produce,
  registerResource,
  scalar,
  select as selectFrom,
  testClickHouse,
  waitCommitted,
} from '../helpers/sink-pipeline.ts';
import { resourceTopic } from '../../core/topics.ts';
import { startSinks, type RunningSinks } from '../../sinks/daemon.ts';
import { SAMPLES } from '../unit/schemas/samples.ts';
import { withStoredKey } from '../helpers/stored-key.ts';
import { jsonLines, mapRecords, withNewFields } from '../helpers/layout-rows.ts';

const unavailable = chdbUnavailable();
const INGESTED_AT = 1764140000;

describe(
  'ClickHouse 26.x (chDB behind test/chdb/server.py) runs the sinks unchanged',
  {
    skip: unavailable ? `no current ClickHouse for this run: ${unavailable}` : false,
  },
  () => {
    let server: ChdbClickHouse;
    let config: Config;
    let ch: ClickHouseClient;
    let features: ServerFeatures;
    const db = uniqueName('itcur_');
    let nextOffset = 100;

    before(async () => {
      server = await startChdbClickHouse();
      config = testConfig(db, {}, { CLICKHOUSE_URL: server.url, CLICKHOUSE_DATABASE: db });
      ch = createClickHouse(config);
    });
    after(async () => {
      await ch?.close();
      await server?.stop();
    });

    async function select<T>(query: string): Promise<T[]> {
      const rs = await ch.query({
        query,
        format: 'JSONEachRow',
        // Int64 as strings and inf/nan spelled out, so that reading back is exact.
        clickhouse_settings: {
          output_format_json_quote_64bit_integers: 1,
          output_format_json_quote_denormals: 1,
        },
      });
      return rs.json<T>();
    }

    function layoutOf(resource: ResourceName, database = db, schema = valueSchema(resource)): ResourceLayout {
      return deriveLayout(resource, schema, { database, features });
    }

    /** Through Avro as the sink receives it, the row mapper, and the sink's insert with its settings. */
    async function insert(
      layout: ResourceLayout,
      records: readonly unknown[],
      options: { schema?: AvroRecordSchema; token?: string; offset?: number } = {},
    ): Promise<void> {
      const mapped = mapRecords(layout, records, {
        topic: `t.${layout.resource}`,
        offset: options.offset ?? nextOffset,
        sameOffset: options.offset !== undefined,
        ingestedAt: INGESTED_AT,
        ...(options.schema ? { schema: options.schema } : {}),
      });
      if (options.offset === undefined) nextOffset += records.length;
      for (const { name, rows } of mapped.tables) {
        if (!rows.length) continue;
        const table = `\`${layout.database}\`.\`${name}\``;
        const token = options.token === undefined ? undefined : `${options.token}|${name}`;
        await insertEncoded(ch, table, jsonLines(rows), insertSettings(features, token));
      }
    }

    function fromClickHouse(v: unknown, how: Convert | undefined): unknown {
      if (v === null) return null;
      switch (how) {
        case Convert.Int64: {
          const big = BigInt(v as string);
          return BigInt(Number(big)) === big ? Number(big) : big;
        }
        case Convert.Float64:
          return v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v === 'nan' ? NaN : v;
        case Convert.Bool:
          return v === true || v === 1;
        case Convert.ArrayInt64:
          return (v as unknown[]).map((x) => fromClickHouse(x, Convert.Int64));
        case Convert.ArrayFloat64:
          return (v as unknown[]).map((x) => fromClickHouse(x, Convert.Float64));
        case Convert.ArrayBool:
          return (v as unknown[]).map((x) => x === true || x === 1);
        default:
          return v;
      }
    }

    async function readTable(database: string, table: TableLayout): Promise<Record<string, unknown>[]> {
      const data = table.columns.filter((c) => c.source === 'data' || c.name === INDEX_COLUMN);
      const rows = await select<Record<string, unknown>>(
        `SELECT ${data.map((c) => `\`${c.name}\``).join(', ')} FROM \`${database}\`.${table.name}`,
      );
      return rows.map((row) =>
        Object.fromEntries(data.map((c) => [c.name, fromClickHouse(row[c.name], c.convert)])),
      );
    }

    test('the front reports the engine version, and every feature of the table is on', async () => {
      const [major] = await serverVersion(ch);
      assert.ok(major >= 26, `version ${server.version}`);
      features = await serverFeatures(ch);
      for (const { feature } of FEATURE_TABLE) assert.equal(features[feature], true, feature);
      assert.equal(features.dedupWindow, 1000);
    });

    test('TableTarget prepares every resource with the current DDL, and a second prepare changes nothing', async () => {
      for (const resource of RESOURCES) {
        const target = new TableTarget({
          resource,
          topic: `t.${resource}`,
          dlqTopic: `t.${resource}.sink-dlq`,
          database: db,
          clickhouse: ch,
          logger: quietLogger,
        });
        await target.prepare(1, avroType(resource));
        assert.deepEqual(await applySchema(ch, layoutOf(resource)), [
          `CREATE DATABASE IF NOT EXISTS \`${db}\``,
        ]);
      }
      const tables = await select<{ name: string; engine_full: string }>(
        `SELECT name, engine_full FROM system.tables WHERE database = '${db}' AND engine != 'View' ORDER BY name`,
      );
      const mains = new Set<string>(RESOURCES);
      assert.equal(
        tables.length,
        RESOURCES.reduce((n, r) => n + 1 + layoutOf(r).children.length, 0),
      );
      for (const t of tables) {
        const engine = mains.has(t.name)
          ? 'ReplacingMergeTree(_offset, _deleted)'
          : 'ReplacingMergeTree(_offset)';
        assert.ok(t.engine_full.startsWith(engine), `${t.name}: ${t.engine_full}`);
        assert.match(t.engine_full, /SETTINGS non_replicated_deduplication_window = 1000\b/, t.name);
        const partitioned = / PARTITION BY /.test(t.engine_full);
        assert.equal(partitioned, t.name === 'audit_logs', `${t.name}: ${t.engine_full}`);
      }
      assert.match(
        tables.find((t) => t.name === 'audit_logs')!.engine_full,
        /PARTITION BY toYYYYMM\(ifNull\(timestamp_dt, _fetched_at_dt\)\)/,
      );
      const columns = await select<{
        t: string;
        name: string;
        type: string;
        default_kind: string;
        compression_codec: string;
      }>(
        `SELECT table AS t, name, type, default_kind, compression_codec FROM system.columns WHERE database = '${db}' ` +
          `AND (t, name) IN (('runs', 'start_timestamp_dt'), ('batches', '_raw_json'), ('batches', '_topic'), ` +
          `('files_metadata', 'present'), ('runs', 'status'), ('runs', '_deleted'), ('audit_logs', 'timestamp_dt')) ORDER BY t, name`,
      );
      assert.deepEqual(
        columns.map((c) => [c.t, c.name, c.type, c.default_kind, c.compression_codec]),
        [
          ['audit_logs', 'timestamp_dt', "Nullable(DateTime64(3, 'UTC'))", 'MATERIALIZED', ''],
          ['batches', '_raw_json', 'String', '', 'CODEC(ZSTD(3))'],
          ['batches', '_topic', 'LowCardinality(String)', '', ''],
          ['files_metadata', 'present', 'Nullable(Bool)', '', ''],
          ['runs', '_deleted', 'UInt8', '', ''],
          ['runs', 'start_timestamp_dt', "Nullable(DateTime64(9, 'UTC'))", 'MATERIALIZED', ''],
          ['runs', 'status', 'LowCardinality(Nullable(String))', '', ''],
        ],
      );
    });

    /** The samples of a resource, as inserted, are what its tables hold: every column, every child row. */
    async function assertSamplesReadBack(database: string, r: ResourceName): Promise<void> {
      const layout = layoutOf(r, database);
      {
        const rows = new Map(
          (await readTable(database, layout.table)).map((row) => [entityKey(r, row), row]),
        );
        assert.equal(rows.size, SAMPLES[r].length, r);
        for (const sample of SAMPLES[r]) {
          // A record without id is stored under its key's stand-in (sinks/schema/rows.ts).
          const decoded = withStoredKey(
            r,
            structuredClone(avroType(r).fromBuffer(avroType(r).toBuffer(sample))) as Record<string, unknown>,
          );
          const row = rows.get(entityKey(r, decoded));
          assert.ok(row, `${r}: ${entityKey(r, decoded)}`);
          assert.deepEqual(row, Object.fromEntries(Object.keys(row).map((k) => [k, decoded[k]])), r);
          for (const child of layout.children) {
            const items = decoded[child.field] as Record<string, unknown>[];
            const childRows = (await readTable(database, child))
              .filter((c) => entityKey(r, c) === entityKey(r, decoded))
              .sort((a, b) => Number(a._idx) - Number(b._idx));
            const cols = child.columns.filter((c) => c.source === 'data' || c.name === INDEX_COLUMN);
            assert.deepEqual(
              childRows,
              items.map((item, i) => {
                const full: Record<string, unknown> = { ...decoded, ...item, _idx: i };
                return Object.fromEntries(cols.map((c) => [c.name, full[c.name]]));
              }),
              child.name,
            );
          }
        }
      }
    }

    test('every sample reads back exactly, child rows included; event times are exact to the ms and ns', async () => {
      for (const r of RESOURCES) {
        await insert(layoutOf(r), SAMPLES[r], { token: `samples-${r}` });
        await assertSamplesReadBack(db, r);
      }
      // The stored DateTime64 columns hold the exact instant of the long: nanoseconds for runs.
      assert.deepEqual(
        await select(
          `SELECT id, toString(start_timestamp_dt) AS s, toUnixTimestamp64Nano(start_timestamp_dt) AS ns, ` +
            `toString(finish_timestamp_dt) AS f, toString(_fetched_at_dt) AS fetched FROM \`${db}\`.runs WHERE id LIKE 'run-%' ORDER BY id`,
        ),
        [
          {
            id: 'run-1',
            s: '2025-12-16 19:15:14.238248673',
            ns: '1765912514238248673',
            f: '2025-12-16 19:15:29.614833939',
            fetched: '2025-11-26 06:53:20.123',
          },
          {
            id: 'run-2',
            s: '2025-12-16 19:15:14.238248704',
            ns: '1765912514238248704',
            f: null,
            fetched: '2025-11-26 06:53:20.123',
          },
        ],
      );
      assert.deepEqual(
        await select(
          `SELECT timestamp_millis AS m, toString(timestamp_dt) AS t, toYYYYMM(ifNull(timestamp_dt, _fetched_at_dt)) AS p, ` +
            `_partition_id AS part FROM \`${db}\`.audit_logs ORDER BY m`,
        ),
        [
          { m: '1749139277810', t: '2025-06-05 16:01:17.810', p: 202506, part: '202506' },
          { m: 'not a number', t: null, p: 202511, part: '202511' },
        ],
      );
    });

    test('a flush repeated with its deduplication token adds nothing; another token does', async () => {
      const layout = layoutOf('conversations');
      const count = async () =>
        Number((await select<{ n: string }>(`SELECT count() AS n FROM \`${db}\`.conversations`))[0]!.n);
      const before = await count();
      const record = { ...SAMPLES.conversations[0]!, id: 'dedup-1' };
      await insert(layout, [record], { token: 'flush-A', offset: 5000 });
      await insert(layout, [record], { token: 'flush-A', offset: 5000 }); // the retry after a failed commit
      assert.equal(await count(), before + 1, 'the retried flush was deduplicated');
      await insert(layout, [record], { token: 'flush-B', offset: 5000 });
      assert.equal(await count(), before + 2, 'a different token is a different insert');
      assert.deepEqual(insertSettings(features, 'x'), { insert_deduplication_token: 'x', async_insert: '0' });
    });

    test('current-state views: the latest version per key, deleted entities hidden (is_deleted too)', async () => {
      const batches = layoutOf('batches');
      const [live, deleted] = SAMPLES.batches as [Record<string, unknown>, Record<string, unknown>];
      const current = () =>
        select<{ id: string; name: string | null }>(
          `SELECT id, name FROM \`${db}\`.batches_current ORDER BY id`,
        );
      assert.deepEqual(await current(), [{ id: '9007199254740991', name: live.name as string }]);
      await insert(batches, [{ ...live, name: 'v2' }]);
      await insert(batches, [{ ...deleted, _deleted: false, name: 'back again' }]);
      assert.deepEqual(await current(), [
        { id: '-9007199254740991', name: 'back again' },
        { id: '9007199254740991', name: 'v2' },
      ]);
      await insert(batches, [{ ...live, name: 'v2', _deleted: true }]);
      assert.deepEqual(await current(), [{ id: '-9007199254740991', name: 'back again' }]);
      // ReplacingMergeTree(_offset, _deleted): FINAL itself leaves the deleted key out.
      assert.deepEqual(await select(`SELECT id FROM \`${db}\`.batches FINAL ORDER BY id`), [
        { id: '-9007199254740991' },
      ]);

      const results = layoutOf('runs_results');
      const doc = SAMPLES.runs_results[0] as Record<string, unknown>;
      const fieldsOf = () =>
        select<{ name: string }>(
          `SELECT name FROM \`${db}\`.runs_results_fields_current WHERE run_id = 'run-1' AND file_index = 0 ORDER BY _idx`,
        );
      assert.equal((await fieldsOf()).length, 3);
      await insert(results, [{ ...doc, fields: [(doc.fields as unknown[])[2]] }]);
      assert.deepEqual(await fieldsOf(), [{ name: 'total' }]);
      await insert(results, [{ ...doc, fields: [], _deleted: true }]);
      assert.deepEqual(await fieldsOf(), []);
    });

    test('a new field becomes ADD COLUMN (a stored DateTime64 for a timestamp), and the view follows', async () => {
      const v2 = withNewFields('batches');
      const layout = layoutOf('batches', db, v2);
      const ran = await applySchema(ch, layout);
      assert.deepEqual(ran.slice(1), [
        `ALTER TABLE \`${db}\`.\`batches\` ADD COLUMN \`owner_email\` Nullable(String)`,
        `ALTER TABLE \`${db}\`.\`batches\` ADD COLUMN \`archived_at_ms\` Nullable(Int64)`,
        `ALTER TABLE \`${db}\`.\`batches\` ADD COLUMN \`archived_at_dt\` Nullable(DateTime64(3, 'UTC')) MATERIALIZED fromUnixTimestamp64Milli(\`archived_at_ms\`, 'UTC')`,
        ...replaceViewStatements(layout, layout.views[0]!),
      ]);
      await insert(
        layout,
        [{ ...(SAMPLES.batches[0] as object), id: 7, owner_email: 'o@x', archived_at_ms: 1764140000123 }],
        { schema: v2 },
      );
      assert.deepEqual(
        await select(
          `SELECT id, owner_email, toString(archived_at_dt) AS a FROM \`${db}\`.batches_current WHERE id = 7`,
        ),
        [{ id: '7', owner_email: 'o@x', a: '2025-11-26 06:53:20.123' }],
      );
      assert.deepEqual(await applySchema(ch, layout), [`CREATE DATABASE IF NOT EXISTS \`${db}\``]);
    });

    test('every dashboard view is created, and every dashboard query answers with the right numbers', async () => {
      const dash = uniqueName('itcurdash_');
      const { failed } = await createDashboardViews(ch, dash);
      assert.deepEqual(failed, [], 'nothing refused');
      for (const o of dashboardObjects(dash)) {
        const [n] = await select<{ n: string }>(
          `SELECT count() AS n FROM system.tables WHERE database = '${dash}' AND name = '${o.name}'`,
        );
        assert.equal(Number(n!.n), 1, o.name);
      }
      const T = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
      let offset = 1;
      const meta = () => ({
        _topic: 't',
        _partition: 0,
        _offset: offset++,
        _ingested_at: Math.floor(Date.now() / 1000),
      });
      const envelope = (hash: string) => ({
        _source_endpoint: 'test',
        _fetched_at: T,
        _content_hash: hash,
        _deleted: 0,
        _raw_json: '{}',
      });
      const put = (table: string, values: Record<string, unknown>[]) =>
        ch.insert({ table: `\`${dash}\`.\`${table}\``, values, format: 'JSONEachRow' });
      const ns = (ms: number) => String(BigInt(ms) * 1_000_000n);
      await put('runs', [
        { ...envelope('a'), id: 'r1', status: 'RUNNING', start_timestamp: ns(T + 5_000), ...meta() },
        { ...envelope('b'), id: 'r1', status: 'COMPLETE', start_timestamp: ns(T + 5_000), ...meta() },
        { ...envelope('c'), id: 'r2', status: 'FAILED', start_timestamp: ns(T + 65_000), ...meta() },
        { ...envelope('d'), _deleted: 1, id: 'r3', status: 'COMPLETE', start_timestamp: ns(T), ...meta() },
      ]);
      const doc = (d: number, cls: string | null) => ({
        ...envelope(`rr${d}`),
        run_id: 'r1',
        file_index: 0,
        document_index: d,
        class_name: cls,
        ...meta(),
        _offset: 1_000 + d,
      });
      const field = (
        d: number,
        i: number,
        name: string,
        error: string | null,
        confidence: number | null,
      ) => ({
        run_id: 'r1',
        file_index: 0,
        document_index: d,
        _idx: i,
        name,
        error,
        confidence,
        valid: error ? 0 : 1,
        ...meta(),
        _offset: 1_000 + d,
      });
      await put('runs_results_fields', [
        field(0, 0, 'total', null, 0.9),
        field(0, 1, 'date', 'Extraction failed', 0.5),
        field(1, 0, 'total', '', 0.7),
        field(1, 1, 'date', null, null),
      ]);
      await put('runs_results', [doc(0, 'Invoice'), doc(1, null)]);
      const audit = (hash: string, ms: number, logType: string, email: string) => ({
        ...envelope(hash),
        timestamp_millis: String(ms),
        timestamp_ms: ms,
        email,
        log_type: logType,
        ...meta(),
      });
      const events = [
        audit('e1', T + 1_000, 'login', 'a@x'),
        audit('e2', T + 2_000, 'login', 'a@x'),
        audit('e3', T + 3_000, 'api', 'b@x'),
        audit('e4', T + 61_000, 'api', 'b@x'),
      ];
      await put('audit_logs', events);
      await put('audit_logs', [{ ...events[0]!, ...meta() }]); // redelivered

      // The views, read directly.
      assert.deepEqual(
        await select(
          `SELECT toUInt32(minute) AS m, status, runs FROM \`${dash}\`.${RUNS_BY_STATUS} ORDER BY m, status`,
        ),
        [
          { m: T / 1000, status: 'COMPLETE', runs: '1' },
          { m: T / 1000 + 60, status: 'FAILED', runs: '1' },
        ],
      );
      assert.deepEqual(
        await select(
          `SELECT field_name, class_name, fields, errors, invalid, scored, round(mean_confidence, 6) AS c ` +
            `FROM \`${dash}\`.${FIELD_STATS} ORDER BY field_name, class_name`,
        ),
        [
          {
            field_name: 'date',
            class_name: '',
            fields: '1',
            errors: '0',
            invalid: '0',
            scored: '0',
            c: null,
          },
          {
            field_name: 'date',
            class_name: 'Invoice',
            fields: '1',
            errors: '1',
            invalid: '1',
            scored: '1',
            c: 0.5,
          },
          {
            field_name: 'total',
            class_name: '',
            fields: '1',
            errors: '0',
            invalid: '0',
            scored: '1',
            c: 0.7,
          },
          {
            field_name: 'total',
            class_name: 'Invoice',
            fields: '1',
            errors: '0',
            invalid: '0',
            scored: '1',
            c: 0.9,
          },
        ],
      );
      assert.deepEqual(
        await select(
          `SELECT toUInt32(minute) AS m, log_type, email, events FROM \`${dash}\`.${AUDIT_PER_MINUTE} ORDER BY m, log_type`,
        ),
        [
          { m: T / 1000, log_type: 'api', email: 'b@x', events: '1' },
          { m: T / 1000, log_type: 'login', email: 'a@x', events: '2' },
          { m: T / 1000 + 60, log_type: 'api', email: 'b@x', events: '1' },
        ],
      );
      const fresh = await select<{ resource: string; rows: string }>(
        `SELECT resource, rows FROM \`${dash}\`.${PIPELINE_FRESHNESS} ORDER BY resource`,
      );
      assert.deepEqual(
        fresh.map((r) => r.resource),
        [...RESOURCE_NAMES].sort(),
      );

      // The dashboard's own queries (cli/dashboard/queries.ts), as the page asks them.
      const source = clickhouseSource(
        testConfig(dash, {}, { CLICKHOUSE_URL: server.url, CLICKHOUSE_DATABASE: dash }),
        ch,
        { status: async () => [], now: () => T + 5 * 60_000 },
      );
      const runs = await source.runs(60);
      assert.equal(runs.total, 2);
      assert.deepEqual(
        runs.series.map((s) => [s.name, s.counts.reduce((a, b) => a + b, 0)]),
        [
          ['COMPLETE', 1],
          ['FAILED', 1],
        ],
      );
      const auditData = await source.audit(60);
      assert.equal(auditData.total, 4);
      assert.deepEqual(auditData.topUsers, [
        { email: 'a@x', events: 2 },
        { email: 'b@x', events: 2 },
      ]);
      const fieldsData = await source.fields();
      assert.equal(fieldsData.total, 4);
      assert.deepEqual(
        fieldsData.byField.map((f) => [f.field_name, f.fields, f.errors, f.scored]),
        [
          ['date', 2, 1, 1],
          ['total', 2, 0, 2],
        ],
      );
      const pipeline = await source.pipeline();
      assert.deepEqual(pipeline.errors, []);
      const rowsOf = new Map(pipeline.resources.map((r) => [r.resource, r.rows]));
      assert.equal(rowsOf.get('audit_logs'), 5, 'the redelivered event is its own insert: a raw row');
      // optimize_on_insert (on by default since 20.x, absent from 18.16, which counts 4) merges the
      // two versions of r1 that arrived in one insert.
      assert.equal(rowsOf.get('runs'), 3);
      assert.equal(rowsOf.get('batches'), 0);
      assert.equal(pipeline.totals.rowsLastMinute, 3 + 5 + 2);
    });

    test('tables made by the 18.16 DDL keep working under the current DDL, as they are', async () => {
      const legacy = uniqueName('itcurold_');
      // The 18.16 DDL and dashboard on a current server: everything is created.
      const { failed } = await createDashboardViews(ch, legacy, { features: LEGACY_FEATURES });
      assert.deepEqual(failed, []);
      const ran: string[] = [];
      for (const resource of RESOURCES) {
        ran.push(
          ...(await applySchema(
            ch,
            deriveLayout(resource, valueSchema(resource), { database: legacy, features }),
          )),
        );
      }
      // Only the deduplication window, once per table; the ALIAS `_dt` columns and the engine stay.
      const tables = RESOURCES.flatMap((r) => {
        const l = layoutOf(r, legacy);
        return [l.table, ...l.children].map((t) => t.name);
      });
      assert.deepEqual(
        ran.filter((q) => !q.startsWith('CREATE DATABASE')).sort(),
        tables
          .map(
            (t) =>
              `ALTER TABLE \`${legacy}\`.\`${t}\` MODIFY SETTING non_replicated_deduplication_window = 1000`,
          )
          .sort(),
      );
      const again: string[] = [];
      for (const resource of RESOURCES) again.push(...(await applySchema(ch, layoutOf(resource, legacy))));
      assert.deepEqual(
        again.filter((q) => !q.startsWith('CREATE DATABASE')),
        [],
      );
      const [kind] = await select<{ k: string; type: string }>(
        `SELECT default_kind AS k, type FROM system.columns WHERE database = '${legacy}' AND table = 'runs' AND name = 'start_timestamp_dt'`,
      );
      assert.deepEqual(kind, { k: 'ALIAS', type: 'Nullable(DateTime)' });
      // The current row mapper and insert settings fill the old tables.
      for (const r of RESOURCES) {
        await insert(layoutOf(r, legacy), SAMPLES[r], { token: `legacy-${r}` });
        await assertSamplesReadBack(legacy, r);
      }
    });
  },
);

describe(
  'the sink daemon from Kafka into ClickHouse 26.x (chDB)',
  {
    skip: unavailable ? `no current ClickHouse for this run: ${unavailable}` : false,
    timeout: 180_000,
  },
  () => {
    const prefix = uniqueName('itcursink');
    let server: ChdbClickHouse;
    let config: Config;
    let ch: ClickHouseClient;
    let sinks: RunningSinks | undefined;
    let fatal: Error | undefined;

    before(async () => {
      server = await startChdbClickHouse();
      config = testConfig(
        prefix,
        { sinks: { flushRows: 100, flushMs: 200, group: `${prefix}-sink` } },
        { CLICKHOUSE_URL: server.url },
      );
      ch = testClickHouse(config);
      await makePipelineTopics(config, ['batches', 'audit_logs']);
    });
    after(async () => {
      await sinks?.stop().catch(() => undefined);
      await ch?.close();
      if (config) await cleanUp(config);
      await server?.stop();
    });

    test('batches and audit logs land, the views and the audit aggregate follow, deletes are hidden', async () => {
      const batches = await registerResource(config, 'batches');
      const audit = await registerResource(config, 'audit_logs');
      const batchTopic = resourceTopic(config, 'batches');
      const auditTopic = resourceTopic(config, 'audit_logs');
      await produce(config, batchTopic, encodeMessages(batches, makeRecords('batches', 1, 150)));
      // A later version of batch 1 that deletes it.
      await produce(
        config,
        batchTopic,
        encodeMessages(
          batches,
          makeRecords('batches', 1, 1, () => ({ _deleted: true, _content_hash: 'gone' })),
        ),
      );
      await produce(config, auditTopic, encodeMessages(audit, makeRecords('audit_logs', 1, 40)));
      sinks = await startSinks(config, createLogger('test', undefined, 'silent'), {
        resources: ['batches', 'audit_logs'],
        onFatal: (err) => (fatal = err),
      });
      await waitCommitted(config, config.sinks.group, [batchTopic, auditTopic], 90_000, () => {
        if (fatal) throw fatal;
      });
      const db = `\`${config.clickhouse.database}\``;
      assert.equal(await scalar(ch, `SELECT count() AS n FROM ${db}.batches_current`), 149);
      assert.equal(await scalar(ch, `SELECT count() AS n FROM ${db}.batches_current WHERE id = 1`), 0);
      assert.equal(await scalar(ch, `SELECT count() AS n FROM ${db}.audit_logs_current`), 40);
      // The materialized view existed before the first insert (ensureDashboardViews at start-up).
      assert.equal(await scalar(ch, `SELECT sum(events) AS n FROM ${db}.${AUDIT_PER_MINUTE}`), 40);
      const fresh = await selectFrom<{ resource: string; rows: string }>(
        ch,
        `SELECT resource, rows FROM ${db}.${PIPELINE_FRESHNESS} WHERE resource IN ('batches', 'audit_logs') ORDER BY resource`,
      );
      assert.equal(Number(fresh[0]!.rows), 40);
      assert.ok(Number(fresh[1]!.rows) >= 150, `raw batches rows ${fresh[1]!.rows}`);
      // The daemon made the current DDL: the version picked the features.
      const [engine] = await selectFrom<{ e: string }>(
        ch,
        `SELECT engine_full AS e FROM system.tables WHERE database = '${config.clickhouse.database}' AND name = 'batches'`,
      );
      assert.match(
        engine!.e,
        /^ReplacingMergeTree\(_offset, _deleted\) .*non_replicated_deduplication_window = 1000/,
      );
      assert.deepEqual(
        await selectFrom(
          ch,
          `SELECT id, toString(created_at_dt) AS c FROM ${db}.batches_current WHERE id IN (2, 3) ORDER BY id`,
        ),
        [
          { id: '2', c: '2025-12-29 09:20:02.000' },
          { id: '3', c: '2025-12-29 09:20:03.000' },
        ],
      );
    });
  },
);
