/**
 * Committed messages and distinct keys per topic, read to the high-water marks taken at the start
 * without decoding or keeping the values: enough to see a re-emission (more messages than keys on a
 * topic whose entities did not change) in a topic of a hundred thousand records.
 */
import { Kafka, logLevel } from 'kafkajs';
import type { Config } from '../../core/config.ts';
import { uniqueName, waitFor } from './pipeline.ts';

export interface TopicCount {
  messages: number;
  keys: number;
  /** The most messages one key has. */
  mostPerKey: number;
}

export async function committedCounts(config: Config, topics: string[]): Promise<Map<string, TopicCount>> {
  const kafka = new Kafka({
    clientId: 'test-counter',
    brokers: config.kafka.brokers,
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<string, number>();
  try {
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic))
        if (Number(p.high) > Number(p.low)) ends.set(`${topic}:${p.partition}`, Number(p.high));
    }
  } finally {
    await admin.disconnect();
  }
  const keys = new Map<string, Map<string, number>>(topics.map((t) => [t, new Map()]));
  const messages = new Map<string, number>(topics.map((t) => [t, 0]));
  const reached = new Set<string>();
  const groupId = uniqueName('counter-');
  const consumer = kafka.consumer({ groupId, readUncommitted: false });
  // Transaction markers take offsets too, so a partition is read when a batch ends at its mark.
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    const tp = `${payload.topic}:${payload.partition}`;
    if (Number(payload.lastOffset) + 1 >= (ends.get(tp) ?? 0)) reached.add(tp);
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        messages.set(topic, messages.get(topic)! + 1);
        const perKey = keys.get(topic)!;
        const key = message.key?.toString('hex') ?? '';
        perKey.set(key, (perKey.get(key) ?? 0) + 1);
      },
    });
    await waitFor(
      'topics to be counted to their high-water marks',
      () => [...ends.keys()].every((tp) => reached.has(tp)),
      120_000,
    );
  } finally {
    await consumer.disconnect();
    const cleanup = kafka.admin();
    await cleanup
      .connect()
      .then(() => cleanup.deleteGroups([groupId]))
      .catch(() => undefined)
      .finally(() => cleanup.disconnect());
  }
  return new Map(
    topics.map((t) => {
      const perKey = keys.get(t)!;
      let mostPerKey = 0;
      for (const n of perKey.values()) mostPerKey = Math.max(mostPerKey, n);
      return [t, { messages: messages.get(t)!, keys: perKey.size, mostPerKey }];
    }),
  );
}
