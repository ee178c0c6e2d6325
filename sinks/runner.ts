import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import type avro from 'avsc';
import type { Logger } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import { redact } from '../core/secrets.ts';
import { BatchBuffer } from './batch-buffer.ts';
import { isPermanentClickHouseError } from './clickhouse-errors.ts';
import { DecodeError, type WireDecoder } from './decoder.ts';

export interface RecordCoordinates {
  topic: string;
  partition: number;
  offset: number;
}

/** One topic's sink: how its records become rows, and how its tables follow its schemas. */
export interface SinkTarget {
  resource: string;
  topic: string;
  dlqTopic: string;
  /**
   * Called before the first record of each writer schema: creates tables, adds new columns, or throws:
   * FatalSinkError stops the sink, UnmappableSchemaError dead-letters the record, and anything else
   * (ClickHouse unreachable) is retried with backoff until it succeeds.
   */
  prepare(schemaId: number, type: avro.Type): Promise<void>;
  /** Appends the record's rows to the buffer's tables; throwing dead-letters the message. */
  append(
    record: Record<string, unknown>,
    schemaId: number,
    coords: RecordCoordinates,
    buffer: BatchBuffer,
  ): void;
}

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
  /** Whether the server takes insert_deduplication_token (ClickHouse ≥ 22.2). */
  dedupTokens: boolean;
  fromBeginning: boolean;
  logger: Logger;
  /** Called when the sink must stop (an incompatible schema, a permanent insert error). */
  onFatal?: (err: Error) => void;
}

export class FatalSinkError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'FatalSinkError';
  }
}

/** A writer schema the target cannot turn into tables; records written with it are dead-lettered. */
export class UnmappableSchemaError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'UnmappableSchemaError';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * INSERT … FORMAT JSONEachRow of rows already encoded as lines (BatchBuffer.encoded), streamed as
 * they are. Encoding at append time lets each row object die young instead of surviving in the heap
 * until the flush; sending the lines as they are keeps the flush itself cheap. (The client's insert()
 * would map every row to a string, join them, and copy the result into a buffer: twice as slow, and
 * two more copies of the batch in memory.)
 */
export async function insertEncoded(
  clickhouse: ClickHouseClient,
  table: string,
  body: readonly Buffer[],
  settings?: Record<string, string>,
): Promise<void> {
  const result = await clickhouse.exec({
    query: `INSERT INTO ${table} FORMAT JSONEachRow`,
    values: Readable.from(body, { objectMode: false }),
    ...(settings ? { clickhouse_settings: settings } : {}),
  });
  // The (empty) response must be read for the connection to return to the pool.
  await finished(result.stream.resume());
}

/**
 * Kafka → ClickHouse with offsets committed only after the rows they cover have landed. Records are
 * decoded and buffered per topic; a buffer is flushed at flushRows, flushBytes or flushMs, whichever
 * comes first. A full buffer is written while the next one fills, and a second full buffer waits for
 * that write, which bounds memory to two buffers; the topic is paused while a write fails. ClickHouse
 * outages are retried with capped backoff for as long as it takes, heart-beating so the group keeps
 * the partitions. A rebalance drops unflushed rows: kafkajs re-reads every assigned partition from
 * its committed offset after a rebalance, so they come back.
 */
export class SinkRunner {
  private consumer: Consumer | undefined;
  private dlqProducer: Producer | undefined;
  private readonly byTopic: Map<string, SinkTarget>;
  private readonly buffers = new Map<string, BatchBuffer>();
  private readonly prepared = new Set<string>();
  private flushing: Promise<void> = Promise.resolve();
  /** The last full buffer's write, which runs while the next buffer fills. */
  private writing: Promise<void> = Promise.resolve();
  /** Per topic, full buffers taken out of `buffers` and not written yet. */
  private readonly unflushed = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Wakes the backoff sleeps of failed flushes, so that a shutdown does not wait out a long backoff. */
  private readonly wakers = new Set<() => void>();
  private fatal: Error | undefined;
  /** A flush that failed during stop(): its rows are gone, so no later flush may commit. */
  private abandoned: Error | undefined;
  private generation = 0;
  private lastFlushAt = Date.now();
  /** Per "topic:partition", the offset after the last one the consumer has processed (markers included). */
  readonly consumed = new Map<string, number>();
  /** Per "topic:partition", the offset last committed by this member. */
  private readonly committed = new Map<string, number>();
  readonly stats = { rows: 0, deadLetters: 0, flushes: 0 };

  constructor(private readonly o: SinkRunnerOptions) {
    this.byTopic = new Map(o.targets.map((t) => [t.topic, t]));
  }

  get failure(): Error | undefined {
    return this.fatal;
  }

