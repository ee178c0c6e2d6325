// Derives a resource's ClickHouse tables from its Avro schema: the main table (one row per record) and,
// the way dlt does it, one child table per array-of-records field (one row per item). DDL (ddl.ts) and
// row mapping (rows.ts) both work from this one description.
import avro from 'avsc';
import type { AvroField, AvroRecordSchema, ResourceName } from '../../schemas/index.ts';
import { resourceMeta } from '../../schemas/index.ts';
import { LEGACY_FEATURES, type ServerFeatures } from './features.ts';
import { quoteIdentifier } from './sql.ts';
import {
  Convert,
  LOW_CARDINALITY_COLUMNS,
  UnsupportedSchemaError,
  mapField,
  type TimeUnit,
} from './types.ts';

export interface Column {
  readonly name: string;
  /** ClickHouse type, spelled as system.columns reports it. */
  readonly type: string;
  /**
   * How the column gets its value: from the record (data), from the sink (meta), or computed by the
   * server, at read time (alias) or at insert time and stored (materialized).
   */
  readonly source: 'data' | 'meta' | 'alias' | 'materialized';
  /** DEFAULT, ALIAS or MATERIALIZED expression. */
  readonly expression?: string;
  /** CODEC(…) clause, e.g. CODEC(ZSTD(3)). */
  readonly codec?: string;
  /** For a `_dt` column: the timestamp long it is computed from. */
  readonly timeOf?: string;
  /** For data columns: rows.ts conversion, the Avro default, whether the field is nullable. */
  readonly convert?: Convert;
  readonly avroDefault?: unknown;
  readonly hasDefault?: boolean;
  readonly timeUnit?: TimeUnit;
  /**
   * For a key column whose Avro field is nullable (the spec requires no id): what the sort key holds
   * when the record has none, derived from its _content_hash, as the producers key such records.
   */
  readonly standIn?: KeyStandIn;
}

/**
 * `content-hash`: the hash itself, for a string key. `negative-content-hash`: minus the hash's first 60
 * bits, for an integer key; real ids are positive, so a stand-in cannot be taken for one.
 */
export type KeyStandIn = 'content-hash' | 'negative-content-hash';

export interface TableLayout {
  readonly name: string;
  /** Data columns in schema order, then the meta columns, then ALIAS columns. */
  readonly columns: readonly Column[];
  readonly orderBy: readonly string[];
  /** ReplacingMergeTree version column. */
  readonly version: string;
  /** ReplacingMergeTree is_deleted column (23.2+, main tables only). */
  readonly isDeleted?: string;
  /** PARTITION BY expression; none means one partition. */
  readonly partitionBy?: string;
  /** TTL expression (rows older than it are dropped by merges). */
  readonly ttl?: string;
  /** Table-level settings for CREATE TABLE … SETTINGS. */
  readonly settings?: Readonly<Record<string, number>>;
}

export interface ChildLayout extends TableLayout {
  /** The parent record's array field this table is made of, and whether that field has a default. */
  readonly field: string;
  readonly hasFieldDefault: boolean;
  /** Columns copied from the parent record into every child row: its key. */
  readonly parentKey: readonly string[];
}

export interface ResourceLayout {
  readonly resource: ResourceName;
  readonly database: string;
  readonly table: TableLayout;
  readonly children: readonly ChildLayout[];
  /** `<table>_current` for the main table and for each child table. */
  readonly views: readonly ViewLayout[];
  /** What the DDL was derived for (LEGACY_FEATURES unless a server's features were given). */
  readonly features: ServerFeatures;
}

export interface ViewLayout {
  readonly name: string;
  /** The table it reads. */
  readonly table: string;
  /** Its column names: the table's, including ALIAS columns (SELECT * leaves those out). */
  readonly columns: readonly string[];
}

/**
 * Kafka coordinates and insert time. _offset is the ReplacingMergeTree version: a key always maps to
 * one partition, so its offsets grow with every new version, and a redelivered message carries the
 * same offset as the original. ReplacingMergeTree versions must be unsigned, hence UInt64.
 * _ingested_at is sent by the sink: 18.16 fills omitted JSONEachRow fields with the type default,
 * not the DEFAULT expression.
 */
export const META_COLUMNS: readonly Column[] = [
  { name: '_topic', type: 'String', source: 'meta' },
  { name: '_partition', type: 'Int32', source: 'meta' },
  { name: '_offset', type: 'UInt64', source: 'meta' },
  { name: '_ingested_at', type: 'DateTime', source: 'meta', expression: 'now()' },
];

