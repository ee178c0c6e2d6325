/**
 * ensureTopics when other processes create the same topics at the same moment: a create that finds
 * them existing is a success, and a broker whose metadata cache has not caught up yet ("This server
 * does not host this topic-partition", then partitions without a leader) is waited out by polling
 * metadata. The admin is an in-memory stand-in scripted with the answers a KRaft broker gives in that
 * window; the real-broker version is in test/integration/producers-recovery.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Admin, ITopicConfig } from 'kafkajs';
import { createLogger } from '../../../core/log.ts';
import { ensureTopics } from '../../../core/topics.ts';

const logger = createLogger('test', undefined, 'silent');
const specs: ITopicConfig[] = [
  { topic: 'p.batches', numPartitions: 3 },
  { topic: 'p._state', numPartitions: 1 },
];

const led = (n: number, leader = 1) =>
  Array.from({ length: n }, (_, partitionId) => ({
    partitionId,
    leader,
    partitionErrorCode: 0,
    replicas: [1],
    isr: [1],
  }));

function scriptedAdmin(script: {
  create: () => Promise<boolean>;
  metadata: Array<() => unknown>;
  existing?: string[];
}): {
  admin: Admin;
  calls: string[];
} {
  const calls: string[] = [];
  let m = 0;
  const admin = {
    listTopics: async () => script.existing ?? [],
    createTopics: async (args: { waitForLeaders?: boolean }) => {
      calls.push(`create waitForLeaders=${String(args.waitForLeaders)}`);
      return script.create();
    },
    fetchTopicMetadata: async () => {
      calls.push('metadata');
      const step = script.metadata[Math.min(m++, script.metadata.length - 1)]!;
      return step();
    },
  } as unknown as Admin;
  return { admin, calls };
}

test('topics another process just created: already-exists is success, an unknown topic is waited for', async () => {
  const exists = Object.assign(new Error('Topic with this name already exists'), {
    name: 'KafkaJSAggregateError',
    errors: specs.map(() => ({
      type: 'TOPIC_ALREADY_EXISTS',
      message: 'Topic with this name already exists',
    })),
  });
  const { admin, calls } = scriptedAdmin({
    create: async () => {
      throw exists;
    },
    metadata: [
      () => {
        throw new Error('This server does not host this topic-partition');
      },
      () => ({
        topics: [
          { name: 'p.batches', partitions: led(3, -1) },
          { name: 'p._state', partitions: led(1) },
        ],
      }),
      () => ({
        topics: [
          { name: 'p.batches', partitions: led(3) },
          { name: 'p._state', partitions: led(1) },
        ],
      }),
    ],
  });
  await ensureTopics(admin, specs, logger, 5_000);
  assert.deepEqual(calls, ['create waitForLeaders=false', 'metadata', 'metadata', 'metadata']);
});

test('any other create error is not swallowed', async () => {
  const { admin } = scriptedAdmin({
    create: async () => {
      throw Object.assign(new Error('Replication factor: 3 larger than available brokers: 1'), {
        type: 'INVALID_REPLICATION_FACTOR',
      });
    },
    metadata: [() => ({ topics: [] })],
  });
  await assert.rejects(ensureTopics(admin, specs, logger, 1_000), /Replication factor/);
});

test('topics that never get leaders fail after the bound, naming them', async () => {
  const { admin } = scriptedAdmin({
    create: async () => true,
    metadata: [() => ({ topics: [{ name: 'p._state', partitions: led(1) }] })],
  });
  await assert.rejects(ensureTopics(admin, specs, logger, 300), /not all served with leaders within 300 ms/);
});

test('a topic made beforehand with fewer partitions than kafka.partitions is taken as it is', async () => {
  const { admin, calls } = scriptedAdmin({
    existing: ['p.batches'],
    create: async () => true,
    metadata: [
      () => ({
        topics: [
          { name: 'p.batches', partitions: led(1) },
          { name: 'p._state', partitions: led(1) },
        ],
      }),
    ],
  });
  await ensureTopics(admin, specs, logger, 1_000);
  assert.deepEqual(calls, ['create waitForLeaders=false', 'metadata']);
});
