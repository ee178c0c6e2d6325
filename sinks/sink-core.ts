import { createHash } from 'node:crypto';
import type { Message } from 'kafkajs';
import type { Logger } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import { redact } from '../core/secrets.ts';
import { BatchBuffer } from './batch-buffer.ts';
import { isPermanentClickHouseError } from './clickhouse-errors.ts';
import { deadLetterRequests, fitDeadLetter, requestBudget } from './dead-letter-requests.ts';
import { DecodeError, type Peeked } from './decoder.ts';
import { FatalSinkError, UnmappableSchemaError } from './errors.ts';
import { RebuildingBuffer, encodeIntent, intentsToRebuild } from './flush-intent.ts';
import { FlushQueue, type SealedBuffer } from './flush-queue.ts';
import { OffsetTracker, type TopicPartitionOffset } from './offset-tracker.ts';
import { insertSettings, type ServerFeatures } from './schema/features.ts';
import type {
  BatchSession,
  ConsumerPort,
  DeadLetterWriter,
  IncomingBatch,
  IncomingMessage,
  RecordCoordinates,
  RecordDecoder,
  RowWriter,
  SinkTarget,
} from './ports.ts';

export interface SinkCoreOptions {
  targets: readonly SinkTarget[];
  decoder: RecordDecoder;
  consumer: ConsumerPort;
  writer: RowWriter;
  deadLetters: DeadLetterWriter;
  /**
   * `max.message.bytes` of each dead-letter topic, which a request of its dead letters must fit; a
   * topic absent here is taken to take Kafka's default.
   */
  deadLetterLimits?: ReadonlyMap<string, number>;
  flushRows: number;
  flushBytes: number;
  flushMs: number;
  retryMaxMs: number;
  /** What the server takes with an insert: a deduplication token (≥ 22.2), async_insert=0 (≥ 21.11). */
  features: ServerFeatures;
  logger: Logger;
  /** Called once when the sink must stop (an incompatible schema, a permanent insert error). */
  onFatal?: (err: Error) => void;
  /** Clock and sleep, replaceable by the model tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * While this many sealed buffers wait or are being written, reading stops until one lands: memory stays
 * bounded by the open buffers plus two sealed ones while ClickHouse is slow or down.
 */
const MAX_QUEUED = 2;
/** Kafka's default `max.message.bytes`, for a dead-letter topic whose own was not read. */
const KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
/** How often a wait heart-beats so that the group keeps the member through a long outage. */
const HEARTBEAT_EVERY_MS = 1_000;

interface OpenBuffer {
  id: number;
  buffer: BatchBuffer;
}

/** A flush intent committed before the buffer's insert (flush-intent.ts). */
interface Announcement {
  offsets: TopicPartitionOffset[];
  /** Whether a commit carrying it has succeeded. */
  sent: boolean;
}

/**
 * The sink's record path, one way: decode → map → buffer → write → commit. Each piece of state has one
 * owner: the open buffers belong to this class and are only touched synchronously (after the last
 * await of a message), a sealed buffer belongs to the flush queue, and which offsets may be committed
 * is the offset tracker's alone. Sealing is synchronous, so a buffer is handed over exactly once, and a
 * commit never passes an offset whose rows are not durable.
 */
export class SinkCore {
  private readonly byTopic: Map<string, SinkTarget>;
  private readonly open = new Map<string, OpenBuffer>();
  /**
   * Per topic, the buffers a previous member announced and this one gathers again (flush-intent.ts);
   * each over partitions of its own.
   */
  private readonly rebuilding = new Map<string, RebuildingBuffer[]>();
  /** Per topic, the read of the group's committed offsets that decides whether to rebuild one. */
  private readonly intentReads = new Map<string, Promise<void>>();
  /** Per sealed buffer id, the intent committed (or being committed) before its insert. */
  private readonly announced = new Map<number, Announcement>();
  /** Per topic, the partitions this member was assigned; undefined until the group says. */
  private assignment: ReadonlyMap<string, ReadonlySet<number>> | undefined;
  private readonly tracker = new OffsetTracker();
  private readonly queue: FlushQueue;
  /** Per topic, the schema ids whose tables are prepared (looked up per message: no key string is built). */
  private readonly prepared = new Map<string, Set<number>>();
  private readonly wakers = new Set<() => void>();
  private readonly now: () => number;
  private nextBufferId = 1;
  /** Bumped by every new assignment; a batch of an older one stops at its next step. */
  private generation = 0;
  private fatal: Error | undefined;
  private stopping = false;
  private paused = false;
  private committing: Promise<void> | undefined;
  private commitAgain = false;
  private commitFailing = false;
  readonly stats = { rows: 0, deadLetters: 0, flushes: 0 };

