/**
 * Schema evolution while the sink runs: a new version of the batches schema with an extra field (with
 * a default) becomes an ADD COLUMN without a restart, and rows of both versions land; a retyped field
 * stops the sink with a clear error and commits nothing past the record that needs it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../../core/config.ts';
import { createLogger } from '../../core/log.ts';
import { resourceTopic, valueSubject } from '../../core/topics.ts';
import { valueSchema, type AvroRecordSchema } from '../../schemas/index.ts';
import { startSinks, type RunningSinks } from '../../sinks/daemon.ts';
import { testConfig, uniqueName, waitFor } from '../helpers/pipeline.ts';
import {
  batchRecords,
  cleanUp,
  committedOffsets,
  encodeMessages,
  highWaterMarks,
  makeRecords,
  makePipelineTopics,
  produce,
  registerResource,
  scalar,
  select,
  setSubjectCompatibility,
  testClickHouse,
  waitCommitted,
} from '../helpers/sink-pipeline.ts';
import { SinkProcess, removeSinkProcesses } from '../helpers/sink-process.ts';

/** The sink logs the expected fatal error; the test checks it instead. */
const silent = createLogger('test', undefined, 'silent');

const v1 = valueSchema('batches');
const v2: AvroRecordSchema = {
  ...v1,
  fields: [...v1.fields, { name: 'priority', type: ['null', 'long'], default: null }],
};
/** workspace becomes a long: ClickHouse cannot follow that with ADD COLUMN. */
const retyped: AvroRecordSchema = {
  ...v2,
  fields: v2.fields.map((f) => (f.name === 'workspace' ? { ...f, type: ['null', 'long'] } : f)),
};

