import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RESOURCES,
  parseAvroSchema,
  valueSchema,
  type AvroRecordSchema,
  type AvroSchema,
} from '../../../schemas/index.ts';
import { deriveLayout, withAliasEventTimes } from '../../../sinks/schema/layout.ts';
import { LEGACY_FEATURES, featuresFor } from '../../../sinks/schema/features.ts';
import {
  IncompatibleTableError,
  createStatements,
  planAlter,
  type ExistingColumn,
} from '../../../sinks/schema/ddl.ts';
import { UnsupportedSchemaError } from '../../../sinks/schema/types.ts';
import { existingColumns } from '../../helpers/layout-rows.ts';

const DB = 'instabase';

const existing = existingColumns;

function withFields(schema: AvroRecordSchema, ...fields: AvroRecordSchema['fields']): AvroRecordSchema {
  return { ...schema, fields: [...schema.fields, ...fields] };
}

test('every resource derives tables, child tables and views', () => {
  const names = RESOURCES.map((r) => {
    const l = deriveLayout(r, valueSchema(r), { database: DB });
    return [l.table.name, ...l.children.map((c) => c.name), ...l.views.map((v) => v.name)];
  });
  assert.deepEqual(names.flat().sort(), [
    'audit_logs',
    'audit_logs_current',
    'batch_files',
    'batch_files_current',
    'batches',
    'batches_current',
    'conversation_document_metadata',
    'conversation_document_metadata_current',
    'conversation_documents',
    'conversation_documents_current',
    'conversations',
    'conversations_current',
    'files_metadata',
    'files_metadata_current',
    'queries_status',
    'queries_status_current',
    'queries_status_results',
    'queries_status_results_current',
    'runs',
    'runs_current',
    'runs_results',
    'runs_results_current',
    'runs_results_fields',
    'runs_results_fields_current',
    'runs_results_page_layouts',
    'runs_results_page_layouts_current',
  ]);
});

test('a writer type (as the registry client builds it) derives the same layout as the .avsc', () => {
  for (const r of RESOURCES) {
    const fromJson = deriveLayout(r, valueSchema(r), { database: DB });
    const fromType = deriveLayout(r, parseAvroSchema(valueSchema(r)), { database: DB });
    assert.deepEqual(fromType, fromJson, r);
  }
});

test('the batches DDL', () => {
  const [db, table, view] = createStatements(
    deriveLayout('batches', valueSchema('batches'), { database: DB }),
  );
  assert.equal(db, 'CREATE DATABASE IF NOT EXISTS `instabase`');
  assert.equal(
    table,
    [
      'CREATE TABLE IF NOT EXISTS `instabase`.`batches` (',
      '  `_source_endpoint` String,',
      '  `_ib_context` Nullable(String),',
      '  `_fetched_at` Int64,',
      '  `_content_hash` String,',
      '  `_deleted` UInt8,',
      '  `_raw_json` String,',
      '  `id` Int64,',
      '  `name` Nullable(String),',
      '  `workspace` Nullable(String),',
      '  `mount_point` Nullable(String),',
      '  `repo_owner` Nullable(String),',
      '  `batch_owner` Nullable(String),',
      '  `created_at_ms` Nullable(Int64),',
      '  `updated_at_ms` Nullable(Int64),',
      '  `path_suffix` Nullable(String),',
      '  `_nulled_fields` Array(String),',
      '  `_topic` String,',
      '  `_partition` Int32,',
      '  `_offset` UInt64,',
      '  `_ingested_at` DateTime DEFAULT now(),',
      '  `_fetched_at_dt` DateTime ALIAS toDateTime(intDiv(`_fetched_at`, 1000)),',
      '  `created_at_dt` Nullable(DateTime) ALIAS toDateTime(intDiv(`created_at_ms`, 1000)),',
      '  `updated_at_dt` Nullable(DateTime) ALIAS toDateTime(intDiv(`updated_at_ms`, 1000))',
      ')',
      'ENGINE = ReplacingMergeTree(`_offset`)',
      'ORDER BY (`id`)',
    ].join('\n'),
  );
  assert.match(
    view ?? '',
    /^CREATE VIEW IF NOT EXISTS `instabase`.`batches_current` AS SELECT `_source_endpoint`, .*`updated_at_dt` FROM `instabase`.`batches` FINAL WHERE `_deleted` = 0$/,
  );
});