  constructor(private readonly o: SinkCoreOptions) {
    this.byTopic = new Map(o.targets.map((t) => [t.topic, t]));
    this.now = o.now ?? Date.now;
    this.queue = new FlushQueue({
      write: (sealed) => this.write(sealed),
      isPermanent: isPermanentClickHouseError,
      giveUp: (attempt) => this.stopping && attempt >= 2,
      onWritten: (sealed) => this.written(sealed),
      onDropped: (sealed) => this.announced.delete(sealed.id),
      onRetry: (sealed, attempt, delayMs, err) => {
        metrics.sinkFlushErrors.inc({ resource: this.byTopic.get(sealed.topic)!.resource });
        this.o.logger.warn(
          {
            resource: this.byTopic.get(sealed.topic)!.resource,
            attempt,
            delayMs: Math.round(delayMs),
            err: redact(String(err)),
          },
          'flush failed; reading is paused and the flush retried',
        );
        this.setPaused(true);
      },
      onRecovered: () => this.setPaused(false),
      onFailed: (sealed, err, permanent) => {
        const resource = this.byTopic.get(sealed.topic)!.resource;
        if (permanent) {
          this.fail(
            new FatalSinkError(
              `insert into ${resource} tables failed permanently: ${redact(String((err as Error).message))}`,
              { cause: err },
            ),
          );
        } else {
          this.o.logger.warn(
            { resource, err: redact(String(err)) },
            'flush abandoned at shutdown; its offsets stay uncommitted and are read again on restart',
          );
        }
      },
      retryMaxMs: o.retryMaxMs,
      sleep: (ms) => this.backoff(ms),
    });
  }

  get failure(): Error | undefined {
    return this.fatal;
  }

  /** Per "topic:partition", the offset after the last one consumed in the current assignment. */
  get consumed(): Map<string, number> {
    return this.tracker.consumed();
  }

  /** Per "topic:partition", the last position committed in the current assignment. */
  get committed(): Map<string, number> {
    return this.tracker.committedPositions();
  }

  /**
   * A new assignment (per topic, the partitions now this member's; undefined while not known): the
   * consumer re-reads every assigned partition from its committed offset.
   */
  assigned(assignment?: ReadonlyMap<string, ReadonlySet<number>>): void {
    this.generation += 1;
    this.assignment = assignment;
    // Unsealed and still-queued rows are dropped: their offsets are uncommitted, so they come back, and
    // are read into the same buffers again where an intent says so. The buffer being written finishes;
    // its intent lets whoever reads its partitions next rebuild it identically.
    this.open.clear();
    this.rebuilding.clear();
    this.intentReads.clear();
    this.announced.clear();
    this.queue.dropWaiting();
    this.tracker.reset();
  }

  /** A batch that held only transaction markers or aborted records. */
  passed(topic: string, partition: number, from: number, position: number): void {
    if (!this.byTopic.has(topic)) return;
    this.tracker.passed(topic, partition, from, position);
    this.reachedInRebuild(topic, partition, position);
  }

