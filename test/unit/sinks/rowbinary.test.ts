/**
 * The RowBinary transcoder (sinks/schema/rowbinary.ts) against the row mapper it replaces: for every
 * resource, every sample and edge variant (rowbinary-cases.ts) gives, column for column, the values the
 * JSONEachRow rows carried, read back from the RowBinary bytes by the reader below (which follows the
 * tables' column types, as ClickHouse does). Malformed Avro is refused and leaves nothing written, and
 * the same messages give the same bytes whatever order partitions arrive in. What ClickHouse itself
 * stores from both is compared in test/integration/sinks-rowbinary.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RESOURCES, avroType, resourceMeta, valueSchema, type ResourceName } from '../../../schemas/index.ts';
import { BatchBuffer } from '../../../sinks/batch-buffer.ts';
import { DecodeError } from '../../../sinks/decoder.ts';
import { LEGACY_FEATURES, featuresFor } from '../../../sinks/schema/features.ts';
import { deriveLayout, type ResourceLayout } from '../../../sinks/schema/layout.ts';
import { RowMappingError, createRowMapper, type Row } from '../../../sinks/schema/rows.ts';
import { createTranscoder } from '../../../sinks/schema/rowbinary.ts';
import { edgeRecords } from './rowbinary-cases.ts';

const TOPIC = 'instabase.x';
const NOW = 1764140000;

/** Reads RowBinary values of a ClickHouse type as the JSON rows spell them (rows.ts conversions). */
class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  private leb(): number {
    let n = 0;
    let shift = 0;
    for (;;) {
      const b = this.buf[this.pos++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return n;
      shift += 7;
    }
  }

  value(type: string): unknown {
    let m = /^LowCardinality\((.*)\)$/.exec(type);
    if (m) return this.value(m[1]!);
    m = /^Nullable\((.*)\)$/.exec(type);
    if (m) return this.buf[this.pos++] === 1 ? null : this.value(m[1]!);
    m = /^Array\((.*)\)$/.exec(type);
    if (m) {
      const n = this.leb();
      return Array.from({ length: n }, () => this.value(m![1]!));
    }
    const b = this.buf;
    const at = this.pos;
    switch (type) {
      case 'String': {
        const n = this.leb();
        const s = b.toString('utf8', this.pos, this.pos + n);
        this.pos += n;
        return s;
      }
      case 'UInt8':
      case 'Bool':
        this.pos += 1;
        return b.readUInt8(at);
      case 'Int32':
        this.pos += 4;
        return b.readInt32LE(at);
      case 'UInt32':
      case 'DateTime':
        this.pos += 4;
        return b.readUInt32LE(at);
      case 'Int64': {
        this.pos += 8;
        const v = b.readBigInt64LE(at);
        return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
          ? Number(v)
          : String(v);
      }
      case 'UInt64':
        this.pos += 8;
        return Number(b.readBigUInt64LE(at));
      case 'Float32':
      case 'Float64': {
        this.pos += type === 'Float32' ? 4 : 8;
        const v = type === 'Float32' ? b.readFloatLE(at) : b.readDoubleLE(at);
        return Number.isFinite(v) ? v : v !== v ? 'nan' : v > 0 ? 'inf' : '-inf';
      }
    }
    throw new Error(`no reader for ${type}`);
  }
}

function wire(resource: ResourceName, record: unknown): Buffer {
  const body = avroType(resource).toBuffer(record);
  const v = Buffer.alloc(body.length + 5);
  v.writeInt32BE(7, 1);
  body.copy(v, 5);
  return v;
}

/** Both paths over the records, at partition (i % 3), offset 100 + i: per table, the rows of each. */
function bothPaths(layout: ResourceLayout, records: readonly unknown[]) {
  const resource = layout.resource;
  const type = avroType(resource);
  const mapper = createRowMapper(layout);
  const transcoder = createTranscoder(layout, valueSchema(resource), TOPIC);
  const json = mapper.buffers();
  const buffer = new BatchBuffer(NOW * 1000);
  const outs = buffer.binary(7, transcoder.tables);
  records.forEach((r, i) => {
    const position = { topic: TOPIC, partition: 0, offset: 100 + i };
    mapper.map(type.fromBuffer(type.toBuffer(r)), position, NOW, json);
    transcoder.transcode(wire(resource, r), 5, 0, 100 + i, NOW, outs);
  });
  return { mapper, transcoder, json, outs };
}

