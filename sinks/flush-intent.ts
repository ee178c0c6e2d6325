/**
 * Flush intents: how a sink that dies between an insert and its offset commit rebuilds, after the
 * restart, exactly the insert it had sent, so that ClickHouse recognises the block and keeps one copy
 * (a replicated table's block deduplication, or the dedup token on servers that have one).
 *
 * Before a buffer is written, the sink commits each partition it covers at the buffer's first offset
 * (a position already durable, so nothing is skipped) with offset metadata naming the buffer: the
 * offsets it spans in every partition and the `_ingested_at` its rows carry. The commit after the
 * insert moves the positions past the buffer and clears the metadata. A member that finds the metadata
 * on its newly assigned partitions, each still committed at the buffer's first offset, gathers exactly
 * those offsets into one buffer again, with the same `_ingested_at`; BatchBuffer lays rows out by
 * partition and offset, so the insert is byte for byte the one sent before.
 *
 * Limits: the member must be assigned every partition the buffer spanned (otherwise the rows come back
 * in other buffers, which the `_current` views absorb, as before), and a record compacted away in
 * between changes the block.
 */
import type { BatchBuffer, PartitionRange } from './batch-buffer.ts';

/** A buffer as announced: its `_ingested_at` and, per partition, the offsets it spans. */
export interface FlushIntent {
  ingestedAt: number;
  ranges: PartitionRange[];
}

/** What the group has committed for one partition of a topic. */
export interface CommittedPosition {
  partition: number;
  /** -1 when the group has committed nothing for the partition. */
  offset: number;
  metadata: string | null;
}

const VERSION = 1;
/** Kafka's default offset.metadata.max.bytes is 4096; past that the commit would fail. */
const MAX_METADATA_CHARS = 4_000;

/** The offset metadata announcing a buffer, or undefined when it would be too long to commit. */
export function encodeIntent(intent: FlushIntent): string | undefined {
  const text = JSON.stringify({
    v: VERSION,
    t: intent.ingestedAt,
    r: [...intent.ranges]
      .sort((a, b) => a.partition - b.partition)
      .map((r) => [r.partition, r.first, r.last]),
  });
  return text.length <= MAX_METADATA_CHARS ? text : undefined;
}

/** The intent in a committed offset's metadata; undefined for anything else (empty, foreign, damaged). */
export function decodeIntent(metadata: string | null | undefined): FlushIntent | undefined {
  if (!metadata || !metadata.startsWith('{')) return undefined;
  try {
    const raw = JSON.parse(metadata) as { v?: unknown; t?: unknown; r?: unknown };
    if (raw.v !== VERSION || !Number.isSafeInteger(raw.t) || !Array.isArray(raw.r) || raw.r.length === 0)
      return undefined;
    const ranges: PartitionRange[] = [];
    for (const r of raw.r as unknown[]) {
      if (!Array.isArray(r) || r.length !== 3 || !r.every((n) => Number.isSafeInteger(n) && n >= 0))
        return undefined;
      const [partition, first, last] = r as [number, number, number];
      if (last < first) return undefined;
      ranges.push({ partition, first, last });
    }
    return { ingestedAt: raw.t as number, ranges };
  } catch {
    return undefined;
  }
}

/**
 * The buffers to rebuild from what the group committed for a topic: each announced intent whose
 * partitions are all assigned to this member and all still committed at the buffer's first offset with
 * that same announcement. There can be several: a buffer being rebuilt while a later one of other
 * partitions was announced and written. Anything else means the buffer landed and was committed past,
 * or its partitions are split between members: then there is nothing to rebuild for it.
 */
export function intentsToRebuild(
  committed: readonly CommittedPosition[],
  assigned: ReadonlySet<number>,
): FlushIntent[] {
  const byPartition = new Map(committed.map((c) => [c.partition, c]));
  const out: FlushIntent[] = [];
  for (const metadata of new Set(committed.map((c) => c.metadata))) {
    const intent = decodeIntent(metadata);
    if (!intent) continue;
    const intact = intent.ranges.every((r) => {
      const c = byPartition.get(r.partition);
      return assigned.has(r.partition) && c?.offset === r.first && c.metadata === metadata;
    });
    if (intact) out.push(intent);
  }
  return out;
}

/**
 * A buffer being gathered again from an intent: it takes the announced offsets of each partition and
 * nothing else, and is complete once every partition has been read past its last announced offset
 * (by a record, or by a batch of markers or compacted-away records).
 */
export class RebuildingBuffer {
  private readonly remaining: Map<number, number>;

  constructor(
    readonly id: number,
    readonly buffer: BatchBuffer,
    intent: FlushIntent,
  ) {
    this.remaining = new Map(intent.ranges.map((r) => [r.partition, r.last]));
  }

  /** Whether the message at `offset` of `partition` belongs to the rebuilt buffer. */
  takes(partition: number, offset: number): boolean {
    const last = this.remaining.get(partition);
    return last !== undefined && offset <= last;
  }

  /** The partition has been read up to `position` (exclusive). */
  reached(partition: number, position: number): void {
    const last = this.remaining.get(partition);
    if (last !== undefined && position > last) this.remaining.delete(partition);
  }

  get complete(): boolean {
    return this.remaining.size === 0;
  }
}
