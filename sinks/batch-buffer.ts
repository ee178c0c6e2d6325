import type { Message } from 'kafkajs';
import type { Row } from './schema/rows.ts';

import type { RowBinaryOut, RowBinaryTable, RowSink } from './schema/rowbinary.ts';

/** Size of the chunks that encoded rows are written into; a table's first chunk is smaller. */
const CHUNK_BYTES = 256 * 1024;
const FIRST_CHUNK_BYTES = 16 * 1024;

/** Encoded rows, in chunks: written in place (ByteSink), the full chunks kept in order. */
class Chunks implements RowSink {
  private readonly full: Buffer[] = [];
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  // Where the row being written began (mark), so that rewind() can take it back.
  private markBuf: Buffer = this.buf;
  private markPos = 0;
  private markFull = 0;

  mark(): void {
    this.markBuf = this.buf;
    this.markPos = this.pos;
    this.markFull = this.full.length;
  }

  rewind(): void {
    // A chunk begun since the mark is dropped, and the one the row began in is current again: the
    // subarray kept of it in `full` ended where the row went on.
    this.full.length = this.markFull;
    this.buf = this.markBuf;
    this.pos = this.markPos;
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const size = this.full.length === 0 && this.pos === 0 ? FIRST_CHUNK_BYTES : CHUNK_BYTES;
    if (this.pos > 0) this.full.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(Math.max(size, n));
    this.pos = 0;
  }

  /** A JSONEachRow line. */
  addLine(line: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit, so the line fits where it is written.
    this.ensure(line.length * 3 + 1);
    this.pos += this.buf.write(line, this.pos);
    this.buf[this.pos++] = 0x0a;
  }

  chunks(): Buffer[] {
    return this.pos > 0 ? [...this.full, this.buf.subarray(0, this.pos)] : [...this.full];
  }
}

/** How an insert's body is encoded: JSONEachRow lines (each naming its columns), or RowBinary. */
export type InsertFormat = 'JSONEachRow' | 'RowBinary';

/**
 * One insert's rows, ready to be streamed: JSONEachRow lines (JSON.stringify's, as @clickhouse/client
 * writes them) or RowBinary rows of `columns` (schema/rowbinary.ts). Rows are kept per Kafka partition
 * and the body lists the partitions in order: within a partition rows arrive in offset order, so the
 * same messages always give the same bytes however the partitions' fetches interleaved. That is what
 * lets a replicated table (or a dedup token) recognise a retried flush after a restart as a block it
 * already has.
 */
export class EncodedRows implements RowBinaryOut {
  private readonly byPartition = new Map<number, Chunks>();
  rows = 0;

  constructor(
    readonly table: string,
    readonly format: InsertFormat = 'JSONEachRow',
    /** RowBinary: the insert's column list, in the order each row's values are written. */
    readonly columns?: readonly string[],
  ) {}

  /** Where rows of `partition` are written (RowBinary writers count `rows` themselves). */
  partition(partition: number): Chunks {
    let chunks = this.byPartition.get(partition);
    if (!chunks) {
      chunks = new Chunks();
      this.byPartition.set(partition, chunks);
    }
    return chunks;
  }

  add(row: Row, partition: number): void {
    this.partition(partition).addLine(JSON.stringify(row));
    this.rows += 1;
  }

  /** The rows so far: partition by partition in ascending order, each in offset order. */
  body(): Buffer[] {
    return [...this.byPartition.keys()]
      .sort((a, b) => a - b)
      .flatMap((p) => this.byPartition.get(p)!.chunks());
  }
}

export interface PartitionRange {
  partition: number;
  first: number;
  last: number;
}

/**
 * Rows waiting to be flushed for one topic, grouped by table, with the offsets they cover. Dead
 * letters ride in the same buffer so that they are written before the offsets covering them commit.
 * Rows are encoded as soon as they are appended (encode()), so that the row objects die young
 * instead of surviving in the heap until the flush: that halves the garbage collector's work.
 */
