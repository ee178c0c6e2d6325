// A long its logical type cannot represent is published as null and named, never as a poison pill:
// the boundaries are those of Python's datetime (fastavro, Confluent's AvroDeserializer), year 1 to
// 9999-12-31T23:59:59.999999, which test/integration/confluent-decode.test.ts checks with the real client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAvroSchema } from '../../../schemas/index.ts';
import { LOGICAL_LONG_RANGES, mapToAvro, MappingError } from '../../../producers/avro-mapper.ts';

const ts = (logicalType: string) => ['null', { type: 'long', logicalType }];

const type = parseAvroSchema({
  type: 'record',
  name: 'Edge',
  namespace: 'x',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'at_ms', type: ts('timestamp-millis'), default: null },
    { name: 'local_ms', type: ts('local-timestamp-millis'), default: null },
    { name: 'at_us', type: ts('timestamp-micros'), default: null },
    { name: 'at_ns', type: ts('timestamp-nanos'), default: null },
    { name: 'plain', type: ['null', 'long'], default: null },
    { name: 'required_ms', type: { type: 'long', logicalType: 'timestamp-millis' }, default: 0 },
    {
      name: 'items',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'Item',
          fields: [{ name: 'at_ms', type: ts('timestamp-millis'), default: null }],
        },
      },
      default: [],
    },
  ],
});

const FIRST_MS = -62_135_596_800_000; // 0001-01-01T00:00:00.000Z
const LAST_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

test('the calendar bounds are the instants they claim to be', () => {
  // Date.UTC maps years 0-99 to 1900-1999, so year 1 is set explicitly.
  const first = new Date(0);
  first.setUTCFullYear(1, 0, 1);
  assert.equal(first.getTime(), FIRST_MS);
  assert.equal(new Date(LAST_MS).toISOString(), '9999-12-31T23:59:59.999Z');
  assert.equal(new Date(LAST_MS + 1).toISOString(), '+010000-01-01T00:00:00.000Z');
});

test('exactly year 1 and 9999-12-31T23:59:59.999 pass through untouched', () => {
  for (const v of [FIRST_MS, LAST_MS, 0, -1, 1_765_912_514_238]) {
    const { record, nulled } = mapToAvro(type, {
      id: 1,
      at_ms: v,
      local_ms: v,
      at_us: BigInt(v) * 1000n,
      required_ms: v,
    });
    assert.deepEqual(nulled, [], String(v));
    assert.equal(record.at_ms, v);
    assert.equal(record.local_ms, v);
    assert.equal(BigInt(record.at_us as number | bigint), BigInt(v) * 1000n);
    assert.equal(record.required_ms, v);
  }
  // The last microsecond of year 9999 is still representable as micros.
  const lastUs = BigInt(LAST_MS) * 1000n + 999n;
  assert.equal(mapToAvro(type, { id: 1, at_us: lastUs }).record.at_us, lastUs);
});

test('one millisecond beyond either end becomes null, and the path is reported', () => {
  for (const v of [FIRST_MS - 1, LAST_MS + 1, '253402300800000', -9_007_199_254_740_991]) {
    const { record, nulled } = mapToAvro(type, { id: 1, at_ms: v, local_ms: v });
    assert.equal(record.at_ms, null, String(v));
    assert.equal(record.local_ms, null, String(v));
    assert.deepEqual(nulled, ['at_ms', 'local_ms']);
  }
});

test('±(2^63 - 1) and -2^63: null for millis and micros, kept exact for nanos and plain longs', () => {
  for (const v of [2n ** 63n - 1n, -(2n ** 63n) + 1n, -(2n ** 63n)]) {
    const { record, nulled } = mapToAvro(type, { id: v, at_ms: v, at_us: v, at_ns: v, plain: v });
    assert.deepEqual(nulled, ['at_ms', 'at_us']);
    assert.equal(record.id, v);
    assert.equal(record.at_ns, v);
    assert.equal(record.plain, v);
    // What is published encodes, and reads back the same.
    const back = type.fromBuffer(type.toBuffer(record)) as Record<string, unknown>;
    assert.equal(back.at_ms, null);
    assert.equal(BigInt(back.at_ns as number | bigint), v);
  }
});

test('micros: one microsecond beyond either end becomes null', () => {
  const firstUs = BigInt(FIRST_MS) * 1000n;
  const lastUs = BigInt(LAST_MS) * 1000n + 999n;
  assert.deepEqual(mapToAvro(type, { id: 1, at_us: firstUs }).nulled, []);
  assert.deepEqual(mapToAvro(type, { id: 1, at_us: firstUs - 1n }).nulled, ['at_us']);
  assert.deepEqual(mapToAvro(type, { id: 1, at_us: lastUs + 1n }).nulled, ['at_us']);
  // A run's nanosecond timestamp is always in range: the whole int64 span is 1677 to 2262.
  assert.deepEqual(mapToAvro(type, { id: 1, at_ns: 1_765_912_514_238_248_673n }).nulled, []);
});

test('nested records report their full path', () => {
  const { record, nulled } = mapToAvro(type, {
    id: 1,
    items: [{ at_ms: 5 }, { at_ms: LAST_MS + 1 }, { at_ms: FIRST_MS - 1 }],
  });
  assert.deepEqual(nulled, ['items[1].at_ms', 'items[2].at_ms']);
  assert.deepEqual(record.items, [{ at_ms: 5 }, { at_ms: null }, { at_ms: null }]);
});

test('a field that cannot be null is a misfit instead (the record is dead-lettered)', () => {
  assert.throws(
    () => mapToAvro(type, { id: 1, required_ms: LAST_MS + 1 }),
    (e: unknown) =>
      e instanceof MappingError &&
      e.problems.length === 1 &&
      e.problems[0] === 'required_ms: 253402300800000 is outside what timestamp-millis can represent',
  );
});

test('a value that is not an exact long is still a misfit, not nulled', () => {
  assert.throws(() => mapToAvro(type, { id: 1, at_ms: 1.5 }), /at_ms: 1.5 is not an exact long/);
  assert.throws(() => mapToAvro(type, { id: 1, at_ms: 2n ** 63n }), /not an exact long/);
});

test('the ranges agree with the calendar', () => {
  assert.deepEqual(LOGICAL_LONG_RANGES['timestamp-millis'], [BigInt(FIRST_MS), BigInt(LAST_MS)]);
  assert.deepEqual(LOGICAL_LONG_RANGES['timestamp-micros'], [
    BigInt(FIRST_MS) * 1000n,
    BigInt(LAST_MS) * 1000n + 999n,
  ]);
  assert.deepEqual(LOGICAL_LONG_RANGES['timestamp-nanos'], [-(2n ** 63n), 2n ** 63n - 1n]);
});