/** META_COLUMNS as a server with these features stores them (_topic LowCardinality). */
export function metaColumns(features: ServerFeatures): readonly Column[] {
  if (!features.lowCardinality) return META_COLUMNS;
  return META_COLUMNS.map((c) =>
    LOW_CARDINALITY_COLUMNS.has(c.name) ? { ...c, type: `LowCardinality(${c.type})` } : c,
  );
}
/** The column holding each record's original JSON; ZSTD-compressed where the server has codecs. */
export const RAW_JSON_COLUMN = '_raw_json';
export const RAW_JSON_CODEC = 'CODEC(ZSTD(3))';
export const VERSION_COLUMN = '_offset';
export const DELETED_COLUMN = '_deleted';
/** Position of the item in its parent's array, in child tables. */
export const INDEX_COLUMN = '_idx';

export interface LayoutOptions {
  readonly database: string;
  /** Defaults to the resource name; a replay into a new table passes another. */
  readonly table?: string;
  /** The server's features (features.ts); LEGACY_FEATURES, the 18.16 DDL, when absent. */
  readonly features?: ServerFeatures;
  /**
   * For append-only resources (audit_logs) on servers with monthly partitions: drop rows this many
   * days after their event time. Unset: keep everything.
   */
  readonly ttlDays?: number;
}

/** `created_at_ms` → `created_at_dt`, `_fetched_at` → `_fetched_at_dt`. */
export function dateTimeColumnName(column: string): string {
  return column.replace(/_ms$/, '') + '_dt';
}

/** The DateTime shown beside a timestamp long; computed at query time, so no value can fail an insert. */
export function dateTimeExpression(column: string, unit: TimeUnit): string {
  return `toDateTime(intDiv(${quoteIdentifier(column)}, ${unit === 'ms' ? 1000 : 1000000000}))`;
}

/**
 * The `_dt` column of a timestamp long. With DateTime64 (features.ts) it is stored, computed by the
 * server from the exact integer when the row is inserted: ms or ns precision, usable in a sort key or
 * partition, and no text ever parsed (so date_time_input_format cannot misread it). Otherwise a
 * DateTime ALIAS, whole seconds, as 18.16 has it.
 */
export function eventTimeColumn(
  column: string,
  unit: TimeUnit,
  nullable: boolean,
  dateTime64: boolean,
): Column {
  const wrap = (t: string) => (nullable ? `Nullable(${t})` : t);
  const name = dateTimeColumnName(column);
  if (!dateTime64) {
    return {
      name,
      type: wrap('DateTime'),
      source: 'alias',
      expression: dateTimeExpression(column, unit),
      timeOf: column,
      timeUnit: unit,
    };
  }
  const fn = unit === 'ms' ? 'fromUnixTimestamp64Milli' : 'fromUnixTimestamp64Nano';
  return {
    name,
    type: wrap(`DateTime64(${unit === 'ms' ? 3 : 9}, 'UTC')`),
    source: 'materialized',
    expression: `${fn}(${quoteIdentifier(column)}, 'UTC')`,
    timeOf: column,
    timeUnit: unit,
  };
}

/**
 * A table as it exists when it was created with ALIAS `_dt` columns (by 18.16, or by this sink before
 * it adapted DDL to the server): its `_dt` columns, present and future, stay ALIAS DateTime, so that
 * the table keeps working as it is. Other differences (LowCardinality, Bool, codecs, engine) do not
 * matter to inserts or to planAlter, which compares types without them.
 */
export function withAliasEventTimes(table: TableLayout): TableLayout {
  return {
    ...table,
    columns: table.columns.map((c) =>
      c.timeOf && c.timeUnit && c.source === 'materialized'
        ? eventTimeColumn(c.timeOf, c.timeUnit, c.type.startsWith('Nullable('), false)
        : c,
    ),
  };
}

/**
 * The layout for a value schema, given as JSON or as an avsc Type built with the project's avroOptions
 * (a writer type from the registry, say), whose logical types survive schema({ exportAttrs: true }).
 */
