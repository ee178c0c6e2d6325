import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Convert,
  UnsupportedSchemaError,
  mapField,
  normalizeClickHouseType,
  type ColumnMapping,
} from '../../../sinks/schema/types.ts';
import { featuresFor } from '../../../sinks/schema/features.ts';
import type { AvroSchema } from '../../../schemas/index.ts';

function column(type: AvroSchema): ColumnMapping {
  const m = mapField({ name: 'f', type });
  assert.equal(m.shape, 'column');
  return m as ColumnMapping;
}

test('the type mapping', () => {
  const cases: [AvroSchema, string, Convert][] = [
    ['boolean', 'UInt8', Convert.Bool],
    ['int', 'Int32', Convert.None],
    ['long', 'Int64', Convert.Int64],
    ['float', 'Float32', Convert.Float64],
    ['double', 'Float64', Convert.Float64],
    ['string', 'String', Convert.None],
    [{ type: 'enum', name: 'E', symbols: ['A'] }, 'String', Convert.None],
    [['null', 'string'], 'Nullable(String)', Convert.None],
    [['null', 'long'], 'Nullable(Int64)', Convert.Int64],
    [['null', 'boolean'], 'Nullable(UInt8)', Convert.Bool],
    [['double', 'null'], 'Nullable(Float64)', Convert.Float64],
    [{ type: 'array', items: 'string' }, 'Array(String)', Convert.Array],
    [{ type: 'array', items: 'long' }, 'Array(Int64)', Convert.ArrayInt64],
    [{ type: 'array', items: 'double' }, 'Array(Float64)', Convert.ArrayFloat64],
    [{ type: 'array', items: 'boolean' }, 'Array(UInt8)', Convert.ArrayBool],
    [{ type: 'array', items: ['null', 'string'] }, 'Array(Nullable(String))', Convert.Array],
    // ClickHouse has no Nullable(Array): an optional array is a plain Array, null becoming [].
    [['null', { type: 'array', items: 'long' }], 'Array(Int64)', Convert.ArrayInt64],
  ];
  for (const [avro, ch, conv] of cases) {
    const m = column(avro);
    assert.equal(m.type, ch, JSON.stringify(avro));
    assert.equal(m.convert, conv, JSON.stringify(avro));
  }
});

test('timestamp longs keep Int64 and are marked for a DateTime alias', () => {
  assert.deepEqual(column({ type: 'long', logicalType: 'timestamp-millis' }), {
    shape: 'column',
    type: 'Int64',
    nullable: false,
    convert: Convert.Int64,
    timeUnit: 'ms',
  });
  const ns = column(['null', { type: 'long', logicalType: 'timestamp-nanos' }]);
  assert.equal(ns.type, 'Nullable(Int64)');
  assert.equal(ns.timeUnit, 'ns');
  // Other logical types fall back to the underlying type, as the Avro spec says.
  assert.equal(column({ type: 'int', logicalType: 'date' }).type, 'Int32');
  assert.equal(column({ type: 'long', logicalType: 'time-micros' }).timeUnit, undefined);
});

test('an array of records becomes a child table', () => {
  const record = { type: 'record', name: 'R', fields: [{ name: 'x', type: 'string' }] };
  const m = mapField({ name: 'items', type: { type: 'array', items: record } });
  assert.equal(m.shape, 'child');
});

test('unsupported shapes fail loudly, naming the field', () => {
  const bad: AvroSchema[] = [
    'bytes',
    { type: 'fixed', name: 'F', size: 4 },
    { type: 'map', values: 'string' },
    { type: 'record', name: 'Nested', fields: [] },
    ['null', 'string', 'long'],
    ['string', 'long'],
    ['null', { type: 'array', items: { type: 'record', name: 'R2', fields: [] } }],
    { type: 'array', items: { type: 'array', items: 'long' } },
  ];
  for (const type of bad) {
    assert.throws(
      () => mapField({ name: 'weird', type }),
      (e: unknown) => e instanceof UnsupportedSchemaError && e.field === 'weird',
      JSON.stringify(type),
    );
  }
});