  async start(): Promise<void> {
    const { kafka, groupId } = this.o;
    this.dlqProducer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
    await this.dlqProducer.connect();
    this.consumer = kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      readUncommitted: false,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      maxBytes: 16 * 1024 * 1024,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
      this.generation += 1;
      this.buffers.clear();
      this.consumed.clear();
      this.committed.clear();
    });
    this.consumer.on(this.consumer.events.CRASH, (event) => {
      const err = (event.payload as { error?: Error }).error;
      if (err && !(event.payload as { restart?: boolean }).restart) this.fail(err);
    });
    // Batches with records are tracked by eachBatch once fully processed; this listener only sees
    // those kafkajs never hands over (markers only), which must not be trusted for anything else:
    // it also fires for a batch that eachBatch left half way at shutdown.
    this.consumer.on(this.consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.batchSize === 0)
        this.consumed.set(`${payload.topic}:${payload.partition}`, Number(payload.lastOffset) + 1);
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.byTopic.keys()], fromBeginning: this.o.fromBeginning });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.eachBatch(payload),
    });
    this.timer = setInterval(
      () => void this.flushDue().catch(() => undefined),
      Math.min(250, this.o.flushMs),
    );
  }

  private fail(err: Error): void {
    if (this.fatal) return;
    this.fatal = err;
    this.o.logger.error({ err }, 'sink stopped: offsets past the last successful flush are not committed');
    this.o.onFatal?.(err);
  }

  private bufferFor(topic: string): BatchBuffer {
    let buffer = this.buffers.get(topic);
    if (!buffer) {
      buffer = new BatchBuffer();
      this.buffers.set(topic, buffer);
    }
    return buffer;
  }

  private async eachBatch({
    batch,
    resolveOffset,
    heartbeat,
    isRunning,
    isStale,
  }: EachBatchPayload): Promise<void> {
    const target = this.byTopic.get(batch.topic);
    if (!target || this.fatal) return;
    const generation = this.generation;
    const current = () =>
      isRunning() && !isStale() && !this.fatal && !this.stopping && generation === this.generation;
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.fatal || generation !== this.generation) return;
      const fetching = this.o.decoder.prepare(message.value);
      if (fetching) await fetching;
      const offset = Number(message.offset);
      const coords = { topic: batch.topic, partition: batch.partition, offset };
      let decoded: ReturnType<WireDecoder['decode']> | undefined;
      let failure: Error | undefined;
      try {
        decoded = this.o.decoder.decode(message.value);
        const preparedKey = `${batch.topic}#${decoded.schemaId}`;
        if (!this.prepared.has(preparedKey)) {
          // Returning leaves the message unresolved: it is read again after the rebalance or restart.
          if (!(await this.prepareTarget(target, decoded.schemaId, decoded.type, heartbeat, current))) return;
          this.prepared.add(preparedKey);
        }
      } catch (err) {
        failure = err as Error;
      }
      // Taken only after the last await: a timed flush may have sent the previous buffer meanwhile,
      // and a record added to a buffer already sent would have its offset committed without it.
      const buffer = this.bufferFor(batch.topic);
      if (decoded && !failure) {
        try {
          target.append(decoded.record, decoded.schemaId, coords, buffer);
          buffer.encode();
          buffer.records += 1;
        } catch (err) {
          failure = err as Error;
        }
      }
      if (failure) {
        if (failure instanceof FatalSinkError) {
          this.fail(failure);
          return;
        }
        buffer.addDeadLetter(this.deadLetter(target, message, coords, failure));
      }
      buffer.cover(batch.partition, offset, (message.value?.length ?? 0) * 2 + 64);
      resolveOffset(message.offset);
      if (buffer.records >= this.o.flushRows || buffer.bytes >= this.o.flushBytes) {
        // The full buffer is written in the background while the next one fills, so reading and
        // inserting overlap; a second full buffer first waits for that write, which bounds memory to
        // two buffers. A failed flush has already stopped the sink; returning leaves its offsets
        // uncommitted.
        if (!(await this.settled(this.writing, heartbeat))) return;
        // While waiting, a timed flush may have taken this buffer already.
        if (this.buffers.get(batch.topic) === buffer) this.writing = this.flushFull(batch.topic, buffer);
      }
    }
    this.consumed.set(`${batch.topic}:${batch.partition}`, Number(batch.lastOffset()) + 1);
    await heartbeat();
  }

  /**
   * Brings the target's tables in line with a writer schema. A ClickHouse that cannot be reached is
   * not the record's fault: the call is retried with backoff, heart-beating, for as long as this
   * member still owns the batch. Resolves false when it no longer does.
   */
  private async prepareTarget(
    target: SinkTarget,
    schemaId: number,
    type: avro.Type,
    heartbeat: () => Promise<void>,
    current: () => boolean,
  ): Promise<boolean> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await target.prepare(schemaId, type);
        return true;
      } catch (err) {
        if (err instanceof FatalSinkError || err instanceof UnmappableSchemaError) throw err;
        if (!current()) return false;
        const delay =
          Math.min(this.o.retryMaxMs, 250 * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2);
        this.o.logger.warn(
          {
            resource: target.resource,
            schemaId,
            attempt,
            delayMs: Math.round(delay),
            err: redact(String(err)),
          },
          'creating or altering tables failed; retrying',
        );
        for (const until = Date.now() + delay; Date.now() < until && current();) {
          await sleep(Math.min(2_000, until - Date.now()));
          await heartbeat().catch(() => undefined);
        }
        if (!current()) return false;
      }
    }
  }

  private deadLetter(
    target: SinkTarget,
    message: KafkaMessage,
    coords: RecordCoordinates,
    err: Error,
  ): Message {
    const reason = err instanceof DecodeError ? err.reason : 'unmappable-record';
    this.o.logger.warn(
      { topic: coords.topic, partition: coords.partition, offset: coords.offset, reason },
      redact(err.message),
    );
    metrics.deadLettered.inc({ resource: target.resource, stage: 'sink' });
    this.stats.deadLetters += 1;
    return {
      key: message.key,
      value: message.value,
      headers: {
        'x-error-reason': reason,
        'x-error-message': redact(err.message).slice(0, 2_000),
        'x-source-topic': coords.topic,
        'x-source-partition': String(coords.partition),
        'x-source-offset': String(coords.offset),
      },
    };
  }

  /**
   * Waits for a flush, heart-beating so that a long ClickHouse outage keeps the partitions; false when
   * the flush failed.
   */
  private async settled(flush: Promise<void>, heartbeat: () => Promise<void>): Promise<boolean> {
    const done = flush.then(
      () => true,
      () => false,
    );
    let settled = false;
    void done.then(() => {
      settled = true;
    });
    while (!settled) {
      await Promise.race([done, sleep(2_000)]);
      if (!settled) await heartbeat().catch(() => undefined);
    }
    return done;
  }

  /**
   * Queues the write of one topic's full buffer behind the flushes already queued. The buffer leaves
   * `buffers` at once, so nothing is added to it once its insert may have begun; until it is written,
   * the topic counts as having unflushed records (commitPastMarkers).
   */
  private flushFull(topic: string, buffer: BatchBuffer): Promise<void> {
    this.buffers.delete(topic);
    this.unflushed.set(topic, (this.unflushed.get(topic) ?? 0) + 1);
    const generation = this.generation;
    return this.enqueue(async () => {
      try {
        this.lastFlushAt = Date.now();
        if (this.fatal || this.abandoned) return;
        await this.flushBuffer(this.byTopic.get(topic)!, buffer, generation);
      } finally {
        this.unflushed.set(topic, this.unflushed.get(topic)! - 1);
      }
      await this.commitPastMarkers();
    });
  }

  private async flushDue(): Promise<void> {
    if (Date.now() - this.lastFlushAt >= this.o.flushMs) await this.flush();
  }

  /** Flushes every topic's buffer; flushes are serialised so that commits move forward in order. */
  flush(): Promise<void> {
    return this.enqueue(() => this.flushAll());
  }

  private enqueue(run: () => Promise<void>): Promise<void> {
    this.flushing = this.flushing.then(() =>
      run().catch((err: Error) => {
        // A flush that still fails at shutdown (ClickHouse down) has dropped its rows, so nothing may be
        // committed after it. It is not reported as a sink failure, though: onFatal would make the CLI
        // signal itself again and die in the middle of its shutdown.
        if (this.stopping && !(err instanceof FatalSinkError)) this.abandoned = err;
        else this.fail(err);
        throw err;
      }),
    );
    // The chain itself must stay usable for the next flush after a failure.
    const current = this.flushing;
    this.flushing = current.catch(() => undefined);
    return current;
  }

  private async flushAll(): Promise<void> {
    this.lastFlushAt = Date.now();
    if (this.fatal || this.abandoned) return;
    for (const [topic, buffer] of [...this.buffers]) {
      if (buffer.isEmpty) continue;
      this.buffers.delete(topic);
      await this.flushBuffer(this.byTopic.get(topic)!, buffer, this.generation);
    }
    await this.commitPastMarkers();
  }

  /**
   * A transaction's commit marker takes an offset of its own after the last record. When everything
   * consumed from a topic is flushed, its consumed position is safe to commit, so that a caught-up
   * group shows no lag and a restart does not fetch the markers again.
   */
  private async commitPastMarkers(): Promise<void> {
    const offsets: Array<{ topic: string; partition: number; offset: string }> = [];
    for (const [tp, position] of this.consumed) {
      const [topic, partition] = [
        tp.slice(0, tp.lastIndexOf(':')),
        Number(tp.slice(tp.lastIndexOf(':') + 1)),
      ];
      if (!this.byTopic.has(topic) || !(this.buffers.get(topic)?.isEmpty ?? true)) continue;
      if (this.unflushed.get(topic)) continue;
      if ((this.committed.get(tp) ?? -1) >= position) continue;
      offsets.push({ topic, partition, offset: String(position) });
    }
    if (offsets.length === 0) return;
    try {
      await this.consumer!.commitOffsets(offsets);
      for (const o of offsets) this.committed.set(`${o.topic}:${o.partition}`, Number(o.offset));
    } catch (err) {
      this.o.logger.debug(
        { err },
        'commit of consumed positions refused (rebalance); the next flush retries',
      );
    }
  }

  private async flushBuffer(target: SinkTarget, buffer: BatchBuffer, generation: number): Promise<void> {
    const started = process.hrtime.bigint();
    const coverage = buffer.coverage();
    let paused = false;
    for (let attempt = 0; ; attempt += 1) {
      try {
        buffer.encode();
        for (const [table, encoded] of buffer.encoded) {
          if (encoded.rows === 0) continue;
          await insertEncoded(
            this.o.clickhouse,
            table,
            encoded.body(),
            this.o.dedupTokens
              ? {
                  insert_deduplication_token: createHash('sha1')
                    .update(`${table}|${target.topic}|${coverage}`)
                    .digest('hex'),
                }
              : undefined,
          );
          metrics.rowsInserted.inc({ table }, encoded.rows);
        }
        if (buffer.deadLetters.length) {
          await this.dlqProducer!.send({ topic: target.dlqTopic, messages: buffer.deadLetters, acks: -1 });
        }
        break;
      } catch (err) {
        metrics.sinkFlushErrors.inc({ resource: target.resource });
        if (isPermanentClickHouseError(err)) {
          throw new FatalSinkError(
            `insert into ${target.resource} tables failed permanently: ${redact(String((err as Error).message))}`,
            {
              cause: err,
            },
          );
        }
        if (this.stopping && attempt >= 2) throw err;
        if (!paused) {
          this.consumer?.pause([{ topic: target.topic }]);
          paused = true;
        }
        const delay =
          Math.min(this.o.retryMaxMs, 250 * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2);
        this.o.logger.warn(
          { resource: target.resource, attempt, delayMs: Math.round(delay), err: redact(String(err)) },
          'flush failed; retrying',
        );
        await this.backoff(delay);
      }
    }
    if (paused) this.consumer?.resume([{ topic: target.topic }]);
    // Rows from before a rebalance are in ClickHouse but their offsets may belong to another member now;
    // the table design absorbs the redelivery, and a failed commit here loses nothing.
    const offsets = [...buffer.ranges.values()].map((r) => ({
      topic: target.topic,
      partition: r.partition,
      offset: String(r.last + 1),
    }));
    try {
      await this.consumer!.commitOffsets(offsets);
      for (const o of offsets) this.committed.set(`${o.topic}:${o.partition}`, Number(o.offset));
    } catch (err) {
      if (generation === this.generation) throw err;
      this.o.logger.info(
        { resource: target.resource },
        'commit after a rebalance was refused; the new owner re-reads those offsets',
      );
    }
    this.stats.rows += buffer.records;
    this.stats.flushes += 1;
    metrics.sinkFlushDuration.observe(
      { resource: target.resource },
      Number(process.hrtime.bigint() - started) / 1e9,
    );
  }

  /** Sleeps `ms`, or less when stop() is called meanwhile. */
  private backoff(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  /** Whether every partition in `targets` ("topic:partition" → offset) is consumed, flushed and committed. */
  async caughtUp(targets: ReadonlyMap<string, number>): Promise<boolean> {
    for (const [tp, target] of targets) {
      if (target > 0 && (this.consumed.get(tp) ?? 0) < target) return false;
    }
    await this.flush();
    return [...this.buffers.values()].every((b) => b.isEmpty);
  }

  /** Flushes what it can within the bound, commits, and leaves the group. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    for (const wake of [...this.wakers]) wake();
    if (this.timer) clearInterval(this.timer);
    const bounded = Promise.race([
      (async () => {
        await this.consumer?.pause([...this.byTopic.keys()].map((topic) => ({ topic })));
        await this.flush().catch((err) =>
          this.o.logger.warn({ err }, 'final flush failed; its offsets stay uncommitted'),
        );
      })(),
      sleep(timeoutMs),
    ]);
    await bounded;
    await this.consumer?.disconnect().catch(() => undefined);
    await this.dlqProducer?.disconnect().catch(() => undefined);
  }
}