for (const features of [LEGACY_FEATURES, featuresFor([26, 9])]) {
  const label = features === LEGACY_FEATURES ? '18.16 layout' : 'current layout';
  test(`${label}: every resource's edge records read back from RowBinary as the JSONEachRow rows`, () => {
    for (const resource of RESOURCES) {
      const layout = deriveLayout(resource, valueSchema(resource), { database: 'db', features });
      const records = edgeRecords(resource, resourceMeta(resource).key);
      const { mapper, transcoder, json, outs } = bothPaths(layout, records);
      assert.deepEqual(
        transcoder.tables.map((t) => t.table),
        mapper.tables,
      );
      const tables = [...layout.children, layout.table];
      transcoder.tables.forEach((t, i) => {
        const expected = (json[i] as Row[]).map((row) => JSON.parse(JSON.stringify(row)) as Row);
        // The insert's column list is the JSON rows' keys, in the same order.
        if (expected.length > 0) assert.deepEqual(t.columns, Object.keys(expected[0]!), `${t.table} columns`);
        const types = t.columns.map((c) => tables[i]!.columns.find((col) => col.name === c)!.type);
        const reader = new Reader(Buffer.concat(outs[i]!.body()));
        const got: Row[] = [];
        while (!reader.done)
          got.push(Object.fromEntries(t.columns.map((c, j) => [c, reader.value(types[j]!)])));
        assert.equal(outs[i]!.rows, expected.length, `${t.table} row count`);
        assert.equal(got.length, expected.length, `${t.table} rows read back`);
        got.forEach((row, r) => assert.deepEqual(row, expected[r], `${resource}: ${t.table} row ${r}`));
      });
    }
  });
}

/**
 * What one transcode does to `outs`: the error it threw (class and message), if any. The caller
 * compares the bytes in outs afterwards.
 */
function attempt(transcode: () => void): string {
  try {
    transcode();
    return 'ok';
  } catch (err) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  }
}

test('one walk and two walks write the same bytes and refuse the same records, corrupted at random', () => {
  // The main row is written in one walk when its columns allow (createTranscoder); records over
  // ONE_WALK_MAX_BYTES, and every record in walks=2, take two. Both must agree on every input: the
  // same rows, the same refusals, and a refused record leaves nothing of itself behind, also when
  // it comes after rows that filled chunks (16 KiB, then 256 KiB) before it.
  let walked = 0;
  let refused = 0;
  for (const features of [LEGACY_FEATURES, featuresFor([26, 9])]) {
    for (const resource of RESOURCES) {
      const layout = deriveLayout(resource, valueSchema(resource), { database: 'db', features });
      const one = createTranscoder(layout, valueSchema(resource), TOPIC, 1);
      const two = createTranscoder(layout, valueSchema(resource), TOPIC, 2);
      assert.equal(two.oneWalk, false);
      if (!one.oneWalk) continue;
      walked += 1;
      const values = edgeRecords(resource, resourceMeta(resource).key).map((r) => wire(resource, r));
      const outsOne = new BatchBuffer(NOW * 1000).binary(7, one.tables);
      const outsTwo = new BatchBuffer(NOW * 1000).binary(7, two.tables);
      const mutation = fc.record({
        value: fc.nat({ max: values.length - 1 }),
        how: fc.constantFrom('truncate', 'set', 'append'),
        at: fc.nat(),
        byte: fc.nat({ max: 255 }),
      });
      fc.assert(
        fc.property(fc.array(mutation, { minLength: 1, maxLength: 60 }), (mutations) => {
          for (const [i, m] of mutations.entries()) {
            const good = values[m.value]!;
            const at = 5 + (m.at % (good.length - 5));
            const bad =
              m.how === 'truncate'
                ? good.subarray(0, at)
                : m.how === 'append'
                  ? Buffer.concat([good, Buffer.from([m.byte])])
                  : Buffer.from(good).fill(m.byte, at, at + 1);
            for (const value of [good, bad]) {
              const a = attempt(() => one.transcode(value, 5, i % 3, 100 + i, NOW, outsOne));
              const b = attempt(() => two.transcode(value, 5, i % 3, 100 + i, NOW, outsTwo));
              assert.equal(a, b, `${resource}: ${m.how} at ${at}`);
              if (a !== 'ok') refused += 1;
            }
          }
          outsOne.forEach((o, t) => {
            assert.equal(o.rows, outsTwo[t]!.rows);
            assert.ok(Buffer.concat(o.body()).equals(Buffer.concat(outsTwo[t]!.body())), `${resource} bytes`);
          });
        }),
        { numRuns: 40, seed: 14 },
      );
    }
  }
  assert.ok(walked >= 10, `one walk taken by ${walked} resource layouts`);
  assert.ok(refused > 100, `only ${refused} corrupted records were refused`);
});

