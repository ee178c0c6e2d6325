/**
 * The end-of-run checks of a producers -> Kafka -> sinks run, shared by the runs that kill things: the
 * sink group's lag, the rows in the `_current` views, and what reached the dead-letter topics.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../../core/config.ts';
import { RESOURCE_NAMES } from '../../core/resources.ts';
import { producerDlqTopic, sinkDlqTopic } from '../../core/topics.ts';
import { readTopics, waitFor } from './pipeline.ts';
import { committedOffsets, highWaterMarks, plainKafka, scalar } from './sink-pipeline.ts';

/** The sink group has committed every non-empty partition of the topics up to its high-water mark. */
export async function lagIsZero(config: Config, topics: string[]): Promise<boolean> {
  try {
    const marks = await highWaterMarks(config, topics);
    for (const topic of topics) {
      const committed = await committedOffsets(config, config.sinks.group, topic);
      for (const [tp, high] of marks) {
        if (!tp.startsWith(`${topic}:`) || high === 0) continue;
        if (committed.get(Number(tp.slice(topic.length + 1))) !== high) return false;
      }
    }
    return true;
  } catch {
    // a broker that is down or electing answers with errors: not quiet yet
    return false;
  }
}

/**
 * Waits until the sink group has no lag on the topics and the `_current` views hold the same number of
 * rows over two checks 1.5 s apart: the pipeline is quiet and the views are final.
 */
export async function waitForQuiescence(
  config: Config,
  ch: ClickHouseClient,
  topics: string[],
): Promise<void> {
  const database = config.clickhouse.database;
  await waitFor('consumer lag 0 on every resource topic', () => lagIsZero(config, topics), 300_000);
  let last = -1;
  await waitFor(
    'counts to stay the same over two checks with lag 0',
    async () => {
      const now = await totalCurrentRows(ch, database).catch(() => -2);
      const stable = now >= 0 && now === last && (await lagIsZero(config, topics));
      last = now;
      if (!stable) await new Promise((r) => setTimeout(r, 1_500));
      return stable;
    },
    120_000,
  );
}

export const rawCountSql = (database: string, table: string) =>
  `SELECT count() AS n FROM \`${database}\`.\`${table}\``;

export async function totalCurrentRows(ch: ClickHouseClient, database: string): Promise<number> {
  let n = 0;
  for (const r of RESOURCE_NAMES) n += await scalar(ch, rawCountSql(database, `${r}_current`));
  return n;
}

/** Committed messages per dead-letter topic that exists (aborted transactions leave offsets, not messages). */
export async function deadLetterCounts(config: Config): Promise<Record<string, number>> {
  const admin = plainKafka(config).admin();
  await admin.connect();
  let existing: Set<string>;
  try {
    existing = new Set(await admin.listTopics());
  } finally {
    await admin.disconnect();
  }
  const topics = RESOURCE_NAMES.flatMap((r) => [producerDlqTopic(config, r), sinkDlqTopic(config, r)]).filter(
    (t) => existing.has(t),
  );
  const read = await readTopics(config, topics);
  return Object.fromEntries(topics.map((t) => [t, read.get(t)!.length]));
}