  async handleBatch(batch: IncomingBatch, session: BatchSession): Promise<void> {
    const target = this.byTopic.get(batch.topic);
    if (!target) return;
    const generation = this.generation;
    // Whether this member still owns the batch. The sink's own flags are read per message (a seal can
    // fail the sink at once); kafkajs's answer (a rebalance, a seek) changes only while this loop
    // awaits, so it is asked after each await: its isStale() per message was 5 % of the sink's CPU (#14).
    const owned = () => !this.fatal && !this.stopping && generation === this.generation;
    const current = () => owned() && session.isCurrent();
    // Likewise each handled offset is resolved with kafkajs once before the next await or the end,
    // not per message (another 4 %): kafkajs reads the resolved offset only between batches.
    let unresolved: string | undefined;
    const resolve = () => {
      if (unresolved === undefined) return;
      session.resolve(unresolved);
      unresolved = undefined;
    };
    const { topic, partition } = batch;
    await this.readIntent(topic);
    if (!current()) return;
    for (const message of batch.messages) {
      if (!owned()) return resolve();
      const offset = Number(message.offset);
      let decoded: (Peeked & { record?: Record<string, unknown> }) | undefined;
      let failure: Error | undefined;
      let awaited = false;
      try {
        // Synchronous when the schema is known and its tables are prepared (every message but the
        // first of a schema): an await per message cost a promise and a microtask each.
        decoded = this.decodeReady(target, message.value);
        if (!decoded) {
          resolve();
          awaited = true;
          decoded = await this.decode(target, message, session, current);
          if (!decoded) return;
        }
      } catch (err) {
        failure = err as Error;
      }
      if (failure instanceof FatalSinkError) {
        resolve();
        this.fail(failure);
        return;
      }
      if (awaited && !current()) return;
      // From here to the end of the iteration nothing awaits: the buffer taken is the one the record
      // goes into, is tracked with, and is sealed with.
      const open = this.bufferFor(topic, partition, offset);
      if (!this.tracker.add(topic, partition, offset, open.id)) continue;
      const { buffer } = open;
      if (decoded) {
        try {
          const coords = { topic, partition, offset };
          if (target.transcode) {
            target.transcode(message.value!, decoded.schemaId, coords, buffer);
          } else {
            target.append(decoded.record!, decoded.schemaId, coords, buffer);
            buffer.encode(partition);
          }
          buffer.records += 1;
        } catch (err) {
          failure = err as Error;
        }
      }
      if (failure)
        buffer.addDeadLetter(this.deadLetter(target, message, { topic, partition, offset }, failure));
      buffer.cover(partition, offset, (message.value?.length ?? 0) * 2 + 64);
      unresolved = message.offset;
      if (open instanceof RebuildingBuffer) this.reachedInRebuild(topic, partition, offset + 1);
      else if (buffer.records >= this.o.flushRows || buffer.bytes >= this.o.flushBytes) this.seal(topic);
      if (this.queue.length >= MAX_QUEUED) {
        resolve();
        if (!(await this.waitForQueue(session, current))) return;
      }
    }
    resolve();
    if (batch.messages.length > 0) {
      this.tracker.passed(topic, partition, Number(batch.messages[0]!.offset), Number(batch.lastOffset) + 1);
      this.reachedInRebuild(topic, partition, Number(batch.lastOffset) + 1);
    }
  }

  /** What decode() gives when nothing needs awaiting (schema fetched, tables prepared); else undefined. */
  private decodeReady(
    target: SinkTarget,
    value: Buffer | null,
  ): (Peeked & { record?: Record<string, unknown> }) | undefined {
    const decoder = this.o.decoder;
    if (!decoder.ready?.(value)) return undefined;
    const decoded = target.transcode && decoder.peek ? decoder.peek(value) : decoder.decode(value);
    return this.prepared.get(target.topic)?.has(decoded.schemaId) ? decoded : undefined;
  }

