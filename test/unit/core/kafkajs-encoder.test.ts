/**
 * patches/kafkajs+2.2.4.patch makes kafkajs's produce encoding allocate less (#14): varints are written
 * straight into the encoder's buffer, timestamp deltas that fit 31 bits skip the Long (BigInt) zigzag,
 * buffers are not zero-filled, and records and record batches are sized up front. None of it may change
 * a byte on the wire. These properties compare the patched Encoder with LEB128 and zigzag computed here
 * in BigInt (Kafka's varint and varlong), byte for byte, and a whole record batch with one assembled
 * here from Kafka's record format, then decode that batch with kafkajs's decoder.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';

const require = createRequire(import.meta.url);
interface KafkaEncoder {
  writeVarInt(v: number): KafkaEncoder;
  writeUVarInt(v: number): KafkaEncoder;
  writeVarLong(v: string | number | bigint): KafkaEncoder;
  size(): number;
  buffer: Buffer;
}
const Encoder = require('kafkajs/src/protocol/encoder') as {
  new (initialSize?: number): KafkaEncoder;
  sizeOfVarLong(v: string | number | bigint): number;
};
const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: {
  offsetDelta: number;
  timestampDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | string>;
}) => KafkaEncoder;
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch: (o: Record<string, unknown>) => Promise<KafkaEncoder>;
};
const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (decoder: unknown) => Promise<{
  records: { key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer>; offset: string }[];
}>;
const crc32C = require('kafkajs/src/protocol/recordBatch/crc32C') as (b: Buffer) => number;

const U64 = (1n << 64n) - 1n;

/** Unsigned LEB128, as Kafka writes varints. */
function leb128(n: bigint): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
const zigzag64 = (n: bigint): bigint => ((n << 1n) ^ (n >> 63n)) & U64;
const zigzag32 = (n: number): bigint => BigInt(((n << 1) ^ (n >> 31)) >>> 0);
const varint = (n: number): number[] => leb128(zigzag32(n));
const varlong = (n: bigint): number[] => leb128(zigzag64(n));
function varintBytes(b: Buffer | null): number[] {
  return b === null ? varint(-1) : [...varint(b.length), ...b];
}

const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
/** Around the 31-bit fast path's bounds, safe integers, and any int64. */
const int64 = fc.oneof(
  fc.bigInt({ min: -(2n ** 30n) - 300n, max: -(2n ** 30n) + 300n }),
  fc.bigInt({ min: 2n ** 30n - 300n, max: 2n ** 30n + 300n }),
  fc.bigInt({ min: -(2n ** 31n) - 300n, max: 2n ** 31n + 300n }),
  fc.bigInt({ min: -(2n ** 53n) + 1n, max: 2n ** 53n - 1n }),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
);

