/**
 * PartitionRouter (#16): each sendBatch of a transaction covers one partition, so it reaches one broker,
 * and the partition of a keyed message is the one kafkajs's default partitioner would have chosen. The
 * transaction is a recording stand-in; the partitioner is the one the router gives the producer, fed the
 * partition metadata kafkajs would pass it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Partitioners, type Message, type PartitionMetadata, type TopicMessages } from 'kafkajs';
import { PartitionRouter } from '../../../producers/publisher.ts';

const partitions = (n: number): PartitionMetadata[] =>
  Array.from({ length: n }, (_, i) => ({
    partitionErrorCode: 0,
    partitionId: i,
    leader: i + 1,
    replicas: [1, 2, 3],
    isr: [1, 2, 3],
  }));

/** What a real producer does with a batch: partitions each message with the router's partitioner. */
function recordingTransaction(router: PartitionRouter, metadata: Map<string, PartitionMetadata[]>) {
  const partitioner = router.createPartitioner();
  const sends: Array<Array<{ topic: string; partition: number; key: string }>> = [];
  return {
    sends,
    sendBatch: async ({ topicMessages }: { topicMessages: TopicMessages[] }) => {
      sends.push(
        topicMessages.flatMap(({ topic, messages }) =>
          messages.map((message) => ({
            topic,
            partition: partitioner({ topic, partitionMetadata: metadata.get(topic)!, message }),
            key: String(message.key),
          })),
        ),
      );
      return [];
    },
  };
}

const keyed = (keys: string[]): Message[] => keys.map((key) => ({ key, value: 'v' }));

test('one partition per send, the partition kafkajs would choose, each partition in order', async () => {
  const router = new PartitionRouter();
  const metadata = new Map([
    ['records', partitions(6)],
    ['state', partitions(1)],
  ]);
  const tx = recordingTransaction(router, metadata);
  const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
  const send = { acks: -1 };
  await router.send(tx, [{ topic: 'records', messages: keyed(keys) }], send);
  await router.send(
    tx,
    [
      { topic: 'records', messages: keyed(keys) },
      { topic: 'state', messages: keyed(['cursor']) },
    ],
    send,
  );

  for (const batch of tx.sends) {
    const targets = new Set(batch.map((m) => `${m.topic}:${m.partition}`));
    assert.equal(targets.size, 1, `one partition per send, got ${[...targets].join(', ')}`);
  }
  // The first send of an unknown topic is its first message alone; after that it is known.
  assert.deepEqual(tx.sends[0], [{ topic: 'records', partition: tx.sends[0]![0]!.partition, key: 'key-0' }]);

  const kafkajs = Partitioners.DefaultPartitioner();
  const expected = (topic: string, key: string) =>
    kafkajs({ topic, partitionMetadata: metadata.get(topic)!, message: { key, value: 'v' } });
  const sent = tx.sends.flat();
  for (const m of sent)
    assert.equal(m.partition, expected(m.topic, m.key), `${m.key} on kafkajs's partition`);
  assert.deepEqual(
    sent
      .filter((m) => m.topic === 'records')
      .map((m) => m.key)
      .sort(),
    [...keys, ...keys].sort(),
    'every message sent once per call',
  );
  // Within a partition, the order of the caller.
  const second = tx.sends
    .slice(-7)
    .flat()
    .filter((m) => m.topic === 'records');
  for (const p of new Set(second.map((m) => m.partition))) {
    const inPartition = second.filter((m) => m.partition === p).map((m) => m.key);
    assert.deepEqual(
      inPartition,
      keys.filter((k) => expected('records', k) === p),
    );
  }
  assert.ok(
    new Set(sent.filter((m) => m.topic === 'records').map((m) => m.partition)).size > 1,
    'the keys spread over several partitions',
  );
});
