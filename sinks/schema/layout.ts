// Derives a resource's ClickHouse tables from its Avro schema: the main table (one row per record) and,
// the way dlt does it, one child table per array-of-records field (one row per item). DDL (ddl.ts) and
// row mapping (rows.ts) both work from this one description.
import avro from 'avsc';
import type { AvroField, AvroRecordSchema, ResourceName } from '../../schemas/index.ts';
import { resourceMeta } from '../../schemas/index.ts';
import { quoteIdentifier } from './sql.ts';
import { Convert, UnsupportedSchemaError, mapField, type TimeUnit } from './types.ts';

export interface Column {
  readonly name: string;
  /** ClickHouse type, spelled as system.columns reports it. */
  readonly type: string;
  /** How the column gets its value: from the record (data), from the sink (meta), or computed (alias). */
  readonly source: 'data' | 'meta' | 'alias';
  /** DEFAULT or ALIAS expression. */
  readonly expression?: string;
  /** For data columns: rows.ts conversion, the Avro default, whether the field is nullable. */
  readonly convert?: Convert;
  readonly avroDefault?: unknown;
  readonly hasDefault?: boolean;
  readonly timeUnit?: TimeUnit;
}

export interface TableLayout {
  readonly name: string;
  /** Data columns in schema order, then the meta columns, then ALIAS columns. */
  readonly columns: readonly Column[];
  readonly orderBy: readonly string[];
  /** ReplacingMergeTree version column. */
  readonly version: string;
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
export const VERSION_COLUMN = '_offset';
export const DELETED_COLUMN = '_deleted';
/** Position of the item in its parent's array, in child tables. */
export const INDEX_COLUMN = '_idx';

export interface LayoutOptions {
  readonly database: string;
  /** Defaults to the resource name; a replay into a new table passes another. */
  readonly table?: string;
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
  const key = resourceMeta(resource).key;
  const dataColumns: Column[] = [];
  const childFields: { field: string; hasDefault: boolean; record: AvroRecordSchema }[] = [];
  for (const field of schema.fields) {
    const m = mapField(field);
    if (m.shape === 'child')
      childFields.push({ field: field.name, hasDefault: 'default' in field, record: m.record });
    else dataColumns.push(dataColumn(field, m.type, m.convert, m.timeUnit));
  }
  for (const k of key) {
    const c = dataColumns.find((col) => col.name === k);
    if (!c) throw new UnsupportedSchemaError(k, `${resource}: key field is not a column`);
    if (c.type.startsWith('Nullable(') || c.type.startsWith('Array(')) {
      throw new UnsupportedSchemaError(k, `${resource}: key field must be a non-null scalar (ORDER BY)`);
    }
  }
  const keyColumns = key.map((k) => dataColumns.find((c) => c.name === k) as Column);
  if (!dataColumns.some((c) => c.name === DELETED_COLUMN)) {
    throw new UnsupportedSchemaError(DELETED_COLUMN, `${resource}: the envelope field is missing`);
  }

  const table = tableLayout(tableName, dataColumns, key);
  const children = childFields.map(({ field, hasDefault, record }): ChildLayout => {
    const columns: Column[] = [
      ...keyColumns.map((c) => ({ ...c, hasDefault: false })),
      { name: INDEX_COLUMN, type: 'UInt32', source: 'meta' },
    ];
    for (const f of record.fields) {
      const m = mapField(f);
      if (m.shape === 'child')
        throw new UnsupportedSchemaError(`${field}.${f.name}`, 'arrays of records nest one level only');
      columns.push(dataColumn(f, m.type, m.convert, m.timeUnit));
    }
    return {
      ...tableLayout(`${tableName}_${field}`, columns, [...key, INDEX_COLUMN]),
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
  return { resource, database: options.database, table, children, views };
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

function tableLayout(name: string, dataColumns: readonly Column[], orderBy: readonly string[]): TableLayout {
  const columns = [...dataColumns, ...META_COLUMNS];
  for (const c of dataColumns) {
    if (c.timeUnit) {
      const nullable = c.type.startsWith('Nullable(');
      columns.push({
        name: dateTimeColumnName(c.name),
        type: nullable ? 'Nullable(DateTime)' : 'DateTime',
        source: 'alias',
        expression: dateTimeExpression(c.name, c.timeUnit),
      });
    }
  }
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c.name)) throw new UnsupportedSchemaError(c.name, `${name}: column name used twice`);
    seen.add(c.name);
  }
  return { name, columns, orderBy, version: VERSION_COLUMN };
}
