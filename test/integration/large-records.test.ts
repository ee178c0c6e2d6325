/**
 * Records larger than Kafka takes, on the real broker: a record over `kafka.maxMessageBytes` is
 * dead-lettered (`record-too-large`) and the rest of its step commits, where before the broker refused
 * the whole transaction with MESSAGE_TOO_LARGE at every poll and the page never went out. With the limit
 * raised, the topics the pipeline creates take such a record, and it reaches ClickHouse whole.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import type { Config } from '../../core/config.ts';
import { producerDlqTopic, resourceTopic } from '../../core/topics.ts';
import { startProducers } from '../../producers/daemon.ts';
import type { Emit } from '../../producers/follow/types.ts';
import { quoteIdentifier } from '../../sinks/schema/sql.ts';
import { startSinks } from '../../sinks/daemon.ts';
import { startSimulator, type Simulator } from '../../sim/index.ts';
import { quietLogger, readTopics, uniqueName, waitFor } from '../helpers/pipeline.ts';
import { cleanUp, pipelineConfig, scalar, testClickHouse } from '../helpers/sink-pipeline.ts';

const batch = (id: number, name: string): Emit => ({
  resource: 'batches',
  key: String(id),
  fields: { id, name },
  object: { id, name },
  endpoint: 'GET /v2/batches',
  deleted: false,
});

describe('records larger than Kafka takes', { timeout: 5 * 60_000 }, () => {
  let sim: Simulator | undefined;
  const configs: Config[] = [];
  after(async () => {
    await sim?.close();
    for (const c of configs) await cleanUp(c);
  });

  async function published(
    maxMessageBytes: number | undefined,
    emits: Emit[],
    before?: (config: Config) => Promise<void>,
  ) {
    sim ??= await startSimulator({ port: 0, scale: { batches: 3 }, logger: quietLogger });
    const config = pipelineConfig(uniqueName('large'), sim, {
      producers: { resources: ['batches'] },
      ...(maxMessageBytes ? { kafka: { maxMessageBytes } } : {}),
    });
    configs.push(config);
    await before?.(config);
    const producers = await startProducers(config, quietLogger);
    try {
      await producers.commit({ emits, dead: [], state: [] });
      return { config, deadLettered: producers.deadLettered.get('batches') ?? 0 };
    } finally {
      await producers.stop();
    }
  }

  test('one over kafka.maxMessageBytes is dead-lettered, and the rest of its transaction commits', async () => {
    const { config, deadLettered } = await published(undefined, [
      batch(900_001, 'x'.repeat(1_500_000)),
      batch(900_002, 'small'),
    ]);
    const topic = resourceTopic(config, 'batches');
    const dlq = producerDlqTopic(config, 'batches');
    const read = await readTopics(config, [topic, dlq]);
    const keys = read.get(topic)!.map((m) => String(m.key));
    assert.ok(keys.includes('900002'), 'the small record is published');
    assert.ok(!keys.includes('900001'), 'the large one is not');
    const letters = read.get(dlq)!.map((m) => JSON.parse(String(m.raw)) as Record<string, unknown>);
    assert.deepEqual(
      letters.map((l) => [l.reason, (l.details as { encodedBytes: number }).encodedBytes > 3_000_000]),
      [['record-too-large', true]],
    );
    assert.ok(String(letters[0]!.raw).startsWith('{"id":900001,"name":"xxx'), 'an excerpt names it');
    assert.equal(deadLettered, 1, 'counted');
  });

  test("a topic made beforehand that takes less: the broker's limit is read, and what is over it dead-lettered", async () => {
    const { config, deadLettered } = await published(
      undefined,
      [batch(900_004, 'z'.repeat(200_000)), batch(900_005, 'small')],
      async (config) => {
        const admin = new Kafka({ brokers: config.kafka.brokers, logLevel: logLevel.NOTHING }).admin();
        await admin.connect();
        await admin.createTopics({
          topics: [
            {
              topic: resourceTopic(config, 'batches'),
              numPartitions: 1,
              configEntries: [
                { name: 'cleanup.policy', value: 'compact' },
                { name: 'max.message.bytes', value: '300000' },
              ],
            },
          ],
        });
        await admin.disconnect();
      },
    );
    const topic = resourceTopic(config, 'batches');
    const dlq = producerDlqTopic(config, 'batches');
    const read = await readTopics(config, [topic, dlq]);
    assert.deepEqual(
      read
        .get(topic)!
        .map((m) => String(m.key))
        .filter((k) => k.startsWith('9000')),
      ['900005'],
    );
    const letters = read.get(dlq)!.map((m) => JSON.parse(String(m.raw)) as Record<string, unknown>);
    assert.match(
      String(letters[0]?.error),
      new RegExp(`more than ${topic.replace(/\./g, '\\.')} takes \\(298976 bytes`),
    );
    assert.equal(deadLettered, 1);
  });

  test('with the limit raised, a 2 MB record is published and reaches ClickHouse whole', async () => {
    const { config } = await published(6_000_000, [batch(900_003, 'y'.repeat(2_000_000))]);
    const topic = resourceTopic(config, 'batches');
    const [record] = (await readTopics(config, [topic])).get(topic)!.filter((m) => m.key === '900003');
    assert.equal(String(record?.value?.name).length, 2_000_000);
    const ch = testClickHouse(config);
    const sinks = await startSinks(config, quietLogger, { fromBeginning: true });
    try {
      const db = quoteIdentifier(config.clickhouse.database);
      await waitFor(
        'the large record in ClickHouse',
        async () =>
          (await scalar(ch, `SELECT count() AS n FROM ${db}.batches WHERE id = 900003`).catch(() => 0)) > 0,
        120_000,
      );
      assert.equal(
        await scalar(ch, `SELECT length(name) AS n FROM ${db}.batches WHERE id = 900003`),
        2_000_000,
      );
      assert.equal(sinks.runner.stats.deadLetters, 0);
    } finally {
      await sinks.stop();
      await ch.close();
    }
  });
});
