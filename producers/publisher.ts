import type { Kafka, Message, Producer, TopicMessages } from 'kafkajs';
import { CompressionTypes } from 'kafkajs';
import type { Logger } from '../core/log.ts';

/**
 * What one step of a source hands to the runtime: its records (to every topic it writes, the
 * dead-letter topics included) and the cursor state that becomes true once they are in Kafka.
 */
export interface PublishUnit {
  messages: TopicMessages[];
  /** Applied to the in-memory state only after the transaction holding `messages` has committed. */
  onCommitted?: () => void;
}

interface Pending {
  unit: PublishUnit;
  resolve: () => void;
  reject: (err: Error) => void;
  size: number;
}

const MAX_MESSAGES_PER_TRANSACTION = 5_000;
const MAX_BYTES_PER_TRANSACTION = 8 * 1024 * 1024;

function messageBytes(message: Message): number {
  const len = (v: Message['value'] | Message['key']): number =>
    v == null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length;
  return len(message.key) + len(message.value) + 64;
}

/**
 * Publishes records and their cursor state in one Kafka transaction, the way Kafka Connect's
 * exactly-once source support does: a crash either loses both (the source re-reads the page) or
 * keeps both (the source moves on), so a restart neither skips nor repeats data. Units that arrive
 * while a transaction is in flight are grouped into the next one, which keeps throughput up
 * without giving up that atomicity.
 */
export class TransactionalPublisher {
  private producer: Producer | undefined;
  private readonly queue: Pending[] = [];
  private draining: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly transactionalId: string,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.producer = this.kafka.producer({
      transactionalId: this.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: 60_000,
      allowAutoTopicCreation: false,
      // The broker answers CONCURRENT_TRANSACTIONS until the previous commit's markers are written,
      // usually a few ms; kafkajs' default 300 ms first retry would cap us at ~3 transactions a second.
      retry: { initialRetryTime: 10, maxRetryTime: 1_000, retries: 10 },
    });
    // Registering the transactional id fences any older instance using it and aborts its open transaction.
    await this.producer.connect();
  }

  publish(unit: PublishUnit): Promise<void> {
    if (this.closed) return Promise.reject(new Error('publisher is closed'));
    const size = unit.messages.reduce(
      (n, t) => n + t.messages.reduce((m, msg) => m + messageBytes(msg), 0),
      0,
    );
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ unit, resolve, reject, size });
      this.draining ??= this.drain().finally(() => {
        this.draining = undefined;
      });
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const group: Pending[] = [];
      let count = 0;
      let bytes = 0;
      while (this.queue.length > 0) {
        const next = this.queue[0]!;
        const n = next.unit.messages.reduce((acc, t) => acc + t.messages.length, 0);
        if (
          group.length > 0 &&
          (count + n > MAX_MESSAGES_PER_TRANSACTION || bytes + next.size > MAX_BYTES_PER_TRANSACTION)
        )
          break;
        group.push(this.queue.shift()!);
        count += n;
        bytes += next.size;
      }
      try {
        await this.commitGroup(group);
        for (const p of group) {
          p.unit.onCommitted?.();
          p.resolve();
        }
      } catch (err) {
        for (const p of group) p.reject(err as Error);
      }
    }
  }

  private async commitGroup(group: Pending[]): Promise<void> {
    const producer = this.producer;
    if (!producer) throw new Error('publisher not started');
    const byTopic = new Map<string, Message[]>();
    for (const p of group) {
      for (const t of p.unit.messages) {
        const list = byTopic.get(t.topic) ?? [];
        for (const m of t.messages) list.push(m);
        byTopic.set(t.topic, list);
      }
    }
    const topicMessages = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    const transaction = await producer.transaction();
    try {
      await transaction.sendBatch({ topicMessages, acks: -1, compression: CompressionTypes.None });
      await transaction.commit();
    } catch (err) {
      this.logger.warn({ err }, 'transaction failed; aborting it so none of its records become visible');
      try {
        await transaction.abort();
      } catch (abortErr) {
        // A failed abort leaves the producer unusable; a fresh one re-registers the id, which aborts it.
        this.logger.warn({ err: abortErr }, 'abort failed; recreating the transactional producer');
        await producer.disconnect().catch(() => undefined);
        await this.start();
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.draining;
    await this.producer?.disconnect();
    this.producer = undefined;
  }
}
