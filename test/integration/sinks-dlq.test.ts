/**
 * Poison messages in a resource topic, interleaved with valid records: each lands in
 * `<topic>.sink-dlq` with its reason in the headers and its bytes unchanged, every valid record lands
 * in ClickHouse, and the group's offsets move past the poison.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Message } from 'kafkajs';
import type { Config } from '../../core/config.ts';
import { metrics } from '../../core/metrics.ts';
import { resourceTopic, sinkDlqTopic } from '../../core/topics.ts';
import { startSinks, type RunningSinks } from '../../sinks/daemon.ts';
import { quietLogger, testConfig, uniqueName } from '../helpers/pipeline.ts';
import {
  batchRecords,
  cleanUp,
  encodeMessages,
  makePipelineTopics,
  produce,
  readAll,
  registerResource,
  scalar,
  select,
  testClickHouse,
  waitCommitted,
  wire,
} from '../helpers/sink-pipeline.ts';

async function deadLettered(resource: string): Promise<number> {
  const { values } = await metrics.deadLettered.get();
  return values
    .filter((v) => v.labels.resource === resource && v.labels.stage === 'sink')
    .reduce((n, v) => n + v.value, 0);
}

describe('sinks: poison messages go to the DLQ, valid ones keep flowing', { timeout: 180_000 }, () => {
  const prefix = uniqueName('itd');
  let config: Config;
  let ch: ClickHouseClient;
  let sinks: RunningSinks | undefined;

  before(async () => {
    config = testConfig(prefix, { sinks: { flushRows: 100, flushMs: 200, group: `${prefix}-sink` } });
    ch = testClickHouse(config);
    await makePipelineTopics(config, ['batches']);
  });
  after(async () => {
    await sinks?.stop().catch(() => undefined);
    await ch?.close();
    if (config) await cleanUp(config);
  });

  test('each poison message is dead-lettered once with its reason; every valid row lands', async () => {
    const schema = await registerResource(config, 'batches');
    const topic = resourceTopic(config, 'batches');
    const valid = (from: number, count: number, partition: number) =>
      encodeMessages(schema, batchRecords(from, count), { partition });
    const whole = schema.type.toBuffer(batchRecords(9_999, 1)[0]);
    const poison: Array<{ message: Message; reason: string }> = [
      {
        message: { key: 'poison-1', value: Buffer.from('{"id": 1, "not": "avro"}'), partition: 0 },
        reason: 'not-wire-format',
      },
      {
        message: { key: 'poison-2', value: wire(999_999, whole), partition: 0 },
        reason: 'unknown-schema-id',
      },
      {
        message: {
          key: 'poison-3',
          value: wire(schema.id, whole.subarray(0, Math.floor(whole.length / 2))),
          partition: 0,
        },
        reason: 'avro-decode-failed',
      },
    ];
    const before = await deadLettered('batches');
    // Interleaved in partition 0; the other partitions get valid records only.
    await produce(config, topic, [
      ...valid(1, 50, 0),
      poison[0]!.message,
      ...valid(51, 50, 0),
      poison[1]!.message,
      ...valid(101, 50, 0),
      poison[2]!.message,
      ...valid(151, 50, 0),
      ...valid(201, 100, 1),
      ...valid(301, 100, 2),
    ]);

    sinks = await startSinks(config, quietLogger, { resources: ['batches'] });
    await waitCommitted(config, config.sinks.group, [topic], 90_000, () => {
      if (sinks!.runner.failure) throw sinks!.runner.failure;
    });
    // More valid records after the poison keep flowing.
    await produce(config, topic, valid(401, 100, 0));
    await waitCommitted(config, config.sinks.group, [topic], 60_000);

    const db = `\`${config.clickhouse.database}\``;
    assert.equal(
      await scalar(ch, `SELECT count() AS n FROM ${db}.batches_current`),
      500,
      'every valid record',
    );
    const ids = await select<{ id: string }>(ch, `SELECT id FROM ${db}.batches_current ORDER BY id`);
    assert.deepEqual(
      ids.map((r) => Number(r.id)),
      Array.from({ length: 500 }, (_, k) => k + 1),
    );

    const letters = await readAll(config, sinkDlqTopic(config, 'batches'));
    assert.equal(letters.length, poison.length, 'exactly the poison messages are dead-lettered');
    const offsets = letters.map((l) => Number(l.headers['x-source-offset']));
    // In partition 0 the poison sits after 50, 101 and 152 messages.
    assert.deepEqual(offsets, [50, 101, 152]);
    for (const [i, letter] of letters.entries()) {
      const { message, reason } = poison[i]!;
      assert.equal(letter.headers['x-error-reason'], reason, `letter ${i}: reason`);
      assert.ok(letter.headers['x-error-message']!.startsWith(reason), letter.headers['x-error-message']);
      assert.equal(letter.headers['x-source-topic'], topic);
      assert.equal(letter.headers['x-source-partition'], '0');
      assert.equal(letter.key?.toString(), message.key, `letter ${i}: key`);
      assert.deepEqual(letter.value, message.value, `letter ${i}: the original bytes`);
    }
    assert.equal(sinks.runner.stats.deadLetters, poison.length);
    assert.equal((await deadLettered('batches')) - before, poison.length, 'dead letters are counted');
    assert.equal(sinks.runner.failure, undefined);
  });
});

/**
 * A flood of poison (a foreign writer, a schema id from another registry) fills one buffer with more
 * dead letters than the dead-letter topic takes in one record batch. The sink sent a buffer's dead
 * letters in one request: the broker refused it (MESSAGE_TOO_LARGE) at every retry, and the sink
 * stalled there for good, its lag growing. They now go out in requests that fit, and a dead letter over
 * what the topic takes keeps a cut of its bytes.
 */
