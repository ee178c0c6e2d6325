/**
 * PartitionRouter (#16): each sendBatch of a transaction reaches one broker, the leader of every
 * partition in it, and the partition of a keyed message is the one kafkajs's default partitioner would
 * have chosen. When leadership has moved since the router last saw the metadata, the send is stopped
 * before anything goes out and its messages go one partition per send. The transaction is a stand-in
 * that does what kafkajs's sendBatch does first: partition every message with the producer's
 * partitioner (the router's), given the partition metadata of the moment, before any request.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Partitioners, type Message, type PartitionMetadata, type TopicMessages } from 'kafkajs';
import { MAX_BYTES_PER_SEND, PartitionRouter } from '../../../producers/publisher.ts';

/** n partitions, partition i led by broker leaders[i] (default: i % 3 + 1). */
const partitions = (n: number, leaders?: number[]): PartitionMetadata[] =>
  Array.from({ length: n }, (_, i) => ({
    partitionErrorCode: 0,
    partitionId: i,
    leader: leaders?.[i] ?? (i % 3) + 1,
    replicas: [1, 2, 3],
    isr: [1, 2, 3],
  }));

interface Sent {
  topic: string;
  partition: number;
  leader: number;
  key: string;
}

/** Records each send as kafkajs would route it; a send the partitioner refuses records nothing. */
function recordingTransaction(router: PartitionRouter, metadata: Map<string, PartitionMetadata[]>) {
  const partitioner = router.createPartitioner();
  const sends: Sent[][] = [];
  let refused = 0;
  return {
    sends,
    refused: () => refused,
    sendBatch: async ({ topicMessages }: { topicMessages: TopicMessages[] }) => {
      const routed: Sent[] = [];
      try {
        for (const { topic, messages } of topicMessages) {
          const partitionMetadata = metadata.get(topic)!;
          for (const message of messages) {
            const partition = partitioner({ topic, partitionMetadata, message });
            const leader = partitionMetadata.find((p) => p.partitionId === partition)!.leader;
            routed.push({ topic, partition, leader, key: String(message.key) });
          }
        }
      } catch (err) {
        // kafkajs's retrier gives up on a non-retriable error and wraps it.
        refused += 1;
        throw Object.assign(new Error(`KafkaJSNonRetriableError: ${(err as Error).message}`), { cause: err });
      }
      sends.push(routed);
      return [];
    },
  };
}

const keyed = (keys: string[]): Message[] => keys.map((key) => ({ key, value: 'v' }));
const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
const options = { acks: -1 };

function kafkajsPartition(metadata: Map<string, PartitionMetadata[]>) {
  const kafkajs = Partitioners.DefaultPartitioner();
  return (topic: string, key: string) =>
    kafkajs({ topic, partitionMetadata: metadata.get(topic)!, message: { key, value: 'v' } });
}

test('one broker per send, the partition kafkajs would choose, each partition in order', async () => {
  const router = new PartitionRouter();
  const metadata = new Map([
    ['records', partitions(6)],
    ['state', partitions(1)],
  ]);
  const tx = recordingTransaction(router, metadata);
  // The first transaction teaches the router both topics.
  await router.send(
    tx,
    [
      { topic: 'records', messages: keyed(['first']) },
      { topic: 'state', messages: keyed(['cursor']) },
    ],
    options,
  );
  assert.equal(tx.sends.length, 2, "an unknown topic's first message goes alone");
  tx.sends.length = 0;

  await router.send(
    tx,
    [
      { topic: 'records', messages: keyed(keys) },
      { topic: 'state', messages: keyed(['cursor']) },
    ],
    options,
  );
  assert.equal(tx.sends.length, 3, 'one send per broker (records over 3 brokers, state on one of them)');
  for (const batch of tx.sends)
    assert.equal(new Set(batch.map((m) => m.leader)).size, 1, 'every partition of a send has one leader');

  const expected = kafkajsPartition(metadata);
  const sent = tx.sends.flat();
  for (const m of sent)
    assert.equal(m.partition, expected(m.topic, m.key), `${m.key} on kafkajs's partition`);
  const records = sent.filter((m) => m.topic === 'records');
  assert.deepEqual(records.map((m) => m.key).sort(), [...keys].sort(), 'every message once');
  for (let p = 0; p < 6; p++)
    assert.deepEqual(
      records.filter((m) => m.partition === p).map((m) => m.key),
      keys.filter((k) => expected('records', k) === p),
      `partition ${p} in the order given`,
    );
  assert.equal(tx.refused(), 0);
});

test('leadership moved since the metadata was read: nothing goes out, then one partition per send', async () => {
  const router = new PartitionRouter();
  const metadata = new Map([['records', partitions(3)]]);
  const tx = recordingTransaction(router, metadata);
  await router.send(tx, [{ topic: 'records', messages: keyed(['first']) }], options);
  tx.sends.length = 0;
  // Broker 1 died: its partition 0 is now led by broker 2, which kafkajs learns when it sends next.
  metadata.set('records', partitions(3, [2, 2, 3]));
  const routerView = partitions(3); // the router still plans with the old leaders
  assert.equal(routerView[0]!.leader, 1);

  await router.send(tx, [{ topic: 'records', messages: keyed(keys) }], options);
  assert.ok(tx.refused() >= 1, 'the send planned for broker 1 was refused before anything went out');
  for (const batch of tx.sends) {
    assert.equal(new Set(batch.map((m) => m.leader)).size, 1, 'still one broker per send');
    if (batch.some((m) => m.partition === 0))
      assert.equal(new Set(batch.map((m) => m.partition)).size, 1, 'the moved partition went alone');
  }
  const expected = kafkajsPartition(metadata);
  assert.deepEqual(
    tx.sends
      .flat()
      .map((m) => m.key)
      .sort(),
    [...keys].sort(),
    'every message sent exactly once',
  );
  for (const m of tx.sends.flat()) assert.equal(m.partition, expected(m.topic, m.key));
});

test('a broker share larger than one send goes in parts; a move found at a later part resends only the rest (#14)', async () => {
  const router = new PartitionRouter();
  const metadata = new Map([['state', partitions(1)]]);
  const tx = recordingTransaction(router, metadata);
  await router.send(tx, [{ topic: 'state', messages: keyed(['first']) }], options);
  tx.sends.length = 0;
  // 40 messages of 100 KiB on one partition: several record batches' worth, over the broker's 1 MiB.
  const big = keys.map((key): Message => ({ key, value: 'v'.repeat(100 * 1024) }));
  const sendBatch = tx.sendBatch;
  let calls = 0;
  tx.sendBatch = async (args) => {
    // After the first part went out, the partition's leader moves to broker 2.
    if (++calls === 2) metadata.set('state', partitions(1, [2]));
    return sendBatch(args);
  };
  await router.send(tx, [{ topic: 'state', messages: big }], options);
  assert.equal(tx.refused(), 1, 'the second part was refused before anything of it went out');
  assert.ok(tx.sends.length >= 4, `${tx.sends.length} sends`);
  for (const batch of tx.sends)
    assert.ok(batch.length * 100 * 1024 <= MAX_BYTES_PER_SEND, `a send of ${batch.length} messages`);
  assert.deepEqual(
    tx.sends.flat().map((m) => m.key),
    keys,
    'every message exactly once, in order',
  );
  assert.deepEqual(
    tx.sends.slice(1).flatMap((b) => b.map((m) => m.leader)),
    tx.sends.slice(1).flatMap((b) => b.map(() => 2)),
    'the rest went to the new leader',
  );
});
