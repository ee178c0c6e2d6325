import { test } from 'node:test';
import assert from 'node:assert/strict';
import avro from 'avsc';
import {
  ENVELOPE_FIELDS,
  NAMESPACE,
  RESOURCES,
  RESOURCE_META,
  avroType,
  entityKey,
  keySchema,
  parseAvroSchema,
  valueSchema,
  type AvroRecordSchema,
  type AvroSchema,
} from '../../../schemas/index.ts';
import { LOGICAL_LONG_RANGES } from '../../../producers/avro-mapper.ts';
import { SAMPLES } from './samples.ts';

// Renaming any of these breaks every consumer and the registry history: they are frozen.
const RECORD_NAMES = {
  conversations: 'Conversation',
  conversation_documents: 'ConversationDocument',
  conversation_document_metadata: 'ConversationDocumentMetadata',
  batches: 'Batch',
  batch_files: 'BatchFile',
  runs: 'Run',
  runs_results: 'RunResultDocument',
  queries_status: 'QueryStatus',
  files_metadata: 'FileMetadata',
  audit_logs: 'AuditLog',
} as const;

// Fields that may lack a default: the first version's envelope and keys. Anything added later must
// have one, or BACKWARD_TRANSITIVE compatibility breaks; this list must never grow.
const ENVELOPE_WITHOUT_DEFAULT = ['_source_endpoint', '_fetched_at', '_content_hash', '_raw_json'];

function records(schema: AvroSchema, out: AvroRecordSchema[] = []): AvroRecordSchema[] {
  if (Array.isArray(schema)) schema.forEach((s) => records(s, out));
  else if (typeof schema === 'object') {
    if (schema.type === 'record') {
      const r = schema as unknown as AvroRecordSchema;
      out.push(r);
      r.fields.forEach((f) => records(f.type, out));
    } else if (schema.type === 'array') records(schema.items as AvroSchema, out);
  }
  return out;
}

test('the ten resources come from core and each has a schema that avsc parses', () => {
  assert.equal(RESOURCES.length, 10);
  for (const r of RESOURCES) {
    const t = avroType(r);
    assert.equal(t.typeName, 'record');
    assert.equal(avroType(r), t, 'avroType caches');
    // Also parses with plain avsc options: the files are ordinary Avro.
    avro.Type.forSchema(valueSchema(r) as unknown as avro.Schema);
  }
});

test('record names and namespaces are stable', () => {
  for (const r of RESOURCES) {
    assert.equal(valueSchema(r).namespace, NAMESPACE);
    assert.equal(avroType(r).name, `${NAMESPACE}.${RECORD_NAMES[r]}`);
  }
  assert.equal(NAMESPACE, 'com.instabase.stream');
  const nested = records(valueSchema('runs_results')).map((r) => r.name);
  assert.deepEqual(nested, ['RunResultDocument', 'RunResultPageLayout', 'RunResultField']);
  assert.deepEqual(
    records(valueSchema('queries_status')).map((r) => r.name),
    ['QueryStatus', 'QueryResult'],
  );
});

test('every value schema starts with the same envelope', () => {
  const reference = JSON.stringify(valueSchema('batches').fields.slice(0, ENVELOPE_FIELDS.length));
  for (const r of RESOURCES) {
    const fields = valueSchema(r).fields;
    assert.deepEqual(
      fields.slice(0, ENVELOPE_FIELDS.length).map((f) => f.name),
      [...ENVELOPE_FIELDS],
    );
    assert.equal(JSON.stringify(fields.slice(0, ENVELOPE_FIELDS.length)), reference, r);
    const deleted = fields.find((f) => f.name === '_deleted');
    assert.equal(deleted?.default, false);
    assert.deepEqual(fields.find((f) => f.name === '_fetched_at')?.type, {
      type: 'long',
      logicalType: 'timestamp-millis',
    });
  }
});

test('every field except the first envelope and the keys has a default', () => {
  for (const r of RESOURCES) {
    const key = RESOURCE_META[r].key;
    for (const rec of records(valueSchema(r))) {
      const top = rec.name === RECORD_NAMES[r];
      for (const f of rec.fields) {
        const exempt = top && (ENVELOPE_WITHOUT_DEFAULT.includes(f.name) || key.includes(f.name));
        if (!exempt) assert.ok('default' in f, `${r}: ${rec.name}.${f.name} has no default`);
      }
    }
  }
});

test('unions are only ["null", T] with a null default, so avsc decodes them to plain values', () => {
  for (const r of RESOURCES) {
    for (const rec of records(valueSchema(r))) {
      for (const f of rec.fields) {
        if (!Array.isArray(f.type)) continue;
        assert.equal(f.type.length, 2, `${rec.name}.${f.name}`);
        assert.equal(f.type[0], 'null', `${rec.name}.${f.name}`);
        assert.equal(f.default, null, `${rec.name}.${f.name}`);
      }
    }
  }
  const decoded = avroType('batches').fromBuffer(avroType('batches').toBuffer(SAMPLES.batches[0]));
  assert.equal(decoded.workspace, 'ws');
  assert.equal(decoded.mount_point, null);
});

