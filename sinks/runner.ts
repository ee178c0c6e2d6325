import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Admin, Consumer, ConsumerConfig, Kafka, Producer } from 'kafkajs';
import { isKafkaAuthError } from '../core/kafka.ts';
import type { Logger } from '../core/log.ts';
import { failpoint } from '../core/failpoints.ts';
import { metrics } from '../core/metrics.ts';
import { redact } from '../core/secrets.ts';
import type { WireDecoder } from './decoder.ts';
import { FatalSinkError } from './errors.ts';
import type { ServerFeatures } from './schema/features.ts';
import type { InsertShape, SinkTarget } from './ports.ts';
import { quoteIdentifier } from './schema/sql.ts';
import { SinkCore } from './sink-core.ts';

export { FatalSinkError, UnmappableSchemaError } from './errors.ts';
export type { RecordCoordinates, SinkTarget } from './ports.ts';

export interface SinkRunnerOptions {
  kafka: Kafka;
  clickhouse: ClickHouseClient;
  decoder: WireDecoder;
  targets: SinkTarget[];
  groupId: string;
  flushRows: number;
  flushMs: number;
  flushBytes: number;
  retryMaxMs: number;
  /** `max.message.bytes` of each dead-letter topic (topicMessageLimits), which their requests must fit. */
  deadLetterLimits?: ReadonlyMap<string, number>;
  /** The group's timeouts (groupTimeouts(config)): how long a killed member holds its partitions. */
  groupTimeouts: Pick<ConsumerConfig, 'sessionTimeout' | 'heartbeatInterval' | 'rebalanceTimeout'>;
  /** What the ClickHouse server takes (dedup tokens, async_insert). */
  features: ServerFeatures;
  fromBeginning: boolean;
  logger: Logger;
  /** Called when the sink must stop (an incompatible schema, a permanent insert error). */
  onFatal?: (err: Error) => void;
}

/**
 * INSERT … FORMAT JSONEachRow (or RowBinary, with its column list) of rows already encoded
 * (BatchBuffer.encoded), streamed as they are. (The client's insert() would map every row to a string,
 * join them, and copy the result into a buffer: twice as slow, and two more copies of the batch in
 * memory.)
 */
