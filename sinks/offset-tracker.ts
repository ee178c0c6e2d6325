/**
 * Which offsets of each topic-partition are safe to commit. Every consumed offset belongs to the buffer
 * its record went into, or to no buffer (transaction markers, aborted or compacted-away records, dead
 * letters ride in the buffer like rows). A partition's commit position is the end of the longest prefix
 * of consumed offsets whose buffers are durably written: it never passes an offset whose buffer is still
 * open, queued, being written, or was dropped, whatever order the buffers finish in.
 *
 * Pure bookkeeping with no I/O; the sink core is its only owner.
 */

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: string;
  /** Offset metadata to commit with the position (a flush intent); none clears what was there. */
  metadata?: string;
}

/** A run of offsets that ends at `end` (exclusive) and starts where the previous run ended. */
interface Run {
  end: number;
  /** The buffer whose rows cover the run; undefined for offsets that produced nothing. */
  owner: number | undefined;
  durable: boolean;
}

class PartitionOffsets {
  /** Everything below is durable: the position that may be committed. */
  durableTo: number;
  /** Everything below has been consumed. */
  consumedTo: number;
  /** The last position committed, or where consumption started (already committed or never to be). */
  committedTo: number;
  /** Consumed runs past durableTo, in offset order. */
  private readonly runs: Run[] = [];

  constructor(start: number) {
    this.durableTo = start;
    this.consumedTo = start;
    this.committedTo = start;
  }

  add(offset: number, owner: number): boolean {
    if (offset < this.consumedTo) return false;
    // A gap before `offset` (markers, filtered records) joins the record's run: it is committed with it.
    const last = this.runs.at(-1);
    if (last && last.owner === owner) last.end = offset + 1;
    else this.runs.push({ end: offset + 1, owner, durable: false });
    this.consumedTo = offset + 1;
    return true;
  }

  passed(position: number): void {
    if (position <= this.consumedTo) return;
    this.consumedTo = position;
    const last = this.runs.at(-1);
    if (!last) this.durableTo = position;
    else if (last.owner === undefined) last.end = position;
    else this.runs.push({ end: position, owner: undefined, durable: true });
  }

  markDurable(owner: number): void {
    for (const run of this.runs) if (run.owner === owner) run.durable = true;
    while (this.runs.length > 0 && this.runs[0]!.durable) this.durableTo = this.runs.shift()!.end;
  }
}

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class OffsetTracker {
  private readonly partitions = new Map<string, { topic: string; partition: number; p: PartitionOffsets }>();

  /** The partition the last lookup found: a batch's messages ask for the same one in a row (#14). */
  private last: { topic: string; partition: number; p: PartitionOffsets } | undefined;

  private of(topic: string, partition: number, start: number): PartitionOffsets {
    const last = this.last;
    if (last && last.partition === partition && last.topic === topic) return last.p;
    const k = key(topic, partition);
    let entry = this.partitions.get(k);
    if (!entry) {
      entry = { topic, partition, p: new PartitionOffsets(start) };
      this.partitions.set(k, entry);
    }
    this.last = entry;
    return entry.p;
  }

  /**
   * Records that the message at `offset` went into buffer `owner`. False when that offset was consumed
   * before (a redelivery within the same assignment): the caller must then skip the message.
   */
  add(topic: string, partition: number, offset: number, owner: number): boolean {
    return this.of(topic, partition, offset).add(offset, owner);
  }

  /**
   * The consumer has passed every offset from `from` up to `position` without a record: a batch that
   * held only transaction markers or aborted records.
   */
  passed(topic: string, partition: number, from: number, position: number): void {
    this.of(topic, partition, from).passed(position);
  }

  /** The buffer's rows have landed; `partitions` are the topic-partitions it covers. */
  markDurable(owner: number, topic: string, partitions: Iterable<number>): void {
    for (const partition of partitions) this.partitions.get(key(topic, partition))?.p.markDurable(owner);
  }

  /** Positions that are durable and not yet committed. */
  committable(): TopicPartitionOffset[] {
    const out: TopicPartitionOffset[] = [];
    for (const { topic, partition, p } of this.partitions.values()) {
      if (p.durableTo > p.committedTo) out.push({ topic, partition, offset: String(p.durableTo) });
    }
    return out;
  }

  /** Records a successful commit. */
  committed(offsets: readonly TopicPartitionOffset[]): void {
    for (const o of offsets) {
      const p = this.partitions.get(key(o.topic, o.partition))?.p;
      if (p) p.committedTo = Math.max(p.committedTo, Number(o.offset));
    }
  }

  /** The consumed position of a partition ("topic:partition" keys, as Kafka tools print them). */
  consumed(): Map<string, number> {
    const out = new Map<string, number>();
    for (const { topic, partition, p } of this.partitions.values())
      out.set(`${topic}:${partition}`, p.consumedTo);
    return out;
  }

  /** The last committed position of each partition ("topic:partition" keys). */
  committedPositions(): Map<string, number> {
    const out = new Map<string, number>();
    for (const { topic, partition, p } of this.partitions.values())
      out.set(`${topic}:${partition}`, p.committedTo);
    return out;
  }

  /** Whether everything consumed from the partition is durable (true for a partition never consumed). */
  settled(topic: string, partition: number): boolean {
    const p = this.partitions.get(key(topic, partition))?.p;
    return !p || p.durableTo === p.consumedTo;
  }

  durablePosition(topic: string, partition: number): number | undefined {
    return this.partitions.get(key(topic, partition))?.p.durableTo;
  }

  /** A new assignment: the consumer re-reads every partition from its committed offset. */
  reset(): void {
    this.partitions.clear();
    this.last = undefined;
  }
}
