/**
 * patches/kafkajs+2.2.4.patch decodes a fetched record where it lies in its batch, without a Buffer and
 * a Decoder per record, reads a record without headers without an array, and remembers the last
 * timestamp string it printed (#14). These properties assemble record batches here from Kafka's record
 * format (not with kafkajs's encoder) and check every record kafkajs decodes from them: key, value,
 * headers (a repeated key gives an array, as kafkajs always did), offset and timestamp. A record that
 * does not end where its length says must decode as it did before the patch, from its own slice.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';

const require = createRequire(import.meta.url);
const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;
interface Decoded {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | null | (Buffer | null)[]>;
  offset: string;
  timestamp: string;
}
const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (
  decoder: unknown,
) => Promise<{ records: Decoded[] }>;
const decodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder') as (
  decoder: unknown,
  context: Record<string, unknown>,
) => Decoded;

const U64 = (1n << 64n) - 1n;
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
const varlong = (n: bigint): number[] => leb128(((n << 1n) ^ (n >> 63n)) & U64);
const varint = (n: number): number[] => varlong(BigInt(n));
const bytes = (b: Buffer | null): number[] => (b === null ? varint(-1) : [...varint(b.length), ...b]);

interface Rec {
  timestampDelta: bigint;
  offsetDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: [string, Buffer | null][];
}

/** A record's body as Kafka defines it; `lengthDelta` misstates its length prefix. */
function recordBytes(r: Rec, lengthDelta = 0): number[] {
  const body = [
    0, // attributes
    ...varlong(r.timestampDelta),
    ...varint(r.offsetDelta),
    ...bytes(r.key),
    ...bytes(r.value),
    ...varint(r.headers.length),
    ...r.headers.flatMap(([k, v]) => [...bytes(Buffer.from(k)), ...bytes(v)]),
  ];
  return [...varint(body.length + lengthDelta), ...body];
}

/** A whole record batch (magic 2, no compression), with the fetch response's offset and length. */
function batchBytes(firstOffset: bigint, firstTimestamp: bigint, records: number[][]): Buffer {
  const recs = Buffer.from(records.flat());
  const body = Buffer.alloc(4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4);
  let p = 0;
  p = body.writeInt32BE(0, p); // partition leader epoch
  p = body.writeInt8(2, p); // magic
  p = body.writeUInt32BE(0, p); // crc: kafkajs does not check it
  p = body.writeInt16BE(0, p); // attributes
  p = body.writeInt32BE(Math.max(0, records.length - 1), p);
  p = body.writeBigInt64BE(firstTimestamp, p);
  p = body.writeBigInt64BE(firstTimestamp, p);
  p = body.writeBigInt64BE(-1n, p);
  p = body.writeInt16BE(-1, p);
  p = body.writeInt32BE(-1, p);
  body.writeInt32BE(records.length, p);
  const head = Buffer.alloc(12);
  head.writeBigInt64BE(firstOffset);
  head.writeInt32BE(body.length + recs.length, 8);
  return Buffer.concat([head, body, recs]);
}

/** kafkajs's headers: a key seen once maps to its value, a repeated one to its values in order. */
function expectedHeaders(headers: [string, Buffer | null][]): Decoded['headers'] {
  const out: Decoded['headers'] = {};
  for (const [k, v] of headers) {
    const had = out[k];
    out[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
  }
  return out;
}

const buf = (max: number) => fc.option(fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a)));
const rec = fc.record({
  timestampDelta: fc.oneof(
    fc.constant(0n),
    fc.bigInt({ min: 0n, max: 1000n }),
    fc.bigInt({ min: -(2n ** 40n), max: 2n ** 50n }),
  ),
  key: buf(40),
  value: buf(700),
  headers: fc.oneof(
    fc.constant([] as [string, Buffer | null][]),
    fc.array(fc.tuple(fc.constantFrom('a', 'b', 'x-reason', 'ü'), buf(20)), { maxLength: 5 }),
  ),
});

const DecoderProto = (Decoder as unknown as { prototype: { readVarIntBytes(this: unknown): Buffer | null } })
  .prototype;
const readVarIntBytes = DecoderProto.readVarIntBytes;
let reads = 0;
DecoderProto.readVarIntBytes = function (this: unknown) {
  reads += 1;
  return readVarIntBytes.call(this);
};

