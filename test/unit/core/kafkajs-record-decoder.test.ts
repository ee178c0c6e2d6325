/**
 * patches/kafkajs+2.2.4.patch also speeds up kafkajs's record decoder (#14): a record's offset and
 * timestamp are added as numbers when Number holds them exactly, and through kafkajs's Long otherwise.
 * These properties encode records with kafkajs's own Encoder and check that every offset and timestamp
 * the patched decoder returns is the one Long arithmetic gives, on both sides of 2^53 and for every
 * length of the timestamp delta's varint.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';

const require = createRequire(import.meta.url);
interface KafkaLong {
  add(other: KafkaLong): KafkaLong;
  toString(): string;
}
const Long = require('kafkajs/src/utils/long') as { fromValue(v: string | number | bigint): KafkaLong };
const Encoder = require('kafkajs/src/protocol/encoder') as new () => {
  writeInt8(v: number): unknown;
  writeVarLong(v: string | number | bigint): unknown;
  writeVarInt(v: number): unknown;
  writeVarIntBytes(v: Buffer | null): unknown;
  writeVarIntArray(v: unknown[]): unknown;
  buffer: Buffer;
};
const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;
const decodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder') as (
  decoder: unknown,
  context: Record<string, unknown>,
) => { offset: string; timestamp: string; key: Buffer; value: Buffer };

function record(timestampDelta: bigint, offsetDelta: number): Buffer {
  const e = new Encoder();
  e.writeInt8(0);
  e.writeVarLong(timestampDelta.toString());
  e.writeVarInt(offsetDelta);
  e.writeVarIntBytes(Buffer.from('key'));
  e.writeVarIntBytes(Buffer.from('value'));
  e.writeVarIntArray([]);
  return e.buffer;
}

const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
/** Bases near the interesting lengths: small, epoch-ms timestamps, just under and over 2^53, any int64. */
const base = fc.oneof(
  fc.bigInt({ min: -1n, max: 10_000n }),
  fc.bigInt({ min: 1_500_000_000_000n, max: 2_500_000_000_000n }),
  fc.bigInt({ min: 2n ** 53n - 10_000n, max: 2n ** 53n + 10_000n }),
  fc.bigInt({ min: 10n ** 14n, max: 10n ** 16n }),
  int64,
);
/** Deltas whose zigzag varint has every length from 1 to 10 bytes. */
const delta = fc.oneof(
  fc.bigInt({ min: -64n, max: 63n }),
  fc.bigInt({ min: -(2n ** 30n), max: 2n ** 30n }),
  fc.bigInt({ min: -(2n ** 49n), max: 2n ** 49n }),
  fc.bigInt({ min: -(2n ** 62n), max: 2n ** 62n }),
);

describe('kafkajs record decoder (patched)', () => {
  it('gives the offset and timestamp Long arithmetic gives', () => {
    fc.assert(
      fc.property(base, base, delta, fc.nat({ max: 2 ** 31 - 1 }), (offset0, ts0, tsDelta, offsetDelta) => {
        // Keep the sums within int64, as a broker's batch does.
        fc.pre(ts0 + tsDelta >= -(2n ** 63n) && ts0 + tsDelta < 2n ** 63n);
        fc.pre(offset0 + BigInt(offsetDelta) < 2n ** 63n);
        const decoded = decodeRecord(new Decoder(record(tsDelta, offsetDelta)), {
          firstOffset: offset0.toString(),
          firstTimestamp: ts0.toString(),
          timestampType: 0,
          magicByte: 2,
        });
        assert.equal(
          decoded.offset,
          Long.fromValue(offset0.toString()).add(Long.fromValue(offsetDelta)).toString(),
        );
        assert.equal(decoded.offset, (offset0 + BigInt(offsetDelta)).toString());
        assert.equal(decoded.timestamp, (ts0 + tsDelta).toString());
        assert.equal(decoded.key.toString(), 'key');
        assert.equal(decoded.value.toString(), 'value');
      }),
      { numRuns: 5_000 },
    );
  });

  it('reads the record after a long timestamp delta from the right place', () => {
    // A delta whose varint is longer than the fast path reads must be re-read whole by the Long path.
    for (const d of [2n ** 49n, -(2n ** 49n) - 1n, 2n ** 62n, -(2n ** 63n) + 2_000_000_000_000n]) {
      const decoded = decodeRecord(new Decoder(record(d, 7)), {
        firstOffset: '100',
        firstTimestamp: '1700000000000',
        timestampType: 0,
        magicByte: 2,
      });
      assert.equal(decoded.timestamp, (1_700_000_000_000n + d).toString());
      assert.equal(decoded.offset, '107');
      assert.equal(decoded.value.toString(), 'value');
    }
  });
});
