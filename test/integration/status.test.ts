/**
 * `instabase-stream status` against a pipeline that has run: its row counts agree with SELECT count()
 * on every table and current view, its dead-letter counts with the dead-letter topics, and a caught-up
 * sink group shows no lag.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { collectStatus, formatStatus } from '../../cli/status.ts';
import { RESOURCE_NAMES } from '../../core/resources.ts';
import { producerDlqTopic, resourceTopic } from '../../core/topics.ts';
import { startSinks } from '../../sinks/daemon.ts';
import type { Simulator } from '../../sim/index.ts';
import { quietLogger, readTopics, uniqueName, waitFor } from '../helpers/pipeline.ts';
import {
  countRows,
  highWaterMarks,
  pipelineConfig,
  produceOnce,
  SMALL_SCALE,
  startSim,
  testClickHouse,
} from '../helpers/sink-pipeline.ts';

let sim: Simulator | undefined;
after(async () => {
  await sim?.close();
});

test('status agrees with SELECT count() on every table, the dead-letter topics and the group offsets', async () => {
  sim = await startSim('status', SMALL_SCALE, 0.05);
  const config = pipelineConfig(uniqueName('itstatus'), sim);
  await produceOnce(config, sim);
  const sinks = await startSinks(config, quietLogger);
  const ch = testClickHouse(config);
  try {
    const topics = RESOURCE_NAMES.map((r) => resourceTopic(config, r));
    const high = await highWaterMarks(config, topics);
    await waitFor('the sinks to catch up', () => sinks.runner.caughtUp(high), 120_000);
    // One more flush cycle commits the positions past the last transaction markers.
    await new Promise((r) => setTimeout(r, 1_000));
    await sinks.runner.flush();
    const status = await collectStatus(config);
    const dead = await readTopics(
      config,
      RESOURCE_NAMES.map((r) => producerDlqTopic(config, r)),
    );
    const db = config.clickhouse.database;
    for (const row of status) {
      assert.equal(row.rows, await countRows(ch, db, row.resource), `${row.resource}: rows`);
      assert.equal(
        row.currentRows,
        await countRows(ch, db, `${row.resource}_current`),
        `${row.resource}: current rows`,
      );
      assert.equal(
        row.producerDeadLetters,
        dead.get(producerDlqTopic(config, row.resource))!.length,
        `${row.resource}: dead letters`,
      );
      assert.equal(row.sinkDeadLetters, 0, `${row.resource}: sink dead letters`);
      assert.equal(row.consumerLag, 0, `${row.resource}: lag`);
      assert.ok((row.rows ?? 0) > 0, `${row.resource}: has rows\n${formatStatus(status)}`);
    }
    assert.match(formatStatus(status), /^resource\s+topic offsets\s+lag\s+rows/);
  } finally {
    await sinks.stop();
    await ch.command({ query: `DROP DATABASE IF EXISTS ${config.clickhouse.database}` });
    await ch.close();
  }
});
