/**
 * producers/key-partition.ts must choose exactly the partition kafkajs's default partitioner chooses
 * (murmur2 of the key, as the Java client hashes it): records of one key must keep landing on one
 * partition whichever of the two picked it, or compaction and per-key order break.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { keyPartition, murmur2 } from '../../../producers/key-partition.ts';

const require = createRequire(import.meta.url);
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2') as (
  key: Buffer | string,
) => number;
const { Partitioners } = require('kafkajs') as typeof import('kafkajs');

describe('keyPartition', () => {
  it('hashes every key as kafkajs does, for every length and byte', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const key = Buffer.from(bytes);
        assert.equal(murmur2(key), kafkajsMurmur2(key));
      }),
      { numRuns: 5_000 },
    );
  });

  it('chooses the partition of kafkajs default partitioner, for string and Buffer keys', () => {
    const choose = Partitioners.DefaultPartitioner();
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' })),
        fc.boolean(),
        fc.integer({ min: 1, max: 64 }),
        (text, asBuffer, count) => {
          const key = asBuffer ? Buffer.from(text) : text;
          const partitionMetadata = Array.from({ length: count }, (_, partitionId) => ({
            partitionId,
            leader: 1,
            partitionErrorCode: 0,
            replicas: [1],
            isr: [1],
          }));
          assert.equal(
            keyPartition(key, count),
            choose({ topic: 't', partitionMetadata, message: { key, value: null } }),
          );
        },
      ),
      { numRuns: 5_000 },
    );
  });
});