test('runs_results: the documents table plus one row per field and per page layout', () => {
  const l = deriveLayout('runs_results', valueSchema('runs_results'), { database: DB, table: 'rr_replay' });
  assert.equal(l.table.name, 'rr_replay');
  assert.deepEqual(l.table.orderBy, ['run_id', 'file_index', 'document_index']);
  const fields = l.children.find((c) => c.field === 'fields');
  assert.ok(fields);
  assert.equal(fields.name, 'rr_replay_fields');
  assert.deepEqual(fields.orderBy, ['run_id', 'file_index', 'document_index', '_idx']);
  assert.deepEqual(
    fields.columns.map((c) => `${c.name} ${c.type}`),
    [
      'run_id String',
      'file_index Int64',
      'document_index Int64',
      '_idx UInt32',
      'name Nullable(String)',
      'value Nullable(String)',
      'type Nullable(String)',
      'confidence Nullable(Float64)',
      'ocr_confidence Nullable(Float64)',
      'error Nullable(String)',
      'valid Nullable(UInt8)',
      '_topic String',
      '_partition Int32',
      '_offset UInt64',
      '_ingested_at DateTime',
    ],
  );
  const statements = createStatements(l);
  const fieldsView = statements.find((s) => s.includes('`rr_replay_fields_current`'));
  assert.equal(
    fieldsView,
    'CREATE VIEW IF NOT EXISTS `instabase`.`rr_replay_fields_current` AS SELECT `run_id`, `file_index`, ' +
      '`document_index`, `_idx`, `name`, `value`, `type`, `confidence`, `ocr_confidence`, `error`, `valid`, ' +
      '`_topic`, `_partition`, `_offset`, `_ingested_at` FROM `instabase`.`rr_replay_fields` FINAL ' +
      'WHERE (`run_id`, `file_index`, `document_index`, `_offset`) IN (SELECT `run_id`, `file_index`, ' +
      '`document_index`, `_offset` FROM `instabase`.`rr_replay` FINAL WHERE `_deleted` = 0)',
  );
  // The main table has no column for the arrays that became child tables.
  assert.ok(!l.table.columns.some((c) => c.name === 'fields' || c.name === 'page_layouts'));
});

test('runs: nanosecond timestamps get a DateTime alias dividing by 1e9', () => {
  const l = deriveLayout('runs', valueSchema('runs'), { database: DB });
  const alias = l.table.columns.find((c) => c.name === 'start_timestamp_dt');
  assert.equal(alias?.expression, 'toDateTime(intDiv(`start_timestamp`, 1000000000))');
  assert.equal(alias?.type, 'Nullable(DateTime)');
});

test('audit_logs are deduplicated by their natural key', () => {
  const l = deriveLayout('audit_logs', valueSchema('audit_logs'), { database: DB });
  assert.deepEqual(l.table.orderBy, ['_content_hash']);
  assert.match(
    createStatements(l)[1] ?? '',
    /ReplacingMergeTree\(`_offset`\)\nORDER BY \(`_content_hash`\)$/,
  );
});

test('a nullable key is stored plain with a content-hash stand-in; a missing or non-scalar key is rejected', () => {
  const s = valueSchema('batches');
  const withType = (type: AvroSchema) => ({
    ...s,
    fields: s.fields.map((f) => (f.name === 'id' ? { ...f, type } : f)),
  });
  const id = deriveLayout('batches', withType(['null', 'long']), { database: DB }).table.columns.find(
    (c) => c.name === 'id',
  );
  assert.deepEqual([id?.type, id?.standIn], ['Int64', 'negative-content-hash']);
  const runs = deriveLayout('runs', valueSchema('runs'), { database: DB }).table.columns.find(
    (c) => c.name === 'id',
  );
  assert.deepEqual([runs?.type, runs?.standIn], ['String', 'content-hash']);
  assert.throws(
    () => deriveLayout('batches', withType(['null', 'double']), { database: DB }),
    UnsupportedSchemaError,
  );
  const noId = { ...s, fields: s.fields.filter((f) => f.name !== 'id') };
  assert.throws(() => deriveLayout('batches', noId, { database: DB }), /key field is not a column/);
});

