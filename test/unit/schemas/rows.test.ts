import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RESOURCES, avroType, valueSchema, type ResourceName } from '../../../schemas/index.ts';
import { deriveLayout } from '../../../sinks/schema/layout.ts';
import { featuresFor } from '../../../sinks/schema/features.ts';
import { RowMappingError, createRowMapper, type Row } from '../../../sinks/schema/rows.ts';
import { NO_ID_HASH, SAMPLES } from './samples.ts';

const POS = { topic: 'instabase.x', partition: 2, offset: '17' };
const NOW = 1764140000;

function mapperFor(resource: ResourceName) {
  return createRowMapper(deriveLayout(resource, valueSchema(resource), { database: 'db' }));
}

/** Decodes the sample the way the sink will: from Avro bytes. */
function decoded(resource: ResourceName, i: number): unknown {
  const t = avroType(resource);
  return t.fromBuffer(t.toBuffer(SAMPLES[resource][i]));
}

/** The rows of one record, by table name. */
function mapOne(resource: ResourceName, record: unknown): Record<string, Row[]> {
  const m = mapperFor(resource);
  const out = m.buffers();
  m.map(record, POS, NOW, out);
  return Object.fromEntries(m.tables.map((t, i) => [t, out[i] ?? []]));
}

test('every sample maps to rows carrying exactly the table columns', () => {
  for (const r of RESOURCES) {
    const layout = deriveLayout(r, valueSchema(r), { database: 'db' });
    const m = createRowMapper(layout);
    const out = m.buffers();
    SAMPLES[r].forEach((_, i) => m.map(decoded(r, i), POS, NOW, out));
    // Child tables first: they are inserted before their parent.
    const tables = [...layout.children, layout.table];
    assert.deepEqual(
      m.tables,
      tables.map((t) => t.name),
    );
    tables.forEach((t, i) => {
      const insertable = t.columns.filter((c) => c.source !== 'alias').map((c) => c.name);
      for (const row of out[i] ?? []) assert.deepEqual(Object.keys(row), insertable, t.name);
    });
    assert.equal(out[tables.length - 1]?.length, SAMPLES[r].length);
  }
});

test('values are written the way ClickHouse parses them exactly', () => {
  const [row] = mapOne('runs', decoded('runs', 0)).runs ?? [];
  assert.ok(row);
  assert.equal(row.start_timestamp, '1765912514238248673', 'a bigint becomes its decimal string');
  assert.equal(row.batch_id, -9007199254740991, 'a safe int64 stays a number');
  assert.equal(row._deleted, 0, 'booleans become 0/1');
  assert.deepEqual(row.tags, ['a', 'b']);
  assert.equal(row._topic, 'instabase.x');
  assert.equal(row._partition, 2);
  assert.equal(row._offset, '17');
  assert.equal(row._ingested_at, NOW);

  const [parsed] = mapOne('runs', decoded('runs', 1)).runs ?? [];
  // The double's exact integer value, which is what Avro carried; JSON.stringify would print ...700.
  assert.equal(parsed?.start_timestamp, '1765912514238248704');
  assert.equal(parsed?.finish_timestamp, null);

  const [doc] = mapOne('runs_results', decoded('runs_results', 0)).runs_results ?? [];
  assert.equal(doc?.classification_confidence, 1e308);
  assert.deepEqual(doc?.page_numbers, [1, 2, 9007199254740991, -9007199254740991]);
  assert.equal(doc?.review_completed, 1);
  assert.equal(doc?.final_result_pass, 0);
});

test('non-finite doubles and unsafe ints inside arrays are converted, null arrays become []', () => {
  const record = {
    ...(SAMPLES.runs_results[1] as Record<string, unknown>),
    classification_confidence: Number.NEGATIVE_INFINITY,
    page_numbers: [1, 2n ** 60n, 2 ** 60],
    post_processed_paths: null,
    page_layouts: [{ page_number: null, width: Number.NaN, height: Number.POSITIVE_INFINITY }],
  };
  const rows = mapOne('runs_results', record);
  const [doc] = rows.runs_results ?? [];
  const [layout] = rows.runs_results_page_layouts ?? [];
  assert.equal(doc?.classification_confidence, '-inf');
  assert.deepEqual(doc?.page_numbers, [1, '1152921504606846976', '1152921504606846976']);
  assert.deepEqual(doc?.post_processed_paths, []);
  assert.equal(layout?.width, 'nan');
  assert.equal(layout?.height, 'inf');
});

