/**
 * ClickHouse goes away for 30 s while records keep arriving: the sink keeps running, commits nothing
 * while ClickHouse is gone, stops consuming (its partitions are paused while the flush is retried),
 * and once ClickHouse is back catches up with nothing lost. Runs against a private ClickHouse server:
 * the shared one must never be stopped.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Consumer, Producer } from 'kafkajs';
import type { Config } from '../../core/config.ts';
import { metrics } from '../../core/metrics.ts';
import { resourceTopic } from '../../core/topics.ts';
import { startSinks, type RunningSinks } from '../../sinks/daemon.ts';
import { quietLogger, testConfig, uniqueName, waitFor } from '../helpers/pipeline.ts';
import { PrivateClickHouse } from '../helpers/sink-clickhouse.ts';
import { SinkProcess, removeSinkProcesses } from '../helpers/sink-process.ts';
import {
  cleanUp,
  committedOffsets,
  countRows,
  encodeMessages,
  makeRecords,
  makePipelineTopics,
  plainKafka,
  registerResource,
  scalar,
  testClickHouse,
  waitCommitted,
  type RegisteredSchema,
} from '../helpers/sink-pipeline.ts';

const OUTAGE_MS = 30_000;
const FLUSH_ROWS = 200;

async function flushErrors(resource: string): Promise<number> {
  const { values } = await metrics.sinkFlushErrors.get();
  return values.filter((v) => v.labels.resource === resource).reduce((n, v) => n + v.value, 0);
}

describe('sinks: ClickHouse down for 30 s mid-stream', { timeout: 240_000 }, () => {
  const prefix = uniqueName('ito');
  let server: PrivateClickHouse;
  let config: Config;
  let ch: ClickHouseClient;
  let producer: Producer;
  let sinks: RunningSinks | undefined;

  before(async () => {
    server = await PrivateClickHouse.create();
    await server.start();
    config = testConfig(
      prefix,
      { sinks: { flushRows: FLUSH_ROWS, flushMs: 200, retryMaxMs: 2_000, group: `${prefix}-sink` } },
      { CLICKHOUSE_URL: server.url },
    );
    ch = testClickHouse(config);
    await makePipelineTopics(config, ['batches', 'audit_logs']);
    producer = plainKafka(config).producer({ idempotent: true, allowAutoTopicCreation: false });
    await producer.connect();
  });
  after(async () => {
    await removeSinkProcesses();
    await sinks?.stop().catch(() => undefined);
    await producer?.disconnect().catch(() => undefined);
    await ch?.close();
    await server?.destroy();
    // The database lived on the private server; only Kafka needs cleaning.
    if (config) await cleanUp(config);
  });

  test('the sink pauses, retries, commits nothing, and catches up with nothing lost', async (t) => {
    const batches = await registerResource(config, 'batches');
    const audit = await registerResource(config, 'audit_logs');
    const batchTopic = resourceTopic(config, 'batches');
    const auditTopic = resourceTopic(config, 'audit_logs');
    let nextBatch = 1;
    let nextAudit = 1;
    const send = async (schema: RegisteredSchema, from: number, count: number) => {
      const records = makeRecords(schema.resource as 'batches' | 'audit_logs', from, count);
      await producer.send({
        topic: resourceTopic(config, schema.resource),
        messages: encodeMessages(schema, records),
        acks: -1,
      });
    };
    /** Produces batches steadily (and audit entries when asked) until stopped. */
    let auditToo = false;
    let producing = true;
    const background = (async () => {
      while (producing) {
        await send(batches, nextBatch, 50);
        nextBatch += 50;
        if (auditToo) {
          await send(audit, nextAudit, 20);
          nextAudit += 20;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    let fatal: Error | undefined;
    sinks = await startSinks(config, quietLogger, {
      resources: ['batches', 'audit_logs'],
      onFatal: (err) => (fatal = err),
    });
    const db = config.clickhouse.database;
    await waitFor(
      'rows before the outage',
      async () => (await countRows(ch, db, 'batches')) >= 1_000,
      60_000,
    );
    const errorsBefore = await flushErrors('batches');

    await server.stop('SIGKILL');
    const downAt = Date.now();
    // audit_logs gets its very first records while ClickHouse is down: its tables are created late.
    auditToo = true;
    // A flush that was already past its insert may still commit; after that, nothing moves.
    await new Promise((r) => setTimeout(r, 3_000));
    const committedEarly = await committedOffsets(config, config.sinks.group, batchTopic);
    const producedEarly = nextBatch;
    await new Promise((r) => setTimeout(r, OUTAGE_MS - (Date.now() - downAt)));
    assert.equal(sinks.runner.failure, undefined, 'the sink is still running');
    assert.equal(fatal, undefined);
    assert.deepEqual(
      await committedOffsets(config, config.sinks.group, batchTopic),
      committedEarly,
      'no offsets committed while ClickHouse is down',
    );
    assert.deepEqual(
      await committedOffsets(config, config.sinks.group, auditTopic),
      new Map([...Array(config.kafka.partitions).keys()].map((p) => [p, -1])),
      'nothing committed for the topic that started during the outage',
    );
    const producedDuring = nextBatch - producedEarly;
    assert.ok((await flushErrors('batches')) > errorsBefore, 'instabase_sink_flush_errors_total rose');
    // The runner's consumer is private; kafkajs reports what is paused.
    const consumer = (sinks.runner as unknown as { consumer: Consumer }).consumer;
    assert.ok(
      consumer.paused().some((p) => p.topic === batchTopic),
      'the topic is paused while its flush is retried',
    );

    await server.start();
    const upAt = Date.now();
    await new Promise((r) => setTimeout(r, 3_000));
    producing = false;
    await background;
    await waitCommitted(config, config.sinks.group, [batchTopic, auditTopic], 90_000, () => {
      if (sinks!.runner.failure) throw sinks!.runner.failure;
    });
    t.diagnostic(
      `down ${OUTAGE_MS} ms; ${producedDuring} batches produced meanwhile; ` +
        `caught up ${Date.now() - upAt} ms after ClickHouse returned`,
    );
    assert.equal(sinks.runner.failure, undefined);
    assert.equal(sinks.runner.stats.deadLetters, 0, 'nothing dead-lettered because of the outage');
    const q = (table: string) => `\`${db}\`.\`${table}\``;
    assert.equal(await scalar(ch, `SELECT uniqExact(id) AS n FROM ${q('batches')}`), nextBatch - 1);
    assert.equal(await scalar(ch, `SELECT count() AS n FROM ${q('batches_current')}`), nextBatch - 1);
    assert.equal(
      await scalar(ch, `SELECT uniqExact(_content_hash) AS n FROM ${q('audit_logs')}`),
      nextAudit - 1,
    );
    assert.equal(await scalar(ch, `SELECT count() AS n FROM ${q('audit_logs_current')}`), nextAudit - 1);
    assert.ok(nextAudit > 1);
    await sinks.stop();
    sinks = undefined;
  });

  test('SIGTERM while ClickHouse is down exits within the bound and commits nothing', async (t) => {
    const schema = await registerResource(config, 'batches');
    const topic = resourceTopic(config, 'batches');
    // The CLI with the default retry cap (30 s), so the backoff is long by the time the signal comes.
    const cli = { ...config, sinks: { ...config.sinks, group: `${prefix}-cli`, retryMaxMs: 30_000 } };
    await producer.send({ topic, messages: encodeMessages(schema, makeRecords('batches', 800_001, 200)) });
    const sink = SinkProcess.start(cli, ['--resources', 'batches'], 'sigterm');
    try {
      await waitCommitted(cli, cli.sinks.group, [topic], 90_000, () => sink.assertRunning());
      const committed = await committedOffsets(cli, cli.sinks.group, topic);
      await server.stop('SIGKILL');
      await producer.send({ topic, messages: encodeMessages(schema, makeRecords('batches', 900_001, 300)) });
      await new Promise((r) => setTimeout(r, 15_000));
      sink.assertRunning();
      const signalled = Date.now();
      const status = await sink.kill('SIGTERM', 60_000);
      const tookMs = Date.now() - signalled;
      t.diagnostic(`exited ${status.code ?? status.signal} ${tookMs} ms after SIGTERM`);
      assert.equal(status.code, 0, `a clean exit (${sink.problems()})`);
      assert.ok(tookMs < cli.sinks.shutdownTimeoutMs, `within the shutdown bound (${tookMs} ms)`);
      assert.deepEqual(await committedOffsets(cli, cli.sinks.group, topic), committed, 'nothing committed');
    } finally {
      await sink.kill('SIGKILL').catch(() => undefined);
      await server.start();
    }
    // The same group, started again once ClickHouse is back, reads what the stopped one left.
    sinks = await startSinks(cli, quietLogger, { resources: ['batches'] });
    await waitCommitted(cli, cli.sinks.group, [topic], 60_000);
    assert.equal(
      await scalar(
        ch,
        `SELECT uniqExact(id) AS n FROM \`${config.clickhouse.database}\`.batches WHERE id > 800000`,
      ),
      500,
      'nothing lost',
    );
  });
});