describe('sinks: schema evolution while running', { timeout: 180_000 }, () => {
  const prefix = uniqueName('ite');
  let config: Config;
  let ch: ClickHouseClient;
  let sinks: RunningSinks | undefined;
  let topic: string;
  let fatal: Error | undefined;

  before(async () => {
    config = testConfig(prefix, { sinks: { flushRows: 100, flushMs: 200, group: `${prefix}-sink` } });
    ch = testClickHouse(config);
    topic = resourceTopic(config, 'batches');
    await makePipelineTopics(config, ['batches', 'audit_logs']);
  });
  after(async () => {
    await removeSinkProcesses();
    await sinks?.stop().catch(() => undefined);
    await ch?.close();
    if (config) await cleanUp(config);
  });

  const db = () => `\`${config.clickhouse.database}\``;
  const failed = () => {
    if (sinks?.runner.failure) throw sinks.runner.failure;
  };

  test('a new field with a default becomes a column without downtime', async () => {
    const first = await registerResource(config, 'batches', v1);
    await produce(config, topic, encodeMessages(first, batchRecords(1, 100)));
    sinks = await startSinks(config, silent, {
      resources: ['batches'],
      onFatal: (err) => (fatal = err),
    });
    await waitCommitted(config, config.sinks.group, [topic], 60_000, failed);

    // A dashboard reads the current-state view all along: it must never find it missing.
    let reads = 0;
    const readErrors: string[] = [];
    let reading = true;
    const dashboard = (async () => {
      while (reading) {
        try {
          await scalar(ch, `SELECT count() AS n FROM ${db()}.batches_current`);
          reads += 1;
        } catch (err) {
          readErrors.push((err as Error).message.slice(0, 200));
        }
      }
    })();

    const second = await registerResource(config, 'batches', v2);
    assert.notEqual(second.id, first.id);
    // v2 records, then v1 records again (an older producer still running), all while the sink runs.
    await produce(
      config,
      topic,
      encodeMessages(
        second,
        batchRecords(101, 100, (n) => ({ priority: n % 10 === 0 ? null : n * 10 })),
      ),
    );
    await produce(config, topic, encodeMessages(first, batchRecords(201, 50)));
    await waitCommitted(config, config.sinks.group, [topic], 60_000, failed);
    reading = false;
    await dashboard;
    assert.deepEqual(readErrors, [], `the view stayed readable (${reads} reads)`);
    assert.ok(reads > 0);

    const columns = await select<{ name: string; type: string }>(
      ch,
      `SELECT name, type FROM system.columns WHERE database = '${config.clickhouse.database}' ` +
        `AND table = 'batches' AND name = 'priority'`,
    );
    assert.deepEqual(columns, [{ name: 'priority', type: 'Nullable(Int64)' }]);
    assert.equal(await scalar(ch, `SELECT count() AS n FROM ${db()}.batches_current`), 250);
    const rows = await select<{ id: string; priority: string | null }>(
      ch,
      `SELECT id, priority FROM ${db()}.batches_current WHERE id IN (1, 101, 110, 155, 201) ORDER BY id`,
    );
    assert.deepEqual(rows, [
      { id: '1', priority: null },
      { id: '101', priority: '1010' },
      { id: '110', priority: null },
      { id: '155', priority: '1550' },
      { id: '201', priority: null },
    ]);
    assert.equal(
      await scalar(ch, `SELECT count() AS n FROM ${db()}.batches_current WHERE priority IS NOT NULL`),
      90,
    );
    assert.equal(sinks.runner.failure, undefined);
    assert.equal(sinks.runner.stats.deadLetters, 0);
  });

  test('a retyped field stops the sink with a clear error and commits nothing past it', async () => {
    assert.ok(sinks, 'the sink from the previous test is running');
    const subject = valueSubject(topic);
    // The registry would refuse it under BACKWARD_TRANSITIVE; a careless producer gets it in anyway.
    await setSubjectCompatibility(config, subject, 'NONE');
    const current = await registerResource(config, 'batches', v2);
    const bad = await registerResource(config, 'batches', retyped);
    const before = await committedOffsets(config, config.sinks.group, topic);
    const high = await highWaterMarks(config, [topic]);
    const badOffset = high.get(`${topic}:0`)!;
    await produce(config, topic, [
      ...encodeMessages(
        bad,
        batchRecords(301, 1, () => ({ workspace: 42, priority: 1 })),
        { partition: 0 },
      ),
      ...encodeMessages(current, batchRecords(302, 20), { partition: 0 }),
    ]);
    await waitFor('the sink to stop', () => sinks!.runner.failure !== undefined, 60_000);
    const failure = sinks.runner.failure!;
    assert.equal(failure.name, 'FatalSinkError');
    assert.match(failure.message, /incompatible/);
    assert.match(failure.message, /workspace/);
    assert.match(failure.message, /Nullable\(String\).*Nullable\(Int64\)/);
    assert.equal(fatal, failure, 'onFatal was called with the error');

    await sinks.stop();
    sinks = undefined;
    const after = await committedOffsets(config, config.sinks.group, topic);
    assert.equal(after.get(0), badOffset, 'partition 0 is committed up to the bad record, not past it');
    assert.deepEqual(after, before, 'nothing committed after the stop');
    assert.equal(await scalar(ch, `SELECT count() AS n FROM ${db()}.batches WHERE id > 300`), 0);
    const workspace = await select<{ type: string }>(
      ch,
      `SELECT type FROM system.columns WHERE database = '${config.clickhouse.database}' ` +
        `AND table = 'batches' AND name = 'workspace'`,
    );
    assert.deepEqual(workspace, [{ type: 'Nullable(String)' }], 'the table is unchanged');
  });

  test('`instabase-stream sinks` restarted on it stops at the same record and exits 1', async () => {
    const before = await committedOffsets(config, config.sinks.group, topic);
    const sink = SinkProcess.start(config, ['--resources', 'batches'], 'retyped');
    const status = await sink.exited;
    assert.equal(status.code, 1, `exit code (log: ${sink.problems()})`);
    assert.match(sink.log(), /workspace is Nullable\(String\) but the schema now needs Nullable\(Int64\)/);
    assert.deepEqual(await committedOffsets(config, config.sinks.group, topic), before);
    assert.equal(await scalar(ch, `SELECT count() AS n FROM ${db()}.batches WHERE id > 300`), 0);
  });

  test('a permanent insert error stops the sink without crashing it and commits nothing', async () => {
    const schema = await registerResource(config, 'audit_logs');
    const auditTopic = resourceTopic(config, 'audit_logs');
    const group = `${prefix}-audit`;
    await produce(config, auditTopic, encodeMessages(schema, makeRecords('audit_logs', 1, 50)));
    let reported: Error | undefined;
    sinks = await startSinks({ ...config, sinks: { ...config.sinks, group } }, silent, {
      resources: ['audit_logs'],
      onFatal: (err) => (reported = err),
    });
    await waitCommitted(config, group, [auditTopic], 60_000, failed);
    const committed = await committedOffsets(config, group, auditTopic);
    // Someone drops the table under the running sink: every insert now fails with UNKNOWN_TABLE.
    await ch.command({ query: `DROP TABLE ${db()}.audit_logs` });
    await produce(config, auditTopic, encodeMessages(schema, makeRecords('audit_logs', 51, 300)));
    await waitFor('the sink to stop', () => sinks!.runner.failure !== undefined, 60_000);
    assert.equal(sinks.runner.failure!.name, 'FatalSinkError');
    assert.match(sinks.runner.failure!.message, /insert into audit_logs tables failed permanently/);
    assert.equal(reported, sinks.runner.failure);
    await sinks.stop();
    sinks = undefined;
    assert.deepEqual(await committedOffsets(config, group, auditTopic), committed, 'nothing committed');
  });
});
