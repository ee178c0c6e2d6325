/**
 * patches/kafkajs+2.2.4.patch makes kafkajs's groupMessagesPerPartition linear (it copied a partition's
 * list for every message added). It must still give every partition its messages in the order sent,
 * which is what keeps one key's records in order: this compares it with the published algorithm.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';

const require = createRequire(import.meta.url);
type Grouped = Record<number, Array<{ i: number; partition: number }>>;
const groupMessagesPerPartition = require('kafkajs/src/producer/groupMessagesPerPartition') as (args: {
  topic: string;
  partitionMetadata: unknown[];
  messages: Array<{ i: number; partition: number }>;
  partitioner: (args: { message: { partition: number } }) => number;
}) => Grouped;

/** kafkajs 2.2.4 as published. */
function published(messages: Array<{ i: number; partition: number }>): Grouped {
  return messages.reduce<Grouped>((result, message) => {
    const current = result[message.partition] ?? [];
    return Object.assign(result, { [message.partition]: [...current, message] });
  }, {});
}

describe('kafkajs groupMessagesPerPartition (patched)', () => {
  it('groups every message under its partition, in the order sent', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 7 }), { maxLength: 300 }),
        fc.nat({ max: 3 }),
        (partitions, empty) => {
          const messages = partitions.map((partition, i) => ({ i, partition }));
          const partitionMetadata = empty === 0 ? [] : [{ partitionId: 0 }];
          const grouped = groupMessagesPerPartition({
            topic: 't',
            partitionMetadata,
            messages,
            partitioner: ({ message }) => message.partition,
          });
          assert.deepEqual(grouped, partitionMetadata.length === 0 ? {} : published(messages));
        },
      ),
    );
  });
});