test('planAlter: nothing to do for an up-to-date table, in either generation spelling', () => {
  const t = deriveLayout('batches', valueSchema('batches'), { database: DB }).table;
  assert.deepEqual(planAlter(DB, t, existing(t)), []);
  // A current release, a server timezone and a hand-made LowCardinality column: still compatible.
  const current = existing(t).map((c) =>
    c.name === '_ingested_at'
      ? { ...c, type: "DateTime('UTC')" }
      : c.name === 'workspace'
        ? { ...c, type: 'LowCardinality(Nullable(String))' }
        : c,
  );
  assert.deepEqual(planAlter(DB, t, current), []);
  // Columns someone added with an expression are theirs to keep.
  const extra = [...existing(t), { name: 'day', type: 'Date', default_kind: 'MATERIALIZED' }];
  assert.deepEqual(planAlter(DB, t, extra), []);
});

test('planAlter: a new field becomes ADD COLUMN, its alias after it', () => {
  const v1 = deriveLayout('batches', valueSchema('batches'), { database: DB }).table;
  const v2 = deriveLayout(
    'batches',
    withFields(
      valueSchema('batches'),
      { name: 'owner_email', type: ['null', 'string'], default: null },
      {
        name: 'archived_at_ms',
        type: ['null', { type: 'long', logicalType: 'timestamp-millis' }],
        default: null,
      },
    ),
    { database: DB },
  ).table;
  assert.deepEqual(planAlter(DB, v2, existing(v1)), [
    'ALTER TABLE `instabase`.`batches` ADD COLUMN `owner_email` Nullable(String)',
    'ALTER TABLE `instabase`.`batches` ADD COLUMN `archived_at_ms` Nullable(Int64)',
    'ALTER TABLE `instabase`.`batches` ADD COLUMN `archived_at_dt` Nullable(DateTime) ALIAS toDateTime(intDiv(`archived_at_ms`, 1000))',
  ]);
});

test('planAlter: retyped and removed columns are incompatible, naming table, column and types', () => {
  const t = deriveLayout('batches', valueSchema('batches'), { database: DB }).table;
  const cases: [ExistingColumn[], Partial<IncompatibleTableError>][] = [
    [
      existing(t).map((c) => (c.name === 'id' ? { ...c, type: 'Int32' } : c)),
      { table: 'batches', column: 'id', oldType: 'Int32', newType: 'Int64' },
    ],
    [
      existing(t).map((c) => (c.name === 'workspace' ? { ...c, type: 'String' } : c)),
      { column: 'workspace', oldType: 'String', newType: 'Nullable(String)' },
    ],
    [
      [...existing(t), { name: 'dropped_field', type: 'Nullable(String)', default_kind: '' }],
      { column: 'dropped_field', oldType: 'Nullable(String)', newType: null },
    ],
    [
      existing(t).map((c) => (c.name === 'created_at_dt' ? { ...c, default_kind: '' } : c)),
      { column: 'created_at_dt', oldType: 'Nullable(DateTime)', newType: 'Nullable(DateTime) ALIAS' },
    ],
  ];
  for (const [cols, expected] of cases) {
    assert.throws(
      () => planAlter(DB, t, cols),
      (e: unknown) => {
        assert.ok(e instanceof IncompatibleTableError);
        for (const [k, v] of Object.entries(expected))
          assert.equal(e[k as keyof IncompatibleTableError], v, k);
        assert.match(
          e.message,
          new RegExp(`table ${expected.table ?? 'batches'}: column ${expected.column}`),
        );
        return true;
      },
    );
  }
});