export async function insertEncoded(
  clickhouse: ClickHouseClient,
  table: string,
  body: readonly Buffer[],
  settings?: Record<string, string>,
  shape: InsertShape = { format: 'JSONEachRow' },
): Promise<void> {
  const columns = shape.columns ? ` (${shape.columns.map(quoteIdentifier).join(', ')})` : '';
  const result = await clickhouse.exec({
    query: `INSERT INTO ${table}${columns} FORMAT ${shape.format}`,
    values: Readable.from(body, { objectMode: false }),
    ...(settings ? { clickhouse_settings: settings } : {}),
  });
  // The (empty) response must be read for the connection to return to the pool.
  await finished(result.stream.resume());
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The thin kafkajs adapter around SinkCore: it runs the consumer group member, hands each batch to the
 * core, tells it about new assignments and marker-only batches, commits and pauses on its behalf, and
 * drives its timer. Everything about buffers and offsets is the core's.
 */
export class SinkRunner {
  private consumer: Consumer | undefined;
  private dlqProducer: Producer | undefined;
  /** Reads the group's committed offsets with their metadata (flush intents). */
  private admin: Admin | undefined;
  private readonly core: SinkCore;
  private readonly topics: string[];
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Consumers started again since one last joined the group: the pause before the next grows with it. */
  private restarts = 0;
  /** Per "topic:partition", the high-water mark of the last fetch: the lag metric's reference. */
  private readonly highWatermarks = new Map<string, number>();

  constructor(private readonly o: SinkRunnerOptions) {
    this.topics = o.targets.map((t) => t.topic);
    this.core = new SinkCore({
      targets: o.targets,
      decoder: o.decoder,
      consumer: {
        commit: async (offsets) => {
          if (!this.consumer) throw new Error('no consumer');
          await this.consumer.commitOffsets(offsets);
        },
        committed: async (topic) => {
          if (!this.admin) throw new Error('no admin client');
          const [entry] = await this.admin.fetchOffsets({ groupId: o.groupId, topics: [topic] });
          return (entry?.partitions ?? []).map((p) => ({
            partition: p.partition,
            offset: Number(p.offset),
            metadata: p.metadata,
          }));
        },
        pause: (topics) => this.consumer?.pause(topics.map((topic) => ({ topic }))),
        resume: (topics) => this.consumer?.resume(topics.map((topic) => ({ topic }))),
      },
      writer: {
        insert: async (table, body, settings, shape) => {
          await insertEncoded(o.clickhouse, table, body, settings, shape);
          // The insert has landed and its offsets are not committed yet.
          failpoint('sink.after-insert');
        },
      },
      deadLetters: {
        send: async (topic, messages) => {
          await this.dlqProducer!.send({ topic, messages, acks: -1 });
        },
      },
      ...(o.deadLetterLimits ? { deadLetterLimits: o.deadLetterLimits } : {}),
      flushRows: o.flushRows,
      flushBytes: o.flushBytes,
      flushMs: o.flushMs,
      retryMaxMs: o.retryMaxMs,
      features: o.features,
      logger: o.logger,
      ...(o.onFatal ? { onFatal: o.onFatal } : {}),
    });
  }

  get failure(): Error | undefined {
    return this.core.failure;
  }

  get stats(): SinkCore['stats'] {
    return this.core.stats;
  }

  /** Per "topic:partition", the offset after the last one consumed in the current assignment. */
  get consumed(): Map<string, number> {
    return this.core.consumed;
  }

  /**
   * Connects the dead-letter producer, the admin and the consumer, and starts consuming. A start that
   * fails half way (Kafka going away between the start-up probe and these connections) leaves nothing
   * connected, so that it can be tried again.
   */
  async start(): Promise<void> {
    try {
      this.dlqProducer = this.o.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      });
      await this.dlqProducer.connect();
      this.admin = this.o.kafka.admin();
      await this.admin.connect();
      await this.startConsumer();
    } catch (err) {
      const consumer = this.consumer;
      this.consumer = undefined;
      await consumer?.disconnect().catch(() => undefined);
      await this.dlqProducer?.disconnect().catch(() => undefined);
      await this.admin?.disconnect().catch(() => undefined);
      this.dlqProducer = undefined;
      this.admin = undefined;
      throw err;
    }
    this.timer = setInterval(
      () => {
        this.core.tick();
        this.reportLag();
      },
      Math.min(250, this.o.flushMs),
    );
  }

  /** instabase_sink_consumer_lag per topic: high-water marks minus committed positions. */
  private reportLag(): void {
    const committed = this.core.committed;
    const lag = new Map<string, number>(this.topics.map((t) => [t, 0]));
    for (const [tp, high] of this.highWatermarks) {
      const topic = tp.slice(0, tp.lastIndexOf(':'));
      const position = committed.get(tp);
      if (position !== undefined) lag.set(topic, (lag.get(topic) ?? 0) + Math.max(0, high - position));
    }
    for (const [topic, n] of lag) metrics.sinkLag.set({ topic }, n);
  }

  private async startConsumer(): Promise<void> {
    const consumer = this.o.kafka.consumer({
      groupId: this.o.groupId,
      allowAutoTopicCreation: false,
      readUncommitted: false,
      ...this.o.groupTimeouts,
      maxBytes: 16 * 1024 * 1024,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.restarts = 0;
      this.core.assigned(
        new Map(
          Object.entries(payload.memberAssignment).map(([topic, partitions]) => [topic, new Set(partitions)]),
        ),
      );
    });
    // kafkajs hands batches with records to eachBatch; a batch left with only transaction markers or
    // aborted records never reaches it, and is seen here (batchSize 0) so that its offsets can be
    // committed: otherwise a caught-up group would show lag forever.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      this.highWatermarks.set(`${payload.topic}:${payload.partition}`, Number(payload.highWatermark));
      if (payload.batchSize === 0)
        this.core.passed(
          payload.topic,
          payload.partition,
          Number(payload.firstOffset ?? payload.lastOffset),
          Number(payload.lastOffset) + 1,
        );
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      const { error, restart } = payload as { error: Error; restart: boolean };
      if (restart || this.stopping || consumer !== this.consumer) return;
      if (isKafkaAuthError(error)) {
        this.o.onFatal?.(
          new FatalSinkError(`Kafka refused the sink: ${redact(error.message)}`, { cause: error }),
        );
        return;
      }
      // kafkajs gives up on errors it deems not retriable; a sink must outlive any broker outage.
      this.o.logger.warn({ err: redact(String(error)) }, 'Kafka consumer stopped; starting a new one');
      void this.restartConsumer();
    });
    await consumer.connect();
    await consumer.subscribe({ topics: this.topics, fromBeginning: this.o.fromBeginning });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        this.highWatermarks.set(`${batch.topic}:${batch.partition}`, Number(batch.highWatermark));
        return this.core.handleBatch(
          {
            topic: batch.topic,
            partition: batch.partition,
            messages: batch.messages,
            lastOffset: batch.lastOffset(),
          },
          { resolve: resolveOffset, heartbeat, isCurrent: () => isRunning() && !isStale() },
        );
      },
    });
  }

  private async restartConsumer(): Promise<void> {
    while (!this.stopping) {
      await this.consumer?.disconnect().catch(() => undefined);
      this.core.assigned();
      // kafkajs reports a failed join as a crash after run() has resolved, so a consumer that "started"
      // may be given up on at once: the pause grows until one joins, not until one starts.
      const delayMs = Math.min(this.o.retryMaxMs, 1_000 * 2 ** Math.min(this.restarts, 5));
      this.restarts += 1;
      await sleep(delayMs);
      if (this.stopping) return;
      try {
        await this.startConsumer();
        return;
      } catch (err) {
        this.o.logger.warn({ err: redact(String(err)), delayMs }, 'Kafka unreachable; retrying');
      }
    }
  }

  /** Writes every buffer and commits. */
  flush(): Promise<void> {
    return this.core.flush();
  }

  /** Whether every partition in `targets` ("topic:partition" → offset) is consumed, written and committed. */
  caughtUp(targets: ReadonlyMap<string, number>): Promise<boolean> {
    return this.core.caughtUp(targets);
  }

  /** Writes what it can within the bound, commits, and leaves the group. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.core
      .stop(timeoutMs)
      .catch((err) => this.o.logger.warn({ err }, 'final flush failed; its offsets stay uncommitted'));
    await this.consumer?.disconnect().catch(() => undefined);
    await this.dlqProducer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
  }
}