test('type names from 18.16 and from 24.x/25.x normalize to the same spelling', () => {
  // [as 18.16 reports it, as a current release may report the same column]
  const pairs: [string, string][] = [
    ['Nullable(Int64)', 'Nullable(Int64)'],
    ['Array(Nullable(String))', 'Array(Nullable(String))'],
    ['String', 'LowCardinality(String)'],
    ['Nullable(String)', 'LowCardinality(Nullable(String))'],
    ['DateTime', "DateTime('UTC')"],
    ['Nullable(DateTime)', "Nullable(DateTime('Europe/Amsterdam'))"],
    ['UInt8', 'Bool'],
    ['Array(UInt8)', 'Array(Bool)'],
    ['Nullable(UInt8)', 'Nullable(Bool)'],
    ["Enum8('a' = 1, 'b' = 2)", "Enum8('a' = 1,'b' = 2)"],
    ['Nullable(Int64)', ' Nullable( Int64 ) '],
  ];
  for (const [old, current] of pairs) {
    assert.equal(normalizeClickHouseType(old), normalizeClickHouseType(current), `${old} vs ${current}`);
  }
  assert.equal(normalizeClickHouseType("DateTime64(3, 'UTC')"), 'DateTime64(3)');
  assert.equal(
    normalizeClickHouseType('Tuple(a String, b Nullable(Int64))'),
    'Tuple(a String,b Nullable(Int64))',
  );
  // Quoted text is left alone.
  assert.equal(normalizeClickHouseType("Enum8('Bool x' = 1)"), "Enum8('Bool x'=1)");
  // Real differences stay different.
  const different: [string, string][] = [
    ['Int64', 'Nullable(Int64)'],
    ['Int32', 'Int64'],
    ['Array(String)', 'Array(Nullable(String))'],
    ['DateTime', 'DateTime64(3)'],
    ['Float32', 'Float64'],
  ];
  for (const [a, b] of different) assert.notEqual(normalizeClickHouseType(a), normalizeClickHouseType(b));
});

test('on a current server: Bool, and LowCardinality for enums and enum-like names; values sent alike', () => {
  const current = featuresFor([26, 9]);
  const at = (name: string, type: AvroSchema) => mapField({ name, type }, current) as ColumnMapping;
  const cases: [string, AvroSchema, string][] = [
    ['present', 'boolean', 'Bool'],
    ['valid', ['null', 'boolean'], 'Nullable(Bool)'],
    ['flags', { type: 'array', items: 'boolean' }, 'Array(Bool)'],
    // ReplacingMergeTree's is_deleted column must be UInt8.
    ['_deleted', 'boolean', 'UInt8'],
    ['status', ['null', 'string'], 'LowCardinality(Nullable(String))'],
    ['_source_endpoint', 'string', 'LowCardinality(String)'],
    ['e', { type: 'enum', name: 'E2', symbols: ['A'] }, 'LowCardinality(String)'],
    ['name', ['null', 'string'], 'Nullable(String)'],
    ['state', { type: 'array', items: 'string' }, 'Array(LowCardinality(String))'],
    ['kind', 'long', 'Int64'],
  ];
  for (const [name, type, ch] of cases) {
    const m = at(name, type);
    assert.equal(m.type, ch, name);
    // The conversion (what the sink sends) does not depend on the spelling.
    assert.equal(m.convert, (mapField({ name, type }) as ColumnMapping).convert, name);
  }
  // Both spellings are the same type for planAlter.
  for (const [name, type] of cases) {
    assert.equal(
      normalizeClickHouseType(at(name, type).type),
      normalizeClickHouseType((mapField({ name, type }) as ColumnMapping).type),
      name,
    );
  }
  // 22.1 has LowCardinality but not yet everything; 18.16 has neither.
  assert.equal(
    (mapField({ name: 'status', type: 'string' }, featuresFor([18, 16])) as ColumnMapping).type,
    'String',
  );
  assert.equal(
    (mapField({ name: 'b', type: 'boolean' }, featuresFor([21, 11])) as ColumnMapping).type,
    'UInt8',
  );
});
