import type { Config } from '../core/config.ts';
import { createKafka } from '../core/kafka.ts';
import { rootLogger } from '../core/log.ts';
import { RESOURCE_NAMES, type ResourceName } from '../core/resources.ts';
import { resourceTopic } from '../core/topics.ts';
import { startSinks } from '../sinks/daemon.ts';
import { Progress } from './progress.ts';
import { UsageError } from './usage-error.ts';

export interface ReplayOptions {
  resource: string;
  table?: string;
  database?: string;
  group?: string;
  from: string;
  follow: boolean;
}

type StartAt =
  | { kind: 'earliest' }
  | { kind: 'timestamp'; ms: number }
  | { kind: 'offsets'; offsets: Map<number, string> };

export function parseFrom(from: string): StartAt {
  if (from === 'earliest') return { kind: 'earliest' };
  if (/^\d+:\d+(,\d+:\d+)*$/.test(from)) {
    return {
      kind: 'offsets',
      offsets: new Map(
        from
          .split(',')
          .map((p) => p.split(':') as [string, string])
          .map(([p, o]) => [Number(p), o]),
      ),
    };
  }
  const ms = /^\d+$/.test(from) ? Number(from) : Date.parse(from);
  if (Number.isNaN(ms))
    throw new UsageError(
      `--from takes earliest, a timestamp (ISO or epoch ms) or partition:offset pairs, not "${from}"`,
    );
  return { kind: 'timestamp', ms };
}

/**
 * Reads a topic into a table (or a database) under a fresh consumer group, from the earliest offset,
 * a timestamp or given offsets. It stops once everything up to the high-water marks seen at start is
 * in ClickHouse, unless --follow keeps it running.
 */
export async function replayCommand(config: Config, options: ReplayOptions): Promise<void> {
  if (!(RESOURCE_NAMES as readonly string[]).includes(options.resource)) {
    throw new UsageError(`unknown resource "${options.resource}"; one of ${RESOURCE_NAMES.join(', ')}`);
  }
  const resource = options.resource as ResourceName;
  const table = options.table ?? resource;
  const database = options.database ?? config.clickhouse.database;
  if (table === resource && database === config.clickhouse.database && !options.group) {
    throw new UsageError(
      'replaying into the live table under a new group duplicates nothing visible but is rarely meant; pass --table, --database or --group',
    );
  }
  const topic = resourceTopic(config, resource);
  const groupId = options.group ?? `${config.sinks.group}-replay-${database}-${table}`;
  const startAt = parseFrom(options.from);
  const logger = rootLogger.child({ component: 'replay' });

  const kafka = createKafka(config, logger, 'replay');
  const admin = kafka.admin();
  await admin.connect();
  const high = await admin.fetchTopicOffsets(topic);
  // Where the group starts on each partition: the replay is done when every partition that starts
  // below its high-water mark has been read up to it. A partition that starts at its end yields no
  // batch at all, so waiting for one would never finish.
  const start = new Map(high.map((p) => [p.partition, Number(p.low)]));
  if (startAt.kind === 'earliest') {
    // A group that already has offsets (an interrupted replay run again) resumes from them.
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    for (const p of committed?.partitions ?? []) {
      const low = Number(high.find((h) => h.partition === p.partition)?.low ?? 0);
      if (Number(p.offset) >= 0) start.set(p.partition, Math.max(Number(p.offset), low));
    }
  } else {
    const offsets =
      startAt.kind === 'timestamp'
        ? (await admin.fetchTopicOffsetsByTimestamp(topic, startAt.ms)).map((p) => ({
            partition: p.partition,
            offset: p.offset,
          }))
        : [...startAt.offsets].map(([partition, offset]) => ({ partition, offset }));
    for (const { partition, offset } of offsets) {
      const p = high.find((h) => h.partition === partition);
      if (!p) throw new UsageError(`--from: ${topic} has no partition ${partition}`);
      if (Number(offset) > Number(p.high)) {
        throw new UsageError(
          `--from: offset ${offset} is past the end of ${topic} partition ${partition} (${p.high})`,
        );
      }
      start.set(partition, Math.max(Number(offset), Number(p.low)));
    }
    // Committed before the group's first member joins, so the consumer starts exactly there.
    await admin.setOffsets({ groupId, topic, partitions: offsets });
  }
  await admin.disconnect();
  const targets = new Map(
    high
      .filter((p) => start.get(p.partition)! < Number(p.high))
      .map((p) => [`${topic}:${p.partition}`, Number(p.high)]),
  );
  const startOf = new Map(
    [...targets.keys()].map((tp) => [tp, start.get(Number(tp.slice(tp.lastIndexOf(':') + 1)))!]),
  );

  const sinks = await startSinks(config, logger, {
    resources: [resource],
    groupId,
    database,
    tables: { [resource]: table },
    fromBeginning: true,
  });
  const total = [...targets].reduce((n, [tp, h]) => n + h - startOf.get(tp)!, 0);
  const progress = new Progress(`replay ${topic} → ${database}.${table}`, total);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    progress.done();
    await sinks.stop();
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(0)));
  process.once('SIGTERM', () => void stop().then(() => process.exit(0)));
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    if (sinks.runner.failure) {
      await stop();
      throw sinks.runner.failure;
    }
    const consumed = [...targets.keys()].reduce(
      (n, tp) => n + Math.max(0, (sinks.runner.consumed.get(tp) ?? 0) - startOf.get(tp)!),
      0,
    );
    progress.update(Math.min(consumed, total), sinks.runner.stats.rows);
    if (!options.follow && (await sinks.runner.caughtUp(targets))) break;
  }
  await stop();
  process.stderr.write(
    `replayed ${sinks.runner.stats.rows} records into ${database}.${table} (group ${groupId})\n`,
  );
}