export function deriveLayout(
  resource: ResourceName,
  schemaOrType: AvroRecordSchema | avro.Type,
  options: LayoutOptions,
): ResourceLayout {
  const schema = isAvroType(schemaOrType)
    ? (schemaOrType.schema({ exportAttrs: true }) as unknown as AvroRecordSchema)
    : schemaOrType;
  if (schema.type !== 'record')
    throw new UnsupportedSchemaError('', `${resource}: the value schema must be a record`);
  const tableName = options.table ?? resource;
  const features = options.features ?? LEGACY_FEATURES;
  const meta = resourceMeta(resource);
  const key = meta.key;
  const dataColumns: Column[] = [];
  const childFields: { field: string; hasDefault: boolean; record: AvroRecordSchema }[] = [];
  for (const field of schema.fields) {
    const m = mapField(field, features);
    if (m.shape === 'child')
      childFields.push({ field: field.name, hasDefault: 'default' in field, record: m.record });
    else dataColumns.push(dataColumn(field, m.type, m.convert, m.timeUnit));
  }
  for (const k of key) {
    const at = dataColumns.findIndex((col) => col.name === k);
    if (at < 0) throw new UnsupportedSchemaError(k, `${resource}: key field is not a column`);
    const c = dataColumns[at]!;
    // ClickHouse sorts by the key, which must not be Nullable. A nullable key field (the spec requires
    // no id of a run or document) is stored plain, with a stand-in from the content hash where null.
    const nullable = /^Nullable\((String|Int64)\)$/.exec(c.type);
    if (nullable) {
      dataColumns[at] = {
        ...c,
        type: nullable[1]!,
        standIn: nullable[1] === 'String' ? 'content-hash' : 'negative-content-hash',
      };
    } else if (/^(LowCardinality\()?(Nullable|Array)\(/.test(c.type)) {
      throw new UnsupportedSchemaError(k, `${resource}: key field must be a scalar (ORDER BY)`);
    }
  }
  const keyColumns = key.map((k) => dataColumns.find((c) => c.name === k) as Column);
  if (!dataColumns.some((c) => c.name === DELETED_COLUMN)) {
    throw new UnsupportedSchemaError(DELETED_COLUMN, `${resource}: the envelope field is missing`);
  }

  const table: TableLayout = {
    ...tableLayout(tableName, dataColumns, key, features),
    ...(features.replacingIsDeleted ? { isDeleted: DELETED_COLUMN } : {}),
    ...(meta.kind === 'append' ? appendOnlyStorage(dataColumns, meta.eventTime, features, options) : {}),
  };
  const children = childFields.map(({ field, hasDefault, record }): ChildLayout => {
    const columns: Column[] = [
      ...keyColumns.map((c) => ({ ...c, hasDefault: false })),
      { name: INDEX_COLUMN, type: 'UInt32', source: 'meta' },
    ];
    for (const f of record.fields) {
      const m = mapField(f, features);
      if (m.shape === 'child')
        throw new UnsupportedSchemaError(`${field}.${f.name}`, 'arrays of records nest one level only');
      columns.push(dataColumn(f, m.type, m.convert, m.timeUnit));
    }
    return {
      ...tableLayout(`${tableName}_${field}`, columns, [...key, INDEX_COLUMN], features),
      field,
      hasFieldDefault: hasDefault,
      parentKey: key,
    };
  });
  const all = [table, ...children];
  const views = all.map((t) => ({
    name: `${t.name}_current`,
    table: t.name,
    columns: t.columns.map((c) => c.name),
  }));
  return { resource, database: options.database, table, children, views, features };
}

// avsc's own duck-typed check: works across copies of the library too.
function isAvroType(x: unknown): x is avro.Type {
  return avro.Type.isType(x);
}

function dataColumn(field: AvroField, type: string, convert: Convert, timeUnit?: TimeUnit): Column {
  return {
    name: field.name,
    type,
    source: 'data',
    convert,
    hasDefault: 'default' in field,
    avroDefault: field.default,
    ...(timeUnit ? { timeUnit } : {}),
  };
}

/**
 * Monthly partitions by the event's time for an append-only resource (the audit log grows without
 * bound; old months can be dropped or expire by TTL), falling back to the fetch time for an event
 * without one. A redelivered event carries the same times, so it lands in the partition of its first
 * copy and ReplacingMergeTree still merges the two.
 */
function appendOnlyStorage(
  dataColumns: readonly Column[],
  eventTime: string,
  features: ServerFeatures,
  options: LayoutOptions,
): Pick<TableLayout, 'partitionBy' | 'ttl'> {
  if (!features.monthlyPartitions) return {};
  const event = dataColumns.find((c) => c.name === eventTime && c.timeUnit);
  const fetched = dataColumns.find((c) => c.name === '_fetched_at' && c.timeUnit);
  if (!event || !fetched) return {};
  const at = (c: Column) => quoteIdentifier(dateTimeColumnName(c.name));
  const time = event.type.startsWith('Nullable(') ? `ifNull(${at(event)}, ${at(fetched)})` : at(event);
  return {
    partitionBy: `toYYYYMM(${time})`,
    ...(options.ttlDays
      ? { ttl: `toDateTime(${time}) + toIntervalDay(${Math.floor(options.ttlDays)})` }
      : {}),
  };
}

function tableLayout(
  name: string,
  dataColumns: readonly Column[],
  orderBy: readonly string[],
  features: ServerFeatures,
): TableLayout {
  const columns = [...dataColumns, ...metaColumns(features)].map((c) =>
    c.name === RAW_JSON_COLUMN && features.zstdRawJson ? { ...c, codec: RAW_JSON_CODEC } : c,
  );
  for (const c of dataColumns) {
    if (c.timeUnit) {
      columns.push(eventTimeColumn(c.name, c.timeUnit, c.type.startsWith('Nullable('), features.dateTime64));
    }
  }
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c.name)) throw new UnsupportedSchemaError(c.name, `${name}: column name used twice`);
    seen.add(c.name);
  }
  return {
    name,
    columns,
    orderBy,
    version: VERSION_COLUMN,
    ...(features.dedupWindow
      ? { settings: { non_replicated_deduplication_window: features.dedupWindow } }
      : {}),
  };
}