// Version-adaptive DDL (features.ts): what each server generation gets.
const V22 = featuresFor([22, 8]);
const V23_1 = featuresFor([23, 1]);
const V26 = featuresFor([26, 9]);

test('18.16 and an unknown server: the DDL of before, byte for byte', () => {
  for (const r of RESOURCES) {
    const implicit = createStatements(deriveLayout(r, valueSchema(r), { database: DB }));
    const v18 = createStatements(
      deriveLayout(r, valueSchema(r), { database: DB, features: featuresFor([18, 16]) }),
    );
    assert.deepEqual(v18, implicit, r);
    assert.deepEqual(
      createStatements(
        deriveLayout(r, valueSchema(r), { database: DB, features: LEGACY_FEATURES, ttlDays: 30 }),
      ),
      implicit,
      `${r}: no TTL without partitions`,
    );
    for (const s of implicit) {
      assert.doesNotMatch(
        s,
        /DateTime64|LowCardinality|\bBool\b|CODEC|PARTITION BY|TTL|SETTINGS|MATERIALIZED/,
        r,
      );
    }
  }
});

test('22.x: stored DateTime64, LowCardinality, Bool, ZSTD, the dedup window in CREATE; no is_deleted', () => {
  const [, table] = createStatements(
    deriveLayout('files_metadata', valueSchema('files_metadata'), { database: DB, features: V22 }),
  );
  assert.equal(
    table,
    [
      'CREATE TABLE IF NOT EXISTS `instabase`.`files_metadata` (',
      '  `_source_endpoint` LowCardinality(String),',
      '  `_ib_context` LowCardinality(Nullable(String)),',
      '  `_fetched_at` Int64,',
      '  `_content_hash` String,',
      '  `_deleted` UInt8,',
      '  `_raw_json` String CODEC(ZSTD(3)),',
      '  `path` String,',
      '  `http_status` Nullable(Int64),',
      '  `present` Nullable(Bool),',
      '  `kind` LowCardinality(Nullable(String)),',
      '  `content_type` LowCardinality(Nullable(String)),',
      '  `size` Nullable(Int64),',
      '  `last_modified` Nullable(String),',
      '  `last_modified_ms` Nullable(Int64),',
      '  `_nulled_fields` Array(String),',
      '  `_topic` LowCardinality(String),',
      '  `_partition` Int32,',
      '  `_offset` UInt64,',
      '  `_ingested_at` DateTime DEFAULT now(),',
      "  `_fetched_at_dt` DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(`_fetched_at`, 'UTC'),",
      "  `last_modified_dt` Nullable(DateTime64(3, 'UTC')) MATERIALIZED fromUnixTimestamp64Milli(`last_modified_ms`, 'UTC')",
      ')',
      'ENGINE = ReplacingMergeTree(`_offset`)',
      'ORDER BY (`path`)',
      'SETTINGS non_replicated_deduplication_window = 1000',
    ].join('\n'),
  );
});

test('runs: nanosecond timestamps become DateTime64(9) from fromUnixTimestamp64Nano', () => {
  const l = deriveLayout('runs', valueSchema('runs'), { database: DB, features: V26 });
  const dt = l.table.columns.find((c) => c.name === 'start_timestamp_dt');
  assert.equal(dt?.type, "Nullable(DateTime64(9, 'UTC'))");
  assert.equal(dt?.source, 'materialized');
  assert.equal(dt?.expression, "fromUnixTimestamp64Nano(`start_timestamp`, 'UTC')");
  // The view lists the stored column like the alias it replaces.
  assert.ok(l.views[0]!.columns.includes('start_timestamp_dt'));
});

