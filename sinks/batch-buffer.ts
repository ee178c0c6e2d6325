import type { Message } from 'kafkajs';
import type { Row } from './schema/rows.ts';

export interface PartitionRange {
  partition: number;
  first: number;
  last: number;
}

/**
 * Rows waiting to be flushed for one topic, grouped by table, with the offsets they cover. Dead
 * letters ride in the same buffer so that they are written before the offsets covering them commit.
 */
export class BatchBuffer {
  /** Per table, in the order tables were first seen (child tables before their parent). */
  readonly rows = new Map<string, Row[]>();
  readonly deadLetters: Message[] = [];
  readonly ranges = new Map<number, PartitionRange>();
  /** Records buffered (a record may add rows to several tables). */
  records = 0;
  bytes = 0;
  readonly createdAt = Date.now();
  /** Unix seconds stamped on every row of the buffer as _ingested_at. */
  readonly ingestedAt = Math.floor(this.createdAt / 1000);
  private readonly outs = new Map<number, Row[][]>();

  /** The row arrays of `tables`, in that order, for a row mapper that writes to them directly. */
  out(schemaId: number, tables: readonly string[]): Row[][] {
    let out = this.outs.get(schemaId);
    if (!out) {
      out = tables.map((table) => {
        let list = this.rows.get(table);
        if (!list) {
          list = [];
          this.rows.set(table, list);
        }
        return list;
      });
      this.outs.set(schemaId, out);
    }
    return out;
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
