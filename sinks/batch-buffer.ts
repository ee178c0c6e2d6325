import type { Message } from 'kafkajs';

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
  readonly rows = new Map<string, Record<string, unknown>[]>();
  readonly deadLetters: Message[] = [];
  readonly ranges = new Map<number, PartitionRange>();
  rowCount = 0;
  bytes = 0;
  readonly createdAt = Date.now();

  addRows(table: string, rows: Record<string, unknown>[]): void {
    let list = this.rows.get(table);
    if (!list) {
      list = [];
      this.rows.set(table, list);
    }
    for (const row of rows) list.push(row);
    this.rowCount += rows.length;
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
