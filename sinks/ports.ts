/**
 * What the sink core needs from the outside world, and nothing more: the kafkajs adapter (runner.ts)
 * implements these over a real consumer, producer and ClickHouse client, and the model tests over
 * in-memory fakes.
 */
import type { Message } from 'kafkajs';
import type avro from 'avsc';
import type { BatchBuffer, InsertFormat } from './batch-buffer.ts';
import type { Decoded, Peeked } from './decoder.ts';
import type { CommittedPosition } from './flush-intent.ts';
import type { TopicPartitionOffset } from './offset-tracker.ts';

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
  /**
   * Where the target writes rows straight from the message's Avro bytes (Confluent wire format) instead:
   * used with RecordDecoder.peek, so that no record object is made. Throws (DecodeError for bytes that
   * do not decode) before writing anything; throwing dead-letters the message.
   */
  transcode?(value: Buffer, schemaId: number, coords: RecordCoordinates, buffer: BatchBuffer): void;
}

/** The consumer group member: commits and flow control. */
export interface ConsumerPort {
  /** Commits positions (with metadata where given: flush intents). */
  commit(offsets: TopicPartitionOffset[]): Promise<void>;
  /** What the group has committed for every partition of `topic`, with the metadata. */
  committed(topic: string): Promise<CommittedPosition[]>;
  pause(topics: readonly string[]): void;
  resume(topics: readonly string[]): void;
}

/** How an insert's body is encoded; JSONEachRow without a column list when absent. */
export interface InsertShape {
  format: InsertFormat;
  /** The insert's column list (RowBinary needs one). */
  columns?: readonly string[];
}

/** ClickHouse: one INSERT of encoded rows. */
export interface RowWriter {
  insert(
    table: string,
    body: readonly Buffer[],
    settings?: Record<string, string>,
    shape?: InsertShape,
  ): Promise<void>;
}

/** The dead-letter producer: resolves once the messages are acknowledged by all in-sync replicas. */
export interface DeadLetterWriter {
  send(topic: string, messages: Message[]): Promise<void>;
}

/** Confluent wire format → record; see WireDecoder. */
export interface RecordDecoder {
  prepare(value: Buffer | null): Promise<void> | undefined;
  decode(value: Buffer | null): Decoded;
  /** Whether decode() and peek() can answer without prepare() (the schema is known); optional. */
  ready?(value: Buffer | null): boolean;
  /** The header checks and schema lookup of decode() only, for targets that transcode (SinkTarget.transcode). */
  peek?(value: Buffer | null): Peeked;
}

export interface IncomingMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
}

/** A fetched batch of one partition, as kafkajs hands it to eachBatch. */
export interface IncomingBatch {
  topic: string;
  partition: number;
  messages: readonly IncomingMessage[];
  /** The batch's last offset, a trailing transaction marker included. */
  lastOffset: string;
}

/** What the consumer offers while a batch is being processed. */
export interface BatchSession {
  /** Marks the message as processed, so that the consumer fetches past it. */
  resolve(offset: string): void;
  /** Keeps the membership alive; throws when the group is rebalancing. */
  heartbeat(): Promise<void>;
  /** False once the member stops or the batch's assignment is gone. */
  isCurrent(): boolean;
}
