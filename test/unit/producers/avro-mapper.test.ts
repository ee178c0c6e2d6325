import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAvroSchema } from '../../../schemas/index.ts';
import { mapToAvro, MappingError } from '../../../producers/avro-mapper.ts';

const type = parseAvroSchema({
  type: 'record',
  name: 'T',
  namespace: 'x',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'name', type: ['null', 'string'], default: null },
    { name: 'score', type: ['null', 'double'], default: null },
    { name: 'ts', type: ['null', 'string'], default: null },
    { name: 'meta', type: ['null', 'string'], default: null },
    { name: 'flag', type: 'boolean', default: false },
    {
      name: 'fields',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'F',
          fields: [{ name: 'v', type: ['null', 'string'], default: null }],
        },
      },
      default: [],
    },
    { name: 'more', type: { type: 'array', items: 'F' }, default: [] },
  ],
});

test('maps by name, keeps extremes exact and stringifies what a string field receives', () => {
  const { record, nulled } = mapToAvro(type, {
    id: -9007199254740991,
    name: 42,
    score: 1e308,
    ts: 'not-a-number',
    meta: { a: [1, 2] },
    fields: [{ v: true }, { v: null }],
    more: [{ v: 'x' }],
    unknown: 'ignored here; the raw JSON keeps it',
  });
  assert.deepEqual(record, {
    id: -9007199254740991,
    name: '42',
    score: 1e308,
    ts: 'not-a-number',
    meta: '{"a":[1,2]}',
    flag: false,
    fields: [{ v: 'true' }, { v: null }],
    more: [{ v: 'x' }],
  });
  assert.deepEqual(JSON.parse(JSON.stringify(type.fromBuffer(type.toBuffer(record)))), record);
  assert.deepEqual(nulled, []);
});

test('an integral numeric string for a long stays exact', () => {
  assert.equal(mapToAvro(type, { id: '123' }).record.id, 123);
});

test('every misfit is reported with its path', () => {
  try {
    mapToAvro(type, { id: 1.5, score: 'high', flag: 'yes', fields: [{ v: 1 }, 'oops'] });
    assert.fail('expected MappingError');
  } catch (err) {
    assert.ok(err instanceof MappingError);
    assert.deepEqual(err.problems, [
      'id: 1.5 is not an exact long',
      'score: "high" is not a finite number',
      'flag: "yes" is not a boolean',
      'fields[1]: expected an object',
    ]);
  }
});

test('unsafe integers are refused rather than rounded', () => {
  assert.throws(() => mapToAvro(type, { id: '99999999999999999999' }), /not an exact long/);
  assert.throws(() => mapToAvro(type, { id: 2 ** 60 }), /not an exact long/);
});

test('int64 beyond 2^53 (bigint from the lossless parser, or an integral string) stays exact', () => {
  assert.equal(mapToAvro(type, { id: 1_700_000_000_000_000_123n }).record.id, 1_700_000_000_000_000_123n);
  assert.equal(mapToAvro(type, { id: '-9223372036854775808' }).record.id, -9223372036854775808n);
  assert.equal(
    mapToAvro(type, { id: 1, meta: { big: 12345678901234567890n } }).record.meta,
    '{"big":12345678901234567890}',
  );
  assert.throws(() => mapToAvro(type, { id: 2n ** 63n }), /not an exact long/);
});

test('null for a non-nullable field with a default takes the default', () => {
  const { record } = mapToAvro(type, { id: 1, fields: null, flag: null });
  assert.deepEqual(record.fields, []);
  assert.equal(record.flag, false);
  assert.throws(() => mapToAvro(type, { id: null }), /id: missing/);
});

test('a string with a lone surrogate is nulled where it may be, a misfit where it may not', () => {
  // Why: avsc writes a lone surrogate as bytes that are not UTF-8, which Python's decoder rejects.
  const str = parseAvroSchema('string');
  assert.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(str.toBuffer('a\ud800b')));

  const { record, nulled } = mapToAvro(type, { id: 1, name: 'lone \ud800', meta: 'pair 😀 \udbff\udfff' });
  assert.equal(record.name, null);
  assert.equal(record.meta, 'pair 😀 \udbff\udfff');
  assert.deepEqual(nulled, ['name']);
  for (const lone of ['\udc00x', 'x\ud800', '\udc00\ud800']) {
    assert.deepEqual(mapToAvro(type, { id: 1, name: lone }).nulled, ['name'], JSON.stringify(lone));
  }
  // An object for a string field becomes JSON text, where JSON.stringify escapes the surrogate.
  assert.equal(mapToAvro(type, { id: 1, name: { k: '\ud800' } }).record.name, '{"k":"\\ud800"}');
  assert.deepEqual(mapToAvro(type, { id: 1, more: [{ v: 'ok' }, { v: '\ud800' }] }).nulled, ['more[1].v']);
  const tags = parseAvroSchema({
    type: 'record',
    name: 'Tags',
    fields: [{ name: 'tags', type: { type: 'array', items: 'string' }, default: [] }],
  });
  assert.throws(
    () => mapToAvro(tags, { tags: ['ok', '\ud800'] }),
    (e: unknown) =>
      e instanceof MappingError &&
      e.problems.length === 1 &&
      e.problems[0] === 'tags[1]: "\\ud800" has a lone surrogate, which UTF-8 cannot encode',
  );
});