describe('sinks: more dead letters in one buffer than one request takes', { timeout: 240_000 }, () => {
  const prefix = uniqueName('itdf');
  let config: Config;
  let sinks: RunningSinks | undefined;

  before(async () => {
    // One buffer holds the whole flood: the sink starts after it is written, and seals at 5 s.
    config = testConfig(prefix, {
      kafka: { maxMessageBytes: 200_000 },
      sinks: { flushRows: 50_000, flushMs: 5_000, group: `${prefix}-sink` },
    });
    await makePipelineTopics(config, ['batches']);
  });
  after(async () => {
    await sinks?.stop().catch(() => undefined);
    if (config) await cleanUp(config);
  });

  test('every poison message is dead-lettered exactly once, in order, and the offsets move on', async () => {
    const topic = resourceTopic(config, 'batches');
    // 2,000 of 500 bytes: 1 MB of values, five times what one request to the dead-letter topic takes.
    const flood = Array.from({ length: 2_000 }, (_, i) => ({
      key: `flood-${i}`,
      value: Buffer.from(`{"not": "avro", "i": ${String(i).padStart(6, '0')}}`.padEnd(500, ' ')),
      partition: 0,
    }));
    // One over what the topic takes on its own (a foreign writer's; ours never publish one).
    const huge = { key: 'huge', value: Buffer.alloc(250_000, 0x7b), partition: 0 };
    for (let i = 0; i < flood.length; i += 250) await produce(config, topic, flood.slice(i, i + 250));
    await produce(config, topic, [huge]);

    sinks = await startSinks(config, quietLogger, { resources: ['batches'] });
    await waitCommitted(config, config.sinks.group, [topic], 120_000, () => {
      if (sinks!.runner.failure) throw sinks!.runner.failure;
    });

    const letters = await readAll(config, sinkDlqTopic(config, 'batches'));
    assert.equal(letters.length, flood.length + 1, 'each poison message once');
    assert.deepEqual(
      letters.map((l) => Number(l.headers['x-source-offset'])),
      Array.from({ length: flood.length + 1 }, (_, i) => i),
      'in source order, none twice',
    );
    for (const [i, message] of flood.entries()) {
      assert.equal(letters[i]!.key?.toString(), message.key);
      assert.deepEqual(letters[i]!.value, message.value, `letter ${i}: the original bytes`);
      assert.equal(letters[i]!.headers['x-error-reason'], 'not-wire-format');
    }
    const last = letters.at(-1)!;
    assert.equal(last.key?.toString(), 'huge');
    assert.equal(last.headers['x-value-bytes'], String(huge.value.length), 'the size it had');
    // The topic takes 200,000 + 64 KiB (core/topics.ts); requests are kept to nine tenths of it.
    assert.ok(last.value && last.value.length < 0.9 * 265_536, `cut to fit: ${last.value?.length}`);
    assert.deepEqual(last.value, huge.value.subarray(0, last.value.length), 'a prefix of its bytes');
    assert.equal(sinks.runner.stats.deadLetters, flood.length + 1);
  });
});