describe('kafkajs record batch decoder (patched)', () => {
  it('gives every record of a batch as Kafka encoded it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.bigInt({ min: 0n, max: 2n ** 62n }),
        fc.oneof(
          fc.bigInt({ min: 1_500_000_000_000n, max: 2_500_000_000_000n }),
          fc.bigInt({ min: 0n, max: 2n ** 60n }),
        ),
        fc.array(rec, { maxLength: 30 }),
        fc.array(rec, { maxLength: 10 }),
        async (firstOffset, firstTimestamp, first, second) => {
          const batches = [first, second].map((rs, b) => {
            const recs = rs.map((r, i) => ({ ...r, offsetDelta: i }));
            const base = firstOffset + BigInt(b * 1000);
            return {
              recs,
              base,
              bytes: batchBytes(
                base,
                firstTimestamp,
                recs.map((r) => recordBytes(r)),
              ),
            };
          });
          // Two batches back to back in one buffer, as a fetch response has them.
          const decoder = new Decoder(Buffer.concat(batches.map((b) => b.bytes)));
          for (const b of batches) {
            // In place, a record reads its key, its value and each header's value: no slice of its
            // own (which would be one more read each, and a Decoder), so the in-place path was taken.
            reads = 0;
            const { records } = await decodeBatch(decoder);
            assert.equal(
              reads,
              b.recs.reduce((n, r) => n + 2 + r.headers.length, 0),
            );
            assert.equal(records.length, b.recs.length);
            records.forEach((got, i) => {
              const want = b.recs[i]!;
              assert.deepEqual(got.key, want.key);
              assert.deepEqual(got.value, want.value);
              assert.deepEqual(got.headers, expectedHeaders(want.headers));
              assert.equal(got.offset, (b.base + BigInt(i)).toString());
              assert.equal(got.timestamp, (firstTimestamp + want.timestampDelta).toString());
            });
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decodes a record whose length prefix is wrong from its own slice, as kafkajs did before', async () => {
    const context = {
      firstOffset: '500',
      firstTimestamp: '1700000000000',
      timestampType: 0,
      magicByte: 2,
      isControlBatch: false,
    };
    const r: Rec = {
      timestampDelta: 3n,
      offsetDelta: 0,
      key: Buffer.from('key'),
      value: Buffer.from('a value of some length'),
      headers: [['h', Buffer.from('v')]],
    };
    const next: Rec = { ...r, offsetDelta: 1, key: Buffer.from('next') };
    // A record's body with raw lengths for its key and value (below -1 is no length Kafka writes).
    const hostile = (keyLength: number, valueLength: number): number[] => {
      const body = [
        0,
        ...varlong(3n),
        ...varint(0),
        ...varint(keyLength),
        ...varint(valueLength),
        1,
        2,
        3,
        0,
      ];
      return [...varint(body.length), ...body];
    };
    const variants: [string, number[]][] = [
      ...[-1, -2, -5, 1, 3].map((d): [string, number[]] => [
        `length ${d > 0 ? '+' : ''}${d}`,
        recordBytes(r, d),
      ]),
      ['key length -3', hostile(-3, 2)],
      ['value length -2', hostile(1, -2)],
      ['key length -8', hostile(-8, -1)],
    ];
    const outcome = (f: () => Decoded[]): Decoded[] | string => {
      try {
        return f();
      } catch (err) {
        return `${(err as Error).name}: ${(err as Error).message}`;
      }
    };
    let compared = 0;
    for (const [what, own] of variants) {
      const batch = batchBytes(500n, 1_700_000_000_000n, [own, recordBytes(next)]);
      // What kafkajs 2.2.4 did: each record's length read, its slice decoded on its own. The records
      // begin after the offset and length (12 bytes) and the batch's header (49).
      const expected = outcome(() => {
        const d = new Decoder(batch) as { offset: number; readVarIntBytes(): Buffer };
        d.offset = 12 + 49;
        return [0, 1].map(() => decodeRecord(new Decoder(d.readVarIntBytes()), context));
      });
      let got: Decoded[] | string;
      try {
        got = (await decodeBatch(new Decoder(batch))).records;
      } catch (err) {
        got = `${(err as Error).name}: ${(err as Error).message}`;
      }
      if (typeof expected === 'string' || typeof got === 'string') {
        assert.equal(got, expected, what);
        continue;
      }
      assert.equal(got.length, 2, what);
      got.forEach((g, i) => {
        const e = (expected as Decoded[])[i]!;
        assert.deepEqual(g.key, e.key, what);
        assert.deepEqual(g.value, e.value, what);
        assert.deepEqual(g.headers, e.headers, what);
        assert.equal(g.offset, e.offset, what);
        assert.equal(g.timestamp, e.timestamp, what);
      });
      compared += 1;
    }
    // A key length of -20 sends kafkajs's Decoder back into the record before (kafkajs adds a length
    // to its offset whatever its sign), where a value length of 24 sends it on to exactly this record's
    // end: in place, that would decode to bytes of both records; from its own slice it is what kafkajs
    // made of it before.
    const before: Rec = { ...r, key: null, value: Buffer.from('x'.repeat(30)), headers: [] };
    const beforeBytes = recordBytes(before);
    beforeBytes[beforeBytes.length - 15] = 0x30; // varint 24, 16 bytes before the next record's body
    const back = [0, ...varlong(3n), ...varint(1), ...varint(-20), 9, 9, 9, 9, 9, 0];
    const backBatch = batchBytes(500n, 1_700_000_000_000n, [beforeBytes, [...varint(back.length), ...back]]);
    const stock = outcome(() => {
      const d = new Decoder(backBatch) as { offset: number; readVarIntBytes(): Buffer };
      d.offset = 12 + 49;
      return [0, 1].map(() => decodeRecord(new Decoder(d.readVarIntBytes()), context));
    });
    const patched = (await decodeBatch(new Decoder(backBatch))).records;
    assert.ok(typeof stock !== 'string');
    assert.deepEqual(patched[1]!.value, stock[1]!.value);
    assert.notEqual(patched[1]!.value?.length, 24);
    // Some variants decode (to what the slice gives), the others fail as kafkajs failed.
    assert.ok(compared >= 2, `only ${compared} variants decoded`);
  });
});