test('runs_results: one child row per field, with the parent key and the position', () => {
  const out = mapOne('runs_results', decoded('runs_results', 0));
  const fields = out.runs_results_fields ?? [];
  assert.equal(fields.length, 3);
  assert.deepEqual(fields[2], {
    run_id: 'run-1',
    file_index: 0,
    document_index: 0,
    _idx: 2,
    name: 'total',
    value: 'ERROR',
    type: 'NUMBER',
    confidence: null,
    ocr_confidence: null,
    error: 'boom',
    valid: 0,
    _topic: 'instabase.x',
    _partition: 2,
    _offset: '17',
    _ingested_at: NOW,
  });
  const layouts = out.runs_results_page_layouts ?? [];
  assert.deepEqual(
    layouts.map((r) => r.page_number),
    [0, 9007199254740991],
  );
  // A document without fields has no child rows.
  const empty = mapOne('runs_results', decoded('runs_results', 1));
  assert.deepEqual([empty.runs_results_fields, empty.runs_results_page_layouts], [[], []]);
});

test('a record from an older writer gets the defaults of fields it lacks', () => {
  const old = { ...(SAMPLES.batches[0] as Record<string, unknown>) };
  delete old.path_suffix;
  delete old._deleted;
  const [row] = mapOne('batches', old).batches ?? [];
  assert.equal(row?.path_suffix, null);
  assert.equal(row?._deleted, 0);

  const docWithoutFields = { ...(SAMPLES.runs_results[0] as Record<string, unknown>) };
  delete docWithoutFields.fields;
  assert.deepEqual(mapOne('runs_results', docWithoutFields).runs_results_fields, []);
});

test('a record missing a field without default cannot be mapped', () => {
  const broken = { ...(SAMPLES.batches[0] as Record<string, unknown>) };
  delete broken.id;
  assert.throws(
    () => mapOne('batches', broken),
    (e: unknown) => e instanceof RowMappingError && e.table === 'batches' && e.field === 'id',
  );
  assert.throws(() => mapOne('batches', null), RowMappingError);
  assert.throws(
    () => mapOne('runs_results', { ...(SAMPLES.runs_results[0] as Record<string, unknown>), fields: [null] }),
    /runs_results_fields\._idx: item 0 is not a record/,
  );
});

test('rows of a batch accumulate in the same buffers', () => {
  const m = mapperFor('queries_status');
  const out = m.buffers();
  for (let i = 0; i < SAMPLES.queries_status.length; i++) m.map(decoded('queries_status', i), POS, NOW, out);
  assert.deepEqual(m.tables, ['queries_status_results', 'queries_status']);
  assert.deepEqual(
    out.map((b) => b.length),
    [2, 2],
  );
  assert.deepEqual(out[0]?.[0]?.source_document_names, ['test.eml']);
});

test('rows are the same for the 18.16 and the current DDL: stored DateTime64 columns are not sent', () => {
  for (const r of RESOURCES) {
    const rowsAt = (features: ReturnType<typeof featuresFor>) => {
      const m = createRowMapper(deriveLayout(r, valueSchema(r), { database: 'db', features }));
      const out = m.buffers();
      SAMPLES[r].forEach((_, i) => m.map(decoded(r, i), POS, NOW, out));
      return out;
    };
    const current = rowsAt(featuresFor([26, 9]));
    assert.deepEqual(current, rowsAt(featuresFor([18, 16])), r);
    for (const row of current.flat()) {
      assert.ok(!Object.keys(row).some((k) => k.endsWith('_dt')), `${r}: no _dt value is sent`);
    }
  }
});

test('a run or document without id is keyed by its content hash in the sort key', () => {
  const run = SAMPLES.runs.find((r) => r['id'] === null)!;
  const doc = SAMPLES.conversation_documents.find((r) => r['id'] === null)!;
  assert.equal(mapOne('runs', run)['runs']![0]!['id'], NO_ID_HASH);
  // Minus the hash's first 60 bits: a negative Int64, never a real id.
  assert.equal(
    mapOne('conversation_documents', doc)['conversation_documents']![0]!['id'],
    (-BigInt(`0x${NO_ID_HASH.slice(0, 15)}`)).toString(),
  );
  assert.throws(
    () => mapOne('runs', { ...run, _content_hash: 'r1' }),
    (err: unknown) => err instanceof RowMappingError && /no _content_hash/.test(String(err)),
  );
});