test('key fields exist and are strings or longs, nullable only where the spec requires no id', () => {
  const optionalIds = new Set(['runs.id', 'conversation_documents.id', 'batch_files.full_path']);
  for (const r of RESOURCES) {
    for (const k of RESOURCE_META[r].key) {
      const f = valueSchema(r).fields.find((x) => x.name === k);
      assert.ok(f, `${r}.${k}`);
      const type = JSON.stringify(f.type);
      if (optionalIds.has(`${r}.${k}`)) assert.match(type, /^\["null","(string|long)"\]$/, `${r}.${k}`);
      else assert.ok(f.type === 'string' || f.type === 'long', `${r}.${k} is ${type}`);
    }
    const event = valueSchema(r).fields.find((x) => x.name === RESOURCE_META[r].eventTime);
    assert.ok(event, `${r} event time field`);
    assert.match(JSON.stringify(event.type), /timestamp-(millis|nanos)/);
  }
  assert.equal(RESOURCE_META.audit_logs.kind, 'append');
  assert.ok(RESOURCES.filter((r) => r !== 'audit_logs').every((r) => RESOURCE_META[r].kind === 'entity'));
});

test('the key schema is a plain string', () => {
  assert.equal(keySchema(), 'string');
  const t = parseAvroSchema(keySchema());
  assert.equal(t.fromBuffer(t.toBuffer('["run-1","0","2"]')), '["run-1","0","2"]');
});

test('sample records round-trip through avsc exactly', () => {
  for (const r of RESOURCES) {
    const t = avroType(r);
    for (const sample of SAMPLES[r]) {
      assert.ok(t.isValid(sample), `${r}: sample is valid`);
      const back = t.fromBuffer(t.toBuffer(sample));
      // Records decode as instances of avsc's generated classes; structuredClone makes them plain.
      assert.deepEqual(structuredClone(back), sample, r);
    }
  }
});

test('nanosecond timestamps keep every digit', () => {
  const t = avroType('runs');
  const [exact, parsed] = SAMPLES.runs;
  assert.equal(t.fromBuffer(t.toBuffer(exact)).start_timestamp, 1765912514238248673n);
  // A double above 2^53 comes back as the identical number (its exact integer value was written).
  assert.equal(t.fromBuffer(t.toBuffer(parsed)).start_timestamp, 1765912514238248700);
});

test('a record an older schema wrote is read with the defaults of the newer one', () => {
  const v1 = valueSchema('batches');
  const v2 = {
    ...v1,
    fields: [
      ...v1.fields,
      { name: 'added_later', type: ['null', 'string'], default: null },
      { name: 'added_list', type: { type: 'array', items: 'long' }, default: [] },
    ],
  };
  const writer = parseAvroSchema(v1);
  const reader = parseAvroSchema(v2);
  const sample = SAMPLES.batches[0] as Record<string, unknown>;
  const back = reader.fromBuffer(writer.toBuffer(sample), reader.createResolver(writer));
  assert.equal(back.added_later, null);
  assert.deepEqual(back.added_list, []);
  assert.equal(back.created_at_ms, sample.created_at_ms);
});

test('entityKey: the key value, or a JSON array of strings for composite keys', () => {
  assert.equal(entityKey('batches', { id: Number.MAX_SAFE_INTEGER }), '9007199254740991');
  assert.equal(entityKey('runs', { id: 'run-1' }), 'run-1');
  assert.equal(
    entityKey('runs_results', { run_id: 'run-1', file_index: 0, document_index: 2 }),
    '["run-1","0","2"]',
  );
  assert.equal(entityKey('conversation_documents', { conversation_id: 'c', id: 5n }), '["c","5"]');
  assert.equal(entityKey('audit_logs', { _content_hash: 'abc' }), 'abc');
  assert.throws(() => entityKey('runs', { id: null }), /key field id is null/);
});

/** Every `{type, logicalType}` annotation anywhere in a schema. */
function logicalTypes(schema: unknown, out: { type: unknown; logicalType: unknown }[] = []) {
  if (Array.isArray(schema)) schema.forEach((s) => logicalTypes(s, out));
  else if (schema && typeof schema === 'object') {
    const o = schema as Record<string, unknown>;
    if ('logicalType' in o) out.push({ type: o.type, logicalType: o.logicalType });
    for (const v of Object.values(o)) if (v && typeof v === 'object') logicalTypes(v, out);
  }
  return out;
}

test('every logical type is a long whose range the producers check (no poison pills)', () => {
  // A logical type the mapper does not range-check (date, time-millis, decimal, uuid, ...) could carry
  // a value Confluent's clients fail to decode; teach producers/avro-mapper.ts about it first.
  for (const r of RESOURCES) {
    const found = logicalTypes(valueSchema(r));
    assert.ok(found.length > 0, r);
    for (const { type, logicalType } of found) {
      assert.equal(type, 'long', `${r}: ${String(logicalType)}`);
      assert.ok(
        String(logicalType) in LOGICAL_LONG_RANGES,
        `${r}: ${String(logicalType)} is not range-checked`,
      );
    }
  }
});

test('every value schema has _nulled_fields: an array of strings, default []', () => {
  for (const r of RESOURCES) {
    const f = valueSchema(r).fields.find((x) => x.name === '_nulled_fields');
    assert.ok(f, r);
    assert.deepEqual(f.type, { type: 'array', items: 'string' }, r);
    assert.deepEqual(f.default, [], r);
  }
});

test('records written before _nulled_fields existed read with it empty (BACKWARD)', () => {
  for (const r of RESOURCES) {
    const now = valueSchema(r);
    const before = { ...now, fields: now.fields.filter((f) => f.name !== '_nulled_fields') };
    const writer = parseAvroSchema(before);
    const reader = parseAvroSchema(now);
    for (const sample of SAMPLES[r]) {
      const back = reader.fromBuffer(writer.toBuffer(sample), reader.createResolver(writer));
      assert.deepEqual(back._nulled_fields, [], r);
    }
  }
});