  /**
   * Decodes the message and makes sure its schema's tables exist. Undecodable input throws (it is
   * dead-lettered); a registry or ClickHouse that cannot be reached is not the record's fault, so that
   * is retried with backoff, heart-beating, for as long as this member owns the batch. Resolves
   * undefined once it no longer does.
   */
  private async decode(
    target: SinkTarget,
    message: IncomingMessage,
    session: BatchSession,
    current: () => boolean,
  ): Promise<(Peeked & { record?: Record<string, unknown> }) | undefined> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const fetching = this.o.decoder.prepare(message.value);
        if (fetching) await fetching;
        // A target that transcodes the Avro bytes itself needs only the schema; it checks the bytes.
        const decoded =
          target.transcode && this.o.decoder.peek
            ? this.o.decoder.peek(message.value)
            : this.o.decoder.decode(message.value);
        if (!this.prepared.get(target.topic)?.has(decoded.schemaId)) {
          await target.prepare(decoded.schemaId, decoded.type);
          const ids = this.prepared.get(target.topic) ?? new Set<number>();
          ids.add(decoded.schemaId);
          this.prepared.set(target.topic, ids);
        }
        return decoded;
      } catch (err) {
        if (
          err instanceof DecodeError ||
          err instanceof FatalSinkError ||
          err instanceof UnmappableSchemaError
        )
          throw err;
        if (!current()) return undefined;
        const delay =
          Math.min(this.o.retryMaxMs, 250 * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2);
        this.o.logger.warn(
          { resource: target.resource, attempt, delayMs: Math.round(delay), err: redact(String(err)) },
          'reading the schema or preparing tables failed (registry or ClickHouse unreachable); retrying',
        );
        const until = this.now() + delay;
        while (this.now() < until && current()) {
          await this.backoff(Math.min(HEARTBEAT_EVERY_MS, until - this.now()));
          if (!(await this.heartbeat(session))) return undefined;
        }
        if (!current()) return undefined;
      }
    }
  }

  /**
   * Once per topic and assignment, before its first record: whether the group's committed offsets
   * announce a buffer to rebuild (flush-intent.ts). Failing to read them costs only the exactness of a
   * retried block, so it is logged and reading goes on.
   */
  private readIntent(topic: string): Promise<void> {
    let read = this.intentReads.get(topic);
    if (!read) {
      const generation = this.generation;
      read = (async () => {
        const assigned = this.assignment?.get(topic);
        if (!assigned) return;
        let committed;
        try {
          committed = await this.o.consumer.committed(topic);
        } catch (err) {
          this.o.logger.warn(
            { topic, err: redact(String(err)) },
            'could not read the committed offsets; a flush retried across the restart may be stored twice',
          );
          return;
        }
        if (generation !== this.generation) return;
        const intents = intentsToRebuild(committed, assigned);
        if (intents.length === 0) return;
        this.rebuilding.set(
          topic,
          intents.map(
            (intent) =>
              new RebuildingBuffer(
                this.nextBufferId++,
                new BatchBuffer(this.now(), intent.ingestedAt),
                intent,
              ),
          ),
        );
        this.o.logger.info(
          { topic, ranges: intents.map((i) => i.ranges) },
          'rebuilding flushes a previous member announced but did not commit, so that they insert the same blocks',
        );
      })();
      this.intentReads.set(topic, read);
    }
    return read;
  }

  /** The buffer the record at `offset` goes into: the one being rebuilt when it takes it, else the open one. */
  private bufferFor(topic: string, partition: number, offset: number): OpenBuffer | RebuildingBuffer {
    const rebuild = this.rebuilding.get(topic)?.find((r) => r.takes(partition, offset));
    if (rebuild) return rebuild;
    // A record past the announced range (the ones between were compacted away) completes the partition.
    this.reachedInRebuild(topic, partition, offset);
    return this.openBuffer(topic);
  }

  /** The partition has been read up to `position`; a rebuilt buffer that is complete is sealed. */
  private reachedInRebuild(topic: string, partition: number, position: number): void {
    const rebuilds = this.rebuilding.get(topic);
    if (!rebuilds) return;
    for (const rebuild of rebuilds) {
      rebuild.reached(partition, position);
      if (!rebuild.complete) continue;
      if (!rebuild.buffer.isEmpty)
        this.queue.push({ id: rebuild.id, topic, buffer: rebuild.buffer, generation: this.generation });
    }
    const open = rebuilds.filter((r) => !r.complete);
    if (open.length > 0) this.rebuilding.set(topic, open);
    else this.rebuilding.delete(topic);
  }

  private openBuffer(topic: string): OpenBuffer {
    let open = this.open.get(topic);
    if (!open) {
      open = { id: this.nextBufferId++, buffer: new BatchBuffer(this.now()) };
      this.open.set(topic, open);
    }
    return open;
  }

  /** Hands the topic's open buffer to the flush queue; synchronous, so it happens exactly once. */
  private seal(topic: string): void {
    const open = this.open.get(topic);
    if (!open) return;
    this.open.delete(topic);
    if (open.buffer.isEmpty) return;
    this.queue.push({ id: open.id, topic, buffer: open.buffer, generation: this.generation });
  }

  private sealAll(): void {
    for (const topic of [...this.open.keys()]) this.seal(topic);
  }

  /** Waits, heart-beating, until the queue has room; false when this member no longer owns the batch. */
  private async waitForQueue(session: BatchSession, current: () => boolean): Promise<boolean> {
    while (this.queue.length >= MAX_QUEUED) {
      await Promise.race([this.queue.whenBelow(MAX_QUEUED), this.backoff(HEARTBEAT_EVERY_MS)]);
      if (!current() || !(await this.heartbeat(session))) return false;
    }
    return current();
  }

  /** False when the group is rebalancing: the batch must then be given up so that the member can rejoin. */
  private async heartbeat(session: BatchSession): Promise<boolean> {
    try {
      await session.heartbeat();
      return true;
    } catch {
      return false;
    }
  }

  /** Called by the owner's timer: seals buffers that are due, and retries commits that failed. */
  tick(): void {
    if (this.fatal) return;
    const now = this.now();
    for (const [topic, open] of this.open) {
      if (now - open.buffer.createdAt < this.o.flushMs) continue;
      // While the topic's previous buffer is still being written, this one keeps filling instead of
      // queueing behind it: fewer, larger inserts when ClickHouse is slow.
      if (this.queue.pending(topic) > 0) continue;
      this.seal(topic);
    }
    void this.commit();
  }

  /**
   * Commits the buffer's flush intent (flush-intent.ts) before its first insert: each partition it
   * covers at the buffer's first offset, with metadata naming the buffer. Only where everything before
   * the buffer is durable, so that the commit skips nothing; a failed commit leaves the buffer without
   * an intent, which costs only the exactness of a retry after a crash.
   */
  private async announce(sealed: SealedBuffer): Promise<void> {
    const { id, topic, buffer } = sealed;
    if (this.announced.has(id) || sealed.generation !== this.generation) return;
    const ranges = [...buffer.ranges.values()];
    if (ranges.some((r) => this.tracker.durablePosition(topic, r.partition) !== r.first)) return;
    const metadata = encodeIntent({ ingestedAt: buffer.ingestedAt, ranges });
    if (!metadata) return;
    this.announced.set(id, {
      offsets: ranges.map((r) => ({ topic, partition: r.partition, offset: String(r.first), metadata })),
      sent: false,
    });
    await this.commit();
  }

  /** One attempt at making a sealed buffer durable: its rows, then its dead letters. */
  private async write(sealed: SealedBuffer): Promise<void> {
    const { topic, buffer } = sealed;
    const target = this.byTopic.get(topic)!;
    await this.announce(sealed);
    const started = process.hrtime.bigint();
    const coverage = buffer.coverage();
    const inserts = [...buffer.encoded.values()].filter((e) => e.rows > 0);
    for (const encoded of inserts) {
      const { table } = encoded;
      // The same messages always give the same token, so a retried insert of them is a no-op. Records
      // of writer schemas with different fields make one RowBinary insert per column list into the same
      // table; each gets its own token (the column list is as much a function of the messages).
      const several = inserts.some((e) => e !== encoded && e.table === table);
      const key = several
        ? `${table}|${topic}|${coverage}|${encoded.columns?.join(',') ?? ''}`
        : `${table}|${topic}|${coverage}`;
      const token = this.o.features.dedupTokens ? createHash('sha1').update(key).digest('hex') : undefined;
      await this.o.writer.insert(
        table,
        encoded.body(),
        insertSettings(this.o.features, token),
        encoded.columns ? { format: encoded.format, columns: encoded.columns } : undefined,
      );
      metrics.rowsInserted.inc({ table }, encoded.rows);
    }
    // In requests the topic takes; those sent by an earlier attempt at this buffer are not sent again.
    const requests = deadLetterRequests(buffer.deadLetters, this.deadLetterBudget(target.dlqTopic));
    for (let i = buffer.deadLetterRequestsSent; i < requests.length; i += 1) {
      await this.o.deadLetters.send(target.dlqTopic, requests[i]!);
      buffer.deadLetterRequestsSent = i + 1;
    }
    metrics.sinkFlushDuration.observe(
      { resource: target.resource },
      Number(process.hrtime.bigint() - started) / 1e9,
    );
  }

  private written(sealed: SealedBuffer): void {
    const { buffer } = sealed;
    this.announced.delete(sealed.id);
    this.tracker.markDurable(sealed.id, sealed.topic, buffer.ranges.keys());
    this.stats.rows += buffer.records;
    this.stats.flushes += 1;
    void this.commit();
  }

  /**
   * Commits what the tracker says is durable. One commit at a time, so that a slow earlier commit can
   * never land after a later one and move a position back. A failed commit (Kafka down, a rebalance) is
   * not fatal: nothing is lost, and the next tick or flush commits the same positions or later ones.
   */
  private commit(): Promise<void> {
    if (this.committing) {
      this.commitAgain = true;
      return this.committing;
    }
    this.committing = (async () => {
      do {
        this.commitAgain = false;
        const offsets = this.tracker.committable();
        // Intents not yet committed ride along: at their buffer's first offset, which is where the
        // tracker's durable position stands until the buffer lands (and written() drops the intent).
        const intents = [...this.announced.values()].filter((a) => !a.sent);
        for (const o of intents.flatMap((a) => a.offsets)) {
          const i = offsets.findIndex((c) => c.topic === o.topic && c.partition === o.partition);
          if (i < 0) offsets.push(o);
          else if (offsets[i]!.offset === o.offset) offsets[i] = o;
        }
        if (offsets.length === 0) return;
        const generation = this.generation;
        try {
          await this.o.consumer.commit(offsets);
        } catch (err) {
          if (!this.commitFailing) {
            this.o.logger.warn(
              { err: redact(String(err)) },
              'offset commit failed (Kafka unreachable or rebalancing); rows are safe, retrying',
            );
          }
          this.commitFailing = true;
          return;
        }
        if (this.commitFailing) this.o.logger.info('offset commits work again');
        this.commitFailing = false;
        if (generation === this.generation) {
          this.tracker.committed(offsets);
          for (const a of intents) a.sent = true;
        }
      } while (this.commitAgain);
    })().finally(() => {
      this.committing = undefined;
    });
    return this.committing;
  }

  private setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    const topics = [...this.byTopic.keys()];
    if (paused) this.o.consumer.pause(topics);
    else if (!this.stopping) this.o.consumer.resume(topics);
  }

  private deadLetter(
    target: SinkTarget,
    message: IncomingMessage,
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
    const letter = fitDeadLetter(
      {
        key: message.key,
        value: message.value,
        headers: {
          'x-error-reason': reason,
          'x-error-message': redact(err.message).slice(0, 2_000),
          'x-source-topic': coords.topic,
          'x-source-partition': String(coords.partition),
          'x-source-offset': String(coords.offset),
        },
      },
      this.deadLetterBudget(target.dlqTopic),
    );
    if (letter.value !== message.value)
      this.o.logger.warn(
        { ...coords, bytes: message.value?.length, kept: letter.value?.length, dlqTopic: target.dlqTopic },
        'a dead letter larger than its topic takes keeps only the start of its value (x-value-bytes)',
      );
    return letter;
  }

  private deadLetterBudget(dlqTopic: string): number {
    return requestBudget(this.o.deadLetterLimits?.get(dlqTopic) ?? KAFKA_DEFAULT_MAX_MESSAGE_BYTES);
  }

  private fail(err: Error): void {
    if (this.fatal) return;
    this.fatal = err;
    this.o.logger.error({ err }, 'sink stopped: offsets past the last durable flush are not committed');
    this.o.onFatal?.(err);
  }

  /** Sleeps `ms`, or less when stop() is called meanwhile. */
  private backoff(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (this.o.sleep) return this.o.sleep(ms);
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

  /** Seals every open buffer, waits until all are written, and commits. */
  async flush(): Promise<void> {
    this.sealAll();
    await this.queue.whenBelow(0);
    await this.commit();
  }

  /** Whether every partition in `targets` ("topic:partition" → offset) is consumed, written and committed. */
  async caughtUp(targets: ReadonlyMap<string, number>): Promise<boolean> {
    const consumed = this.tracker.consumed();
    for (const [tp, target] of targets) {
      if (target > 0 && (consumed.get(tp) ?? 0) < target) return false;
    }
    await this.flush();
    return [...targets].every(([tp, target]) => {
      if (target <= 0) return true;
      const i = tp.lastIndexOf(':');
      return (this.tracker.durablePosition(tp.slice(0, i), Number(tp.slice(i + 1))) ?? 0) >= target;
    });
  }

  /**
   * Stops reading and writes what it holds within the bound; a write still failing after a few
   * attempts is dropped, and its offsets, and every later one of its partitions, stay uncommitted.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    for (const wake of [...this.wakers]) wake();
    this.o.consumer.pause([...this.byTopic.keys()]);
    this.sealAll();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      (async () => {
        await this.queue.whenBelow(0);
        await this.commit();
      })(),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }
}