export class BatchBuffer {
  /**
   * Per table, in the order tables were first seen (child tables before their parent): the rows
   * appended since the last encode().
   */
  readonly rows = new Map<string, Row[]>();
  /**
   * Per insert, in the order first seen: the rows encoded for it. JSONEachRow rows are keyed by table
   * (each line names its columns); RowBinary ones by table and column list, since one insert has one
   * column list (records of two writer schemas with different fields make two inserts).
   */
  readonly encoded = new Map<string, EncodedRows>();
  readonly deadLetters: Message[] = [];
  /**
   * How many of the dead letters' requests an earlier attempt at writing this buffer sent (written by
   * the flush queue's writer, which owns a sealed buffer): a retry does not send them twice.
   */
  deadLetterRequestsSent = 0;
  readonly ranges = new Map<number, PartitionRange>();
  /** Records buffered (a record may add rows to several tables). */
  records = 0;
  bytes = 0;
  /** Unix seconds stamped on every row of the buffer as _ingested_at. */
  readonly ingestedAt: number;
  private readonly outs = new Map<number, Row[][]>();
  private readonly binaryOuts = new Map<number, EncodedRows[]>();

  /**
   * `createdAt`: when the buffer's first record arrived, in epoch ms; a timed flush counts from it.
   * `ingestedAt` is given when the buffer rebuilds one an earlier process announced (flush-intent.ts).
   */
  constructor(
    readonly createdAt: number = Date.now(),
    ingestedAt?: number,
  ) {
    this.ingestedAt = ingestedAt ?? Math.floor(createdAt / 1000);
  }

  /** The row arrays of `tables`, in that order, for a row mapper that writes to them directly. */
  out(schemaId: number, tables: readonly string[]): Row[][] {
    let out = this.outs.get(schemaId);
    if (!out) {
      out = tables.map((table) => {
        let list = this.rows.get(table);
        if (!list) {
          list = [];
          this.rows.set(table, list);
          this.encoded.set(table, new EncodedRows(table));
        }
        return list;
      });
      this.outs.set(schemaId, out);
    }
    return out;
  }

  /** The RowBinary inserts of `tables` (a transcoder's), in that order, for it to write to directly. */
  binary(schemaId: number, tables: readonly RowBinaryTable[]): EncodedRows[] {
    let out = this.binaryOuts.get(schemaId);
    if (!out) {
      out = tables.map(({ table, columns }) => {
        const key = `${table}\n${columns.join(',')}`;
        let encoded = this.encoded.get(key);
        if (!encoded) {
          encoded = new EncodedRows(table, 'RowBinary', columns);
          this.encoded.set(key, encoded);
        }
        return encoded;
      });
      this.binaryOuts.set(schemaId, out);
    }
    return out;
  }

  /**
   * Moves the rows appended since the last call, all of one message of `partition`, into `encoded`.
   * Should a row fail to encode, it is dropped with the rest of this call's rows of its table, and the
   * error is thrown.
   */
  encode(partition: number): void {
    for (const [table, list] of this.rows) {
      if (list.length === 0) continue;
      const encoded = this.encoded.get(table)!;
      try {
        for (const row of list) encoded.add(row, partition);
      } finally {
        list.length = 0;
      }
    }
  }

  addDeadLetter(message: Message): void {
    this.deadLetters.push(message);
  }

  /** Marks an offset as covered by this buffer, whether it produced rows, a dead letter or nothing. */
  cover(partition: number, offset: number, bytes: number): void {
    const range = this.ranges.get(partition);
    if (range) range.last = offset;
    else this.ranges.set(partition, { partition, first: offset, last: offset });
    this.bytes += bytes;
  }

  get isEmpty(): boolean {
    return this.ranges.size === 0;
  }

  /** A stable description of what the buffer covers: the same messages always give the same text. */
  coverage(): string {
    return [...this.ranges.values()]
      .sort((a, b) => a.partition - b.partition)
      .map((r) => `${r.partition}:${r.first}-${r.last}`)
      .join(',');
  }
}
