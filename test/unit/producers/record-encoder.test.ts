import { test } from 'node:test';
import assert from 'node:assert/strict';
import { avroType, parseAvroSchema, valueSchema } from '../../../schemas/index.ts';
import { RecordEncoder, stringKeyType, valuesNulled } from '../../../producers/record-encoder.ts';
import { MappingError } from '../../../producers/avro-mapper.ts';
import type { Emit } from '../../../producers/follow/types.ts';

const encoder = new RecordEncoder(
  new Map([['batches', { valueId: 7, keyId: 8, type: avroType('batches'), keyType: stringKeyType() }]]),
  'acme',
);

const batch = (fields: Record<string, unknown>): Emit => ({
  resource: 'batches',
  key: String(fields.id),
  fields,
  object: fields,
  endpoint: 'GET /v2/batches',
  deleted: false,
});

function decode(buf: Buffer | string | null | undefined): Record<string, unknown> {
  assert.ok(Buffer.isBuffer(buf));
  assert.equal(buf[0], 0);
  assert.equal(buf.readInt32BE(1), 7);
  return avroType('batches').fromBuffer(buf.subarray(5)) as Record<string, unknown>;
}

async function nulledCount(field: string): Promise<number> {
  const metric = await valuesNulled.get();
  return metric.values.find((v) => v.labels.resource === 'batches' && v.labels.field === field)?.value ?? 0;
}

test('a timestamp outside years 1-9999 is published as null, named, kept in _raw_json and counted', async () => {
  const before = await nulledCount('created_at_ms');
  const message = encoder.encode(
    batch({ id: 1, created_at_ms: -9007199254740991, updated_at_ms: 1_765_912_514_238 }),
    1_765_912_600_000,
  );
  const value = decode(message.value);
  assert.equal(value.created_at_ms, null);
  assert.equal(value.updated_at_ms, 1_765_912_514_238);
  assert.deepEqual(value._nulled_fields, ['created_at_ms']);
  assert.match(String(value._raw_json), /"created_at_ms":-9007199254740991/);
  assert.equal(await nulledCount('created_at_ms'), before + 1);
  assert.equal(parseAvroSchema('string').fromBuffer((message.key as Buffer).subarray(5)), '1');
});

test('a record with nothing out of range carries an empty note and moves no counter', async () => {
  const before = await nulledCount('updated_at_ms');
  const value = decode(encoder.encode(batch({ id: 2, updated_at_ms: 253_402_300_799_999 }), 1).value);
  assert.equal(value.updated_at_ms, 253_402_300_799_999);
  assert.deepEqual(value._nulled_fields, []);
  assert.equal(await nulledCount('updated_at_ms'), before);
});

test('the API cannot fill in the note itself', () => {
  const value = decode(encoder.encode(batch({ id: 3, _nulled_fields: ['id'] }), 1).value);
  assert.deepEqual(value._nulled_fields, []);
});

test('a schema without _nulled_fields dead-letters rather than nulls silently', () => {
  const now = valueSchema('batches');
  const without = parseAvroSchema({ ...now, fields: now.fields.filter((f) => f.name !== '_nulled_fields') });
  const legacy = new RecordEncoder(
    new Map([['batches', { valueId: 1, keyId: 2, type: without, keyType: stringKeyType() }]]),
    undefined,
  );
  assert.throws(
    () => legacy.encode(batch({ id: 4, created_at_ms: 2n ** 62n }), 1),
    (e: unknown) => e instanceof MappingError && /created_at_ms: not representable/.test(e.message),
  );
});

test('a lone surrogate: nulled and noted in a field, dead-lettered in a key', async () => {
  const before = await nulledCount('name');
  const value = decode(encoder.encode(batch({ id: 5, name: 'lone \ud800' }), 1).value);
  assert.equal(value.name, null);
  assert.deepEqual(value._nulled_fields, ['name']);
  assert.match(String(value._raw_json), /"name":"lone \\ud800"/);
  assert.equal(await nulledCount('name'), before + 1);
  assert.throws(
    () => encoder.encode({ ...batch({ id: 6 }), key: 'k\udc00' }, 1),
    (e: unknown) => e instanceof MappingError && /^key: .* has a lone surrogate/.test(e.problems[0] ?? ''),
  );
});