test('a refused record whose row began new chunks takes them back, and the rows before it stay whole', () => {
  // Rows of 100-300 KB cross the chunks (16 KiB first, then 256 KiB) as they are written; a record
  // cut short at its end fails only after most of its row is written, into a chunk begun for it.
  const layout = deriveLayout('batches', valueSchema('batches'), { database: 'db' });
  const one = createTranscoder(layout, valueSchema('batches'), TOPIC, 1);
  const two = createTranscoder(layout, valueSchema('batches'), TOPIC, 2);
  assert.equal(one.oneWalk, true);
  const base = edgeRecords('batches', resourceMeta('batches').key)[0]!;
  const outsOne = new BatchBuffer(NOW * 1000).binary(7, one.tables);
  const outsTwo = new BatchBuffer(NOW * 1000).binary(7, two.tables);
  let refused = 0;
  for (let i = 0; i < 12; i++) {
    const good = wire('batches', {
      ...base,
      _raw_json: JSON.stringify({ pad: 'x'.repeat(100_000 + i * 20_000) }),
    });
    for (const value of [good, good.subarray(0, good.length - 1), good]) {
      const a = attempt(() => one.transcode(value, 5, i % 2, 100 + i, NOW, outsOne));
      const b = attempt(() => two.transcode(value, 5, i % 2, 100 + i, NOW, outsTwo));
      assert.equal(a, b);
      if (a !== 'ok') refused += 1;
    }
  }
  assert.equal(refused, 12);
  assert.equal(outsOne[0]!.rows, 24);
  const bytes = Buffer.concat(outsOne[0]!.body());
  assert.ok(bytes.equals(Buffer.concat(outsTwo[0]!.body())));
  assert.ok(bytes.length > 24 * 100_000);
});

test('malformed Avro is refused with DecodeError and writes nothing', () => {
  const layout = deriveLayout('runs_results', valueSchema('runs_results'), { database: 'db' });
  const transcoder = createTranscoder(layout, valueSchema('runs_results'), TOPIC);
  const good = wire('runs_results', edgeRecords('runs_results', resourceMeta('runs_results').key)[0]);
  const bad: [string, Buffer][] = [
    ['truncated', good.subarray(0, good.length - 3)],
    ['trailing data', Buffer.concat([good, Buffer.from([0])])],
    ['empty body', good.subarray(0, 5)],
    // _ib_context is the second field: its union index 2 does not exist.
    [
      'bad union index',
      (() => {
        const b = Buffer.from(good);
        const afterEndpoint = 5 + 1 + (b[5]! >> 1);
        b[afterEndpoint] = 4;
        return b;
      })(),
    ],
    ['overlong varint', Buffer.concat([good.subarray(0, 5), Buffer.alloc(12, 0xff)])],
  ];
  for (const [why, value] of bad) {
    const buffer = new BatchBuffer(NOW * 1000);
    const outs = buffer.binary(7, transcoder.tables);
    assert.throws(() => transcoder.transcode(value, 5, 0, 1, NOW, outs), DecodeError, why);
    for (const o of outs) {
      assert.equal(o.rows, 0, why);
      assert.equal(Buffer.concat(o.body()).length, 0, why);
    }
  }
});

test('a null key with no content hash to stand in for it is a RowMappingError, nothing written', () => {
  const layout = deriveLayout('runs', valueSchema('runs'), { database: 'db' });
  const transcoder = createTranscoder(layout, valueSchema('runs'), TOPIC);
  const keyless = edgeRecords('runs', ['id']).find((r) => r['id'] === null)!;
  const buffer = new BatchBuffer(NOW * 1000);
  const outs = buffer.binary(7, transcoder.tables);
  assert.throws(
    () => transcoder.transcode(wire('runs', { ...keyless, _content_hash: 'not-hex' }), 5, 0, 1, NOW, outs),
    RowMappingError,
  );
  assert.equal(Buffer.concat(outs.flatMap((o) => o.body())).length, 0);
});

test('the same messages give the same insert bytes whatever order their partitions interleave in', () => {
  const layout = deriveLayout('runs_results', valueSchema('runs_results'), { database: 'db' });
  const transcoder = createTranscoder(layout, valueSchema('runs_results'), TOPIC);
  const values = edgeRecords('runs_results', resourceMeta('runs_results').key).map((r) =>
    wire('runs_results', r),
  );
  const fill = (order: number[]) => {
    const buffer = new BatchBuffer(NOW * 1000);
    for (const i of order)
      transcoder.transcode(values[i]!, 5, i % 3, i, NOW, buffer.binary(7, transcoder.tables));
    return [...buffer.encoded.values()].map((e) => Buffer.concat(e.body()).toString('hex'));
  };
  const inOrder = values.map((_, i) => i);
  // Partition 2's messages first, then 0's, then 1's: each partition still in offset order.
  const interleaved = [2, 0, 1].flatMap((p) => inOrder.filter((i) => i % 3 === p));
  assert.deepEqual(fill(interleaved), fill(inOrder));
});