test('is_deleted from 23.2, on main tables only; child tables keep ReplacingMergeTree(_offset)', () => {
  const at = (features: typeof V26) =>
    createStatements(deriveLayout('runs_results', valueSchema('runs_results'), { database: DB, features }))
      .filter((s) => s.startsWith('CREATE TABLE'))
      .map((s) => /ENGINE = (.*)/.exec(s)![1]);
  assert.deepEqual(at(V23_1), Array(3).fill('ReplacingMergeTree(`_offset`)'));
  assert.deepEqual(at(featuresFor([23, 2])), [
    'ReplacingMergeTree(`_offset`, `_deleted`)',
    'ReplacingMergeTree(`_offset`)',
    'ReplacingMergeTree(`_offset`)',
  ]);
});

test('audit_logs: monthly partitions by event time (fetch time without one), TTL only when asked', () => {
  const tail = (ttlDays?: number) =>
    createStatements(
      deriveLayout('audit_logs', valueSchema('audit_logs'), {
        database: DB,
        features: V26,
        ...(ttlDays ? { ttlDays } : {}),
      }),
    )[1]!.split(')\nENGINE')[1];
  assert.equal(
    tail(),
    ' = ReplacingMergeTree(`_offset`, `_deleted`)\n' +
      'PARTITION BY toYYYYMM(ifNull(`timestamp_dt`, `_fetched_at_dt`))\n' +
      'ORDER BY (`_content_hash`)\n' +
      'SETTINGS non_replicated_deduplication_window = 1000',
  );
  assert.equal(
    tail(400),
    ' = ReplacingMergeTree(`_offset`, `_deleted`)\n' +
      'PARTITION BY toYYYYMM(ifNull(`timestamp_dt`, `_fetched_at_dt`))\n' +
      'ORDER BY (`_content_hash`)\n' +
      'TTL toDateTime(ifNull(`timestamp_dt`, `_fetched_at_dt`)) + toIntervalDay(400)\n' +
      'SETTINGS non_replicated_deduplication_window = 1000',
  );
  // Entity tables are never partitioned or expired.
  const runs = createStatements(
    deriveLayout('runs', valueSchema('runs'), { database: DB, features: V26, ttlDays: 400 }),
  );
  assert.doesNotMatch(runs[1]!, /PARTITION BY|TTL/);
});

test('planAlter: a table made by the 18.16 DDL is compatible with the current layout, as created', () => {
  const old = deriveLayout('batches', valueSchema('batches'), { database: DB }).table;
  const current = deriveLayout('batches', valueSchema('batches'), { database: DB, features: V26 }).table;
  // Types differ only in spelling (LowCardinality, Bool); the `_dt` columns differ in kind.
  assert.throws(() => planAlter(DB, current, existing(old)), /_fetched_at_dt/);
  assert.deepEqual(planAlter(DB, withAliasEventTimes(current), existing(old)), []);
  // A new timestamp in an old table: its `_dt` column is an ALIAS like the others.
  const v2 = deriveLayout(
    'batches',
    withFields(valueSchema('batches'), {
      name: 'archived_at_ms',
      type: ['null', { type: 'long', logicalType: 'timestamp-millis' }],
      default: null,
    }),
    { database: DB, features: V26 },
  ).table;
  assert.deepEqual(planAlter(DB, withAliasEventTimes(v2), existing(old)), [
    'ALTER TABLE `instabase`.`batches` ADD COLUMN `archived_at_ms` Nullable(Int64)',
    'ALTER TABLE `instabase`.`batches` ADD COLUMN `archived_at_dt` Nullable(DateTime) ALIAS toDateTime(intDiv(`archived_at_ms`, 1000))',
  ]);
  // And a current table against its own layout: nothing to do; a stored column is not an alias.
  assert.deepEqual(planAlter(DB, current, existing(current)), []);
  assert.throws(
    () =>
      planAlter(
        DB,
        current,
        existing(current).map((c) => (c.name === 'created_at_dt' ? { ...c, default_kind: 'ALIAS' } : c)),
      ),
    (e: unknown) =>
      e instanceof IncompatibleTableError &&
      e.oldType === "Nullable(DateTime64(3, 'UTC')) ALIAS" &&
      e.newType === "Nullable(DateTime64(3, 'UTC')) MATERIALIZED",
  );
});
