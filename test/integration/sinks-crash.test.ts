/**
 * `instabase-stream sinks` killed with SIGKILL in the middle of a topic, then started again: every
 * message is in ClickHouse at least once, the current-state view shows each entity once at its latest
 * version, and at the moment of the kill every committed offset was already covered by inserted rows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../../core/config.ts';
import { resourceTopic } from '../../core/topics.ts';
import { testConfig, uniqueName } from '../helpers/pipeline.ts';
import {
  batchRecords,
  cleanUp,
  committedOffsets,
  countRows,
  decodeValue,
  encodeMessages,
  makePipelineTopics,
  produce,
  readAll,
  registerResource,
  scalar,
  select,
  testClickHouse,
  waitCommitted,
} from '../helpers/sink-pipeline.ts';
import { SinkProcess, removeSinkProcesses } from '../helpers/sink-process.ts';

const IDS = 5_000;
const UPDATED = 1_000;
const MESSAGES = IDS + UPDATED;

describe('sinks: kill -9 mid-stream and restart', { timeout: 240_000 }, () => {
  const prefix = uniqueName('itk');
  let config: Config;
  let ch: ClickHouseClient;
  let topic: string;
  /** Per batch id, the partition and offsets of its messages, in order. */
  const messagesOf = new Map<number, { partition: number; offsets: number[] }>();

  before(async () => {
    config = testConfig(prefix, {
      sinks: { flushRows: 50, flushMs: 200, retryMaxMs: 2_000, group: `${prefix}-sink` },
    });
    ch = testClickHouse(config);
    topic = resourceTopic(config, 'batches');
    await makePipelineTopics(config, ['batches']);
    const schema = await registerResource(config, 'batches');
    await produce(config, topic, encodeMessages(schema, batchRecords(1, IDS)));
    // A newer version of the first entities, later in the same partitions.
    await produce(
      config,
      topic,
      encodeMessages(
        schema,
        batchRecords(1, UPDATED, (n) => ({ name: `batch-${n}-v2` })),
      ),
    );
    for (const m of await readAll(config, topic)) {
      const id = Number(decodeValue(schema, m.value).id);
      const entry = messagesOf.get(id) ?? { partition: m.partition, offsets: [] };
      entry.offsets.push(Number(m.offset));
      messagesOf.set(id, entry);
    }
    assert.equal(
      [...messagesOf.values()].reduce((n, e) => n + e.offsets.length, 0),
      MESSAGES,
    );
  });
  after(async () => {
    await removeSinkProcesses();
    await ch?.close();
    if (config) await cleanUp(config);
  });

  const db = () => `\`${config.clickhouse.database}\``;

  /** Per batch id, the highest _offset stored. Background merges may drop older versions of a key. */
  async function storedOffsets(): Promise<Map<number, number>> {
    const rows = await select<{ id: string; o: string }>(
      ch,
      `SELECT id, max(_offset) AS o FROM ${db()}.batches GROUP BY id`,
    );
    return new Map(rows.map((r) => [Number(r.id), Number(r.o)]));
  }

  test('no missing rows and no duplicates in the current-state view', async (t) => {
    const first = SinkProcess.start(config, ['--resources', 'batches'], 'first');
    // Polled tightly, so that the kill tends to fall right after an insert, before its commit.
    const deadline = Date.now() + 90_000;
    const database = config.clickhouse.database;
    while ((await countRows(ch, database, 'batches')) < 500) {
      first.assertRunning();
      assert.ok(Date.now() < deadline, 'rows landed within 90 s');
      await new Promise((r) => setTimeout(r, 5));
    }
    const status = await first.kill('SIGKILL');
    assert.equal(status.signal, 'SIGKILL');
    const landed = await countRows(ch, config.clickhouse.database, 'batches');
    assert.ok(landed > 0 && landed < MESSAGES, `killed part way (${landed} of ${MESSAGES} rows in)`);

    // Commits follow inserts: the message at every offset below a committed one is in the table, or a
    // newer version of its entity is.
    const committed = await committedOffsets(config, config.sinks.group, topic);
    const stored = await storedOffsets();
    let covered = 0;
    for (const [id, { partition, offsets }] of messagesOf) {
      const upTo = committed.get(partition) ?? -1;
      for (const offset of offsets) {
        if (offset >= upTo) continue;
        assert.ok(
          (stored.get(id) ?? -1) >= offset,
          `batch ${id} at ${partition}@${offset} is below the committed offset ${upTo} but not in ClickHouse`,
        );
        covered += 1;
      }
    }
    assert.ok(covered > 0, 'something was committed before the kill');

    const restartedAt = Date.now();
    const second = SinkProcess.start(config, ['--resources', 'batches'], 'second');
    // The killed member holds its partitions until its session times out (kafka.sessionTimeoutMs,
    // 10 s), then the new one reads from the committed offsets. Measured, not asserted: the time until
    // the new member's first commit.
    let recoveredAfterMs: number | undefined;
    while (recoveredAfterMs === undefined && Date.now() - restartedAt < 150_000) {
      second.assertRunning();
      const now = await committedOffsets(config, config.sinks.group, topic);
      if ([...now].some(([p, o]) => o > (committed.get(p) ?? -1)))
        recoveredAfterMs = Date.now() - restartedAt;
      else await new Promise((r) => setTimeout(r, 100));
    }
    await waitCommitted(config, config.sinks.group, [topic], 150_000, () => second.assertRunning());

    const raw = await scalar(ch, `SELECT count() AS n FROM ${db()}.batches`);
    const final = await storedOffsets();
    assert.equal(final.size, IDS, 'every entity is in the table');
    for (const [id, { offsets }] of messagesOf) {
      assert.equal(final.get(id), offsets.at(-1), `batch ${id}: its latest message is in the table`);
    }
    const current = await select<{ n: string; ids: string; v2: string }>(
      ch,
      `SELECT count() AS n, uniqExact(id) AS ids, countIf(name LIKE '%-v2') AS v2 FROM ${db()}.batches_current`,
    );
    assert.equal(Number(current[0]!.n), IDS, `no duplicates in batches_current (raw rows: ${raw})`);
    assert.equal(Number(current[0]!.ids), IDS);
    assert.equal(Number(current[0]!.v2), UPDATED, 'the latest version of each updated entity');

    t.diagnostic(
      `killed with ${landed} of ${MESSAGES} rows in, ${covered} committed; ${raw} raw rows at the end; ` +
        `the restarted sink committed again ${((recoveredAfterMs ?? NaN) / 1000).toFixed(1)} s after its start`,
    );
    // A SIGTERM stops it cleanly within the shutdown bound.
    const stopped = await second.kill('SIGTERM', 40_000);
    assert.equal(stopped.code, 0, `clean exit after SIGTERM: ${second.problems()}`);
  });
});