describe('kafkajs Encoder, as patched', () => {
  it('writes every int32 varint and uvarint as LEB128 of its zigzag', () => {
    fc.assert(
      fc.property(fc.array(int32, { maxLength: 40 }), fc.integer({ min: 1, max: 64 }), (values, size) => {
        const e = new Encoder(size);
        for (const v of values) e.writeVarInt(v).writeUVarInt(v >>> 0);
        const want = values.flatMap((v) => [...varint(v), ...leb128(BigInt(v >>> 0))]);
        assert.deepEqual([...e.buffer], want);
        assert.equal(e.size(), want.length);
      }),
      { numRuns: 500 },
    );
  });

  it('writes every int64 varlong, given as number, string or BigInt, as LEB128 of its 64-bit zigzag', () => {
    fc.assert(
      fc.property(int64, (n) => {
        const want = varlong(n);
        const forms: (string | number | bigint)[] = [n, n.toString()];
        if (n >= -(2n ** 53n) && n <= 2n ** 53n) forms.push(Number(n));
        for (const form of forms) {
          assert.deepEqual([...new Encoder().writeVarLong(form).buffer], want, `as ${typeof form}`);
          assert.equal(Encoder.sizeOfVarLong(form), want.length, `size as ${typeof form}`);
        }
      }),
      { numRuns: 2000 },
    );
    // the fast path's exact edges, and -0
    for (const n of [-(2 ** 30) - 1, -(2 ** 30), 2 ** 30 - 1, 2 ** 30, -0]) {
      assert.deepEqual([...new Encoder().writeVarLong(n).buffer], varlong(BigInt(n)), String(n));
    }
  });

  it('encodes a record batch byte for byte as Kafka defines it, and kafkajs decodes it back', async () => {
    const bytes = fc.option(
      fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
      { freq: 8 },
    );
    const message = fc.record({
      key: bytes,
      value: bytes,
      timestampDelta: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 2 ** 40 })),
      headers: fc.dictionary(
        // prefixed: kafkajs decodes headers into a plain object, where `toString` is already taken
        fc.string({ maxLength: 8 }).map((k) => `x-${k}`),
        fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)),
        { maxKeys: 3 },
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 60 }), async (messages) => {
        const records = messages.map((m, i) => Record({ ...m, offsetDelta: i }));
        const fields = {
          firstTimestamp: 1_764_000_000_000,
          maxTimestamp: 1_764_000_000_000,
          producerId: 4242,
          producerEpoch: 3,
          firstSequence: 17,
          lastOffsetDelta: messages.length - 1,
          transactional: true,
        };
        const got = (await RecordBatch({ ...fields, records })).buffer;

        // Kafka's RecordBatch v2, assembled here from the record format
        const recordBytes = messages.flatMap((m, i) => {
          const headers = Object.entries(m.headers);
          const body = [
            0,
            ...varlong(BigInt(m.timestampDelta)),
            ...varint(i),
            ...varintBytes(m.key),
            ...varintBytes(m.value),
            ...varint(headers.length),
            ...headers.flatMap(([k, v]) => [...varintBytes(Buffer.from(k)), ...varintBytes(v)]),
          ];
          return [...varint(body.length), ...body];
        });
        const body = Buffer.alloc(2 + 4 + 8 + 8 + 8 + 2 + 4 + 4);
        let o = body.writeInt16BE(16); // transactional
        o = body.writeInt32BE(fields.lastOffsetDelta, o);
        o = body.writeBigInt64BE(BigInt(fields.firstTimestamp), o);
        o = body.writeBigInt64BE(BigInt(fields.maxTimestamp), o);
        o = body.writeBigInt64BE(BigInt(fields.producerId), o);
        o = body.writeInt16BE(fields.producerEpoch, o);
        o = body.writeInt32BE(fields.firstSequence, o);
        body.writeInt32BE(messages.length, o);
        const batchBody = Buffer.concat([body, Buffer.from(recordBytes)]);
        const head = Buffer.alloc(4 + 1 + 4);
        head.writeInt32BE(0); // partition leader epoch
        head.writeInt8(2, 4); // magic
        head.writeUInt32BE(crc32C(batchBody), 5);
        const batch = Buffer.concat([head, batchBody]);
        const framing = Buffer.alloc(12);
        framing.writeBigInt64BE(0n);
        framing.writeInt32BE(batch.length, 8);
        assert.ok(got.equals(Buffer.concat([framing, batch])), 'record batch bytes differ');

        const decoded = await decodeBatch(new Decoder(got));
        assert.equal(decoded.records.length, messages.length);
        for (const [i, r] of decoded.records.entries()) {
          const m = messages[i]!;
          assert.deepEqual(r.key, m.key);
          assert.deepEqual(r.value, m.value);
          assert.deepEqual(Object.keys(r.headers).sort(), Object.keys(m.headers).sort());
          for (const [k, v] of Object.entries(m.headers)) assert.deepEqual(r.headers[k], v);
          assert.equal(r.offset, String(i));
        }
      }),
      { numRuns: 150 },
    );
  });
});
