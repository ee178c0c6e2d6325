import type { Config } from '../core/config.ts';
import { createClickHouse } from '../core/clickhouse.ts';
import { createKafka } from '../core/kafka.ts';
import { randomUUID } from 'node:crypto';
import { rootLogger } from '../core/log.ts';
import { RESOURCE_NAMES } from '../core/resources.ts';
import { redact } from '../core/secrets.ts';
import { producerDlqTopic, resourceTopic, sinkDlqTopic } from '../core/topics.ts';
import { quoteIdentifier } from '../sinks/schema/sql.ts';
import { rootOfShare } from '../producers/follow/shard.ts';

export interface ResourceStatus {
  resource: string;
  /** Sum of the partitions' offset spans: records plus transaction markers. */
  topicMessages: number | null;
  consumerLag: number | null;
  rows: number | null;
  currentRows: number | null;
  producerDeadLetters: number | null;
  sinkDeadLetters: number | null;
  freshnessSeconds: number | null;
  lastPoll: string | null;
}

async function topicSize(
  admin: ReturnType<ReturnType<typeof createKafka>['admin']>,
  topic: string,
  known: Set<string>,
) {
  if (!known.has(topic)) return null;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  } catch {
    return null;
  }
}

/**
 * Exact message counts. Offsets overcount topics written in transactions (each commit marker takes
 * one), so the dead-letter topics, which are small, are read instead: a throwaway consumer counts
 * until it has fetched past the end a few times with nothing new.
 */
async function countMessages(
  kafka: ReturnType<typeof createKafka>,
  topics: string[],
): Promise<Map<string, number>> {
  const counts = new Map(topics.map((t) => [t, 0]));
  if (topics.length === 0) return counts;
  const groupId = `${randomUUID()}-status-count`;
  const consumer = kafka.consumer({ groupId, readUncommitted: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    let fetches = 0;
    let last = Date.now();
    consumer.on(consumer.events.FETCH, () => void (fetches += 1));
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        counts.set(batch.topic, (counts.get(batch.topic) ?? 0) + batch.messages.length);
        fetches = 0;
        last = Date.now();
      },
    });
    const deadline = Date.now() + 30_000;
    while (!(fetches >= 3 && Date.now() - last > 1_000) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
  } finally {
    await consumer.disconnect();
  }
  return counts;
}

/** Per resource: Kafka, consumer group, ClickHouse and (when a daemon runs) the last poll. */
export async function collectStatus(config: Config): Promise<ResourceStatus[]> {
  const kafka = createKafka(config, rootLogger.child({ component: 'status' }), 'status');
  const admin = kafka.admin();
  await admin.connect();
  const clickhouse = createClickHouse(config);
  const db = quoteIdentifier(config.clickhouse.database);
  let jobs: Record<string, { lastSuccessAt: number | null }> = {};
  try {
    const res = await fetch(
      `http://${config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host}:${config.http.port}/healthz`,
      {
        signal: AbortSignal.timeout(1_000),
      },
    );
    const body = (await res.json()) as { components?: Array<{ component: string; jobs?: typeof jobs }> };
    jobs = body.components?.find((c) => c.component === 'producers')?.jobs ?? {};
  } catch {
    // No daemon on this host: the last poll is unknown, everything else still is.
  }
  const out: ResourceStatus[] = [];
  try {
    // Asking kafkajs about a topic that does not exist makes it retry for seconds; ask only about real ones.
    const known = new Set(await admin.listTopics());
    const dlqTopics = RESOURCE_NAMES.flatMap((r) => [producerDlqTopic(config, r), sinkDlqTopic(config, r)]);
    const nonEmpty: string[] = [];
    for (const topic of dlqTopics.filter((t) => known.has(t))) {
      if (((await topicSize(admin, topic, known)) ?? 0) > 0) nonEmpty.push(topic);
    }
    const deadLetters = await countMessages(kafka, nonEmpty);
    const dlqCount = (topic: string) => (known.has(topic) ? (deadLetters.get(topic) ?? 0) : null);
    const committed = new Map<string, number>();
    try {
      const groups = await admin.fetchOffsets({
        groupId: config.sinks.group,
        topics: RESOURCE_NAMES.map((r) => resourceTopic(config, r)),
      });
      for (const g of groups)
        committed.set(
          g.topic,
          g.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0),
        );
    } catch {
      // The group does not exist yet.
    }
    for (const resource of RESOURCE_NAMES) {
      const topic = resourceTopic(config, resource);
      let high: number | null = null;
      if (known.has(topic))
        high = (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
      const table = `${db}.${quoteIdentifier(resource)}`;
      const count = async (query: string): Promise<number | null> => {
        try {
          const rs = await clickhouse.query({ query, format: 'JSONEachRow' });
          const [row] = await rs.json<{ v: string | number | null }>();
          return row?.v == null ? null : Number(row.v);
        } catch {
          return null;
        }
      };
      const newest = await count(`SELECT toUInt64(max(_fetched_at)) AS v FROM ${table}`);
      // In a producers group a split root has one job per share (`runs.0`, `runs.1`): the resource was
      // last polled whole when the share polled longest ago last succeeded.
      const shares = Object.entries(jobs).filter(([name]) => rootOfShare(name) === resource);
      const lastPoll =
        shares.length === 0 || shares.some(([, j]) => !j.lastSuccessAt)
          ? undefined
          : Math.min(...shares.map(([, j]) => j.lastSuccessAt!));
      out.push({
        resource,
        topicMessages: await topicSize(admin, topic, known),
        // Transaction markers take offsets too, so a caught-up group may show a lag of one per partition.
        consumerLag: high === null ? null : Math.max(0, high - (committed.get(topic) ?? 0)),
        rows: await count(`SELECT count() AS v FROM ${table}`),
        currentRows: await count(`SELECT count() AS v FROM ${db}.${quoteIdentifier(`${resource}_current`)}`),
        producerDeadLetters: dlqCount(producerDlqTopic(config, resource)),
        sinkDeadLetters: dlqCount(sinkDlqTopic(config, resource)),
        freshnessSeconds: newest ? Math.max(0, Math.round((Date.now() - newest) / 1000)) : null,
        lastPoll: lastPoll ? new Date(lastPoll).toISOString() : null,
      });
    }
  } finally {
    await admin.disconnect();
    await clickhouse.close();
  }
  return out;
}

export function formatStatus(rows: ResourceStatus[]): string {
  const header = [
    'resource',
    'topic offsets',
    'lag',
    'rows',
    'current',
    'dlq(prod)',
    'dlq(sink)',
    'fresh(s)',
    'last poll',
  ];
  const cells = rows.map((r) => [
    r.resource,
    ...[
      r.topicMessages,
      r.consumerLag,
      r.rows,
      r.currentRows,
      r.producerDeadLetters,
      r.sinkDeadLetters,
      r.freshnessSeconds,
    ].map((v) => (v === null ? '-' : String(v))),
    r.lastPoll ?? '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join('  ');
  return redact([line(header), ...cells.map(line)].join('\n'));
}
