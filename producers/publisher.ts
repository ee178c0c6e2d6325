import type {
  ICustomPartitioner,
  Kafka,
  Message,
  PartitionerArgs,
  PartitionMetadata,
  Producer,
  TopicMessages,
  Transaction,
} from 'kafkajs';
import { CompressionTypes, Partitioners } from 'kafkajs';
import { abortableSleep } from '../core/abortable-sleep.ts';
import type { Logger } from '../core/log.ts';
import { errorChain, firstLine } from '../core/secrets.ts';
import { keyPartition } from './key-partition.ts';

/**
 * The messages of one Kafka transaction (records, dead letters and cursor state, for every topic they
 * go to), and a callback that runs only once that transaction has committed.
 */
export interface PublishUnit {
  messages: TopicMessages[];
  /** Applied to the in-memory state only after the transaction holding `messages` has committed. */
  onCommitted?: () => void;
}

/** Where the runtime hands its units: Kafka transactions in production, a counter in the benchmark. */
export interface Publisher {
  start(): Promise<void>;
  /** Resolves once the unit is durable; `onCommitted` has run by then. */
  publish(unit: PublishUnit): Promise<void>;
  close(): Promise<void>;
}

interface Pending {
  unit: PublishUnit;
  resolve: () => void;
  reject: (err: Error) => void;
  size: number;
}

const MAX_MESSAGES_PER_TRANSACTION = 5_000;
/**
 * How long after a commit the next transaction starts at the earliest. The commit returns once the
 * coordinator has logged it, but it writes the commit markers to every partition afterwards; a
 * transaction started meanwhile is answered CONCURRENT_TRANSACTIONS and retried by kafkajs (safely: see
 * PartitionRouter) after 10 ms or more. Each walker waits for its page's commit before fetching the
 * next, so this wait is paid per transaction in a backfill. In the producers bench (#14, 530
 * transactions on the local broker) 10 ms spent a third of phase (a) waiting; 3 ms was 15-25 % faster
 * and 0 ms no faster than 3 (the retries ate the gain).
 */
const COMMIT_SETTLE_MS = 3;
const MAX_BYTES_PER_TRANSACTION = 8 * 1024 * 1024;
/**
 * Most bytes (as messageBytes counts them) one `sendBatch` carries. kafkajs writes a partition's
 * messages of one request as one record batch, and the broker refuses a batch over `message.max.bytes`
 * (1 MiB by default) with MESSAGE_TOO_LARGE, which no retry cures: a transaction of several pages whose
 * records land on one partition (the state topic has one) would fail at every poll. A transaction is
 * therefore sent in requests of at most this size, one after the other.
 */
export const MAX_BYTES_PER_SEND = 768 * 1024;

/**
 * `topicMessages` in consecutive parts of at most MAX_BYTES_PER_SEND each (a larger message alone),
 * every partition's messages in their order across the parts.
 */
export function sendParts(topicMessages: TopicMessages[]): TopicMessages[][] {
  const parts: TopicMessages[][] = [];
  let part = new Map<string, Message[]>();
  let bytes = 0;
  for (const { topic, messages } of topicMessages) {
    for (const message of messages) {
      const size = messageBytes(message);
      if (bytes > 0 && bytes + size > MAX_BYTES_PER_SEND) {
        parts.push([...part].map(([t, m]) => ({ topic: t, messages: m })));
        part = new Map();
        bytes = 0;
      }
      const list = part.get(topic) ?? [];
      part.set(topic, list);
      list.push(message);
      bytes += size;
    }
  }
  if (bytes > 0) parts.push([...part].map(([t, m]) => ({ topic: t, messages: m })));
  return parts;
}

function messageBytes(message: Message): number {
  const len = (v: Message['value'] | Message['key']): number =>
    v == null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length;
  return len(message.key) + len(message.value) + 64;
}

export interface PublisherOptions {
  /** Cap of the backoff while Kafka cannot take a transaction (kafka.retryMaxMs). */
  retryMaxMs: number;
  /**
   * Runs once a fresh producer has settled a failed transaction, before anything else is published or
   * the failure is reported: that transaction may have committed after all (a commit that reached the
   * coordinator just before the broker went away), so the owner of the cursor state re-reads what is
   * committed. `send` commits a unit at once, outside the queue that is being held.
   */
  onReset?: (send: (unit: PublishUnit) => Promise<void>) => Promise<void>;
  /**
   * Set in a producers group (#16): being fenced then means that another instance was given this unit of
   * work and registered its transactional id, so registering it again would fence the rightful owner in
   * turn. The publisher instead closes, rejects what it holds, and calls this; whoever owns the unit
   * after the next rebalance starts it afresh. Unset (one instance per resource set), a fenced producer
   * registers again, as before.
   */
  fencedOut?: () => void;
  /** The pause after a commit (COMMIT_SETTLE_MS unless given; the model tests use 0). */
  commitSettleMs?: number;
}

/**
 * Splits a transaction's messages so that each `sendBatch` goes to exactly one broker (#16). kafkajs
 * 2.2.4 sends one batch to all the leaders it spans at once (src/producer/sendMessages.js): each
 * broker's request registers its partitions with the transaction coordinator (AddPartitionsToTxn) and
 * takes the next sequence numbers of its partitions before it is sent. When one of them fails with a
 * retriable error, `Promise.all` rejects at once and the retrier goes again while the other brokers'
 * requests are still in flight; a request that has not answered yet counts as not sent, so it is sent a
 * second time, under new sequence numbers, and the broker cannot recognise it as a retry. Both copies
 * commit with the transaction. On a three-broker cluster the trigger is routine: the coordinator
 * answers the second of two concurrent AddPartitionsToTxn of one transaction with
 * CONCURRENT_TRANSACTIONS, and 3 to 18 % of the records were committed twice. On one broker there is
 * only ever one request per send, and none of this happens.
 *
 * With one broker per send, a failed send had only one request, which failed: kafkajs takes its
 * sequence numbers back and the retry carries the same ones, so the broker drops whatever of it had
 * landed, as the idempotent producer intends. The partition of each message is chosen here by kafkajs's
 * own default partitioner (murmur2 of the key, as before), and its broker is the partition's leader, both
 * from the metadata kafkajs itself last partitioned the topic with: the producer's partitioner records
 * it. That partitioner also checks, on every attempt of a send and before any request of it goes out,
 * that each message's partition is still led by the broker the send was meant for; when leadership has
 * moved (after a broker failed), the send stops there and its messages go out one partition per send,
 * which is safe whoever leads. Until a topic has been seen, its first message goes out alone (one
 * message is one partition), which teaches the router the topic. The cost over one `sendBatch`: a
 * round trip to the coordinator and one to the leader per broker a transaction touches, one after the
 * other.
 */
export class PartitionRouter {
  private readonly metadata = new Map<string, PartitionMetadata[]>();
  private readonly choose = Partitioners.DefaultPartitioner();
  /** The broker each message of the current send is meant for. */
  private readonly meantFor = new WeakMap<Message, number>();

  /**
   * The producer's partitioner: kafkajs's default one, recording the metadata it is called with and
   * refusing a message whose partition is not led by the broker its send is meant for.
   */
  readonly createPartitioner: ICustomPartitioner = () => {
    const partitioner = Partitioners.DefaultPartitioner();
    return (args: PartitionerArgs) => {
      const { topic, partitionMetadata, message } = args;
      if (partitionMetadata.length > 0) this.metadata.set(topic, partitionMetadata);
      const broker = this.meantFor.get(message);
      if (broker !== undefined) {
        const leader = partitionMetadata.find((p) => p.partitionId === message.partition)?.leader;
        if (leader !== broker) throw new LeaderMoved(topic, message.partition, broker, leader);
      }
      return partitioner(args);
    };
  };

  /**
   * Sends every message of `topicMessages` in the transaction, one broker per `sendBatch`, one after the
   * other, each partition's messages in their order.
   */
  async send(
    transaction: Pick<Transaction, 'sendBatch'>,
    topicMessages: TopicMessages[],
    options: Omit<Parameters<Transaction['sendBatch']>[0], 'topicMessages'>,
  ): Promise<void> {
    const sendOne = (topic: string, messages: Message[]) =>
      transaction.sendBatch({ ...options, topicMessages: [{ topic, messages }] });
    const known: TopicMessages[] = [];
    for (const { topic, messages } of topicMessages) {
      let rest = messages;
      // Until kafkajs has partitioned the topic once, its partitions are not known here.
      while (rest.length > 0 && !this.metadata.has(topic)) {
        await sendOne(topic, rest.slice(0, 1));
        rest = rest.slice(1);
      }
      if (rest.length > 0) known.push({ topic, messages: rest });
    }
    // broker -> topic -> partition -> messages
    const routes = new Map<number, Map<string, Map<number, Message[]>>>();
    for (const { topic, messages } of known) {
      const partitionMetadata = this.metadata.get(topic)!;
      const leaders = new Map(partitionMetadata.map((p) => [p.partitionId, p.leader]));
      for (const message of messages) {
        // A keyed message's partition is murmur2 of its key, as kafkajs's default partitioner has it,
        // without its BigInt arithmetic (key-partition.ts); a message without a key is kafkajs's to place.
        const partition =
          message.key != null
            ? keyPartition(message.key, partitionMetadata.length)
            : this.choose({ topic, partitionMetadata, message });
        const leader = leaders.get(partition) ?? -1;
        const byTopic = routes.get(leader) ?? new Map<string, Map<number, Message[]>>();
        routes.set(leader, byTopic);
        const byPartition = byTopic.get(topic) ?? new Map<number, Message[]>();
        byTopic.set(topic, byPartition);
        const list = byPartition.get(partition) ?? [];
        byPartition.set(partition, list);
        list.push({ ...message, partition });
      }
    }
    for (const [broker, byTopic] of routes) {
      const batch = [...byTopic].map(([topic, byPartition]) => ({
        topic,
        messages: [...byPartition.values()].flat(),
      }));
      for (const { messages } of batch) for (const m of messages) this.meantFor.set(m, broker);
      const parts = sendParts(batch);
      let sent = 0;
      try {
        for (const part of parts) {
          await transaction.sendBatch({ ...options, topicMessages: part });
          sent++;
        }
        continue;
      } catch (err) {
        if (!errorChain(err).some((e) => e instanceof LeaderMoved)) throw err;
      }
      // Leadership moved since the metadata was read: nothing of the refused part, or of the parts
      // after it, went out. Their messages go one partition per send (each part fits one send).
      for (const part of parts.slice(sent))
        for (const { topic, messages } of part) {
          const byPartition = new Map<number | undefined, Message[]>();
          for (const m of messages) {
            const list = byPartition.get(m.partition) ?? [];
            byPartition.set(m.partition, list);
            list.push({ ...m });
          }
          for (const list of byPartition.values()) await sendOne(topic, list);
        }
    }
  }
}

/** Thrown by the router's partitioner to stop a send, before any request, whose broker is not the leader. */
class LeaderMoved extends Error {
  constructor(topic: string, partition: number | undefined, meant: number, leader: number | undefined) {
    super(
      `${topic}-${partition} is led by broker ${leader ?? 'none'}, not ${meant}, since the send was ` +
        'planned: its messages go out one partition per send',
    );
    this.name = 'LeaderMoved';
  }
}

/**
 * Publishes records and their cursor state in one Kafka transaction, the way Kafka Connect's
 * exactly-once source support does: a crash either loses both (the source re-reads the page) or
 * keeps both (the source moves on), so a restart neither skips nor repeats data. Units that arrive
 * while a transaction is in flight are grouped into the next one, which keeps throughput up
 * without giving up that atomicity.
 *
 * A failed transaction has an unknown outcome (the commit may have landed before the connection
 * broke). The publisher then holds its queue, replaces the producer (registering the transactional
 * id again completes or aborts whatever the old one left open), waits with capped backoff for as long
 * as Kafka is away, lets `onReset` re-read the committed state, and only then reports the failure:
 * the failed step's source reads its cursor again and finds it moved if the transaction did commit,
 * so nothing committed is published twice.
 */
export class TransactionalPublisher implements Publisher {
  private producer: Producer | undefined;
  private readonly queue: Pending[] = [];
  private draining: Promise<void> | undefined;
  private closed = false;
  private readonly closing = new AbortController();
  /** When the last transaction committed: the next one waits COMMIT_SETTLE_MS from it. */
  private lastCommitAt = 0;
  /** Outlives the producers of reset(), so that what it learned about the topics is kept. */
  private readonly router = new PartitionRouter();

  constructor(
    private readonly kafka: Kafka,
    private readonly transactionalId: string,
    private readonly logger: Logger,
    private readonly options: PublisherOptions = { retryMaxMs: 10_000 },
  ) {}

  async start(): Promise<void> {
    const producer = this.kafka.producer({
      transactionalId: this.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: 60_000,
      allowAutoTopicCreation: false,
      createPartitioner: this.router.createPartitioner,
      // The broker answers CONCURRENT_TRANSACTIONS until the previous commit's markers are written,
      // usually a few ms; kafkajs' default 300 ms first retry would cap us at ~3 transactions a second.
      retry: { initialRetryTime: 10, maxRetryTime: 1_000, retries: 10 },
    });
    // Registering the transactional id fences any older instance using it and completes or aborts
    // the transaction it left open.
    await producer.connect();
    this.producer = producer;
  }

  publish(unit: PublishUnit): Promise<void> {
    if (this.closed) return Promise.reject(new Error('publisher is closed'));
    const size = unit.messages.reduce(
      (n, t) => n + t.messages.reduce((m, msg) => m + messageBytes(msg), 0),
      0,
    );
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ unit, resolve, reject, size });
      this.kick();
    });
  }

  /**
   * Starts draining unless a drain runs. A drain that found the queue empty has ended, but `draining` is
   * cleared a microtask later; a unit queued in between (by a caller resuming from the last unit's
   * promise) would wait forever, so the queue is looked at again once it is cleared.
   */
  private kick(): void {
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  private takeGroup(): Pending[] {
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
    return group;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      if (this.closing.signal.aborted) {
        for (const p of this.queue.splice(0)) p.reject(new Error('publisher is closed'));
        return;
      }
      const group = this.takeGroup();
      try {
        await this.commitGroup(group.map((p) => p.unit));
      } catch (err) {
        if (this.options.fencedOut && fenced(err)) {
          this.closed = true;
          this.logger.warn(
            { transactionalId: this.transactionalId },
            'fenced: another member of the producers group now owns this work; it stops here',
          );
          for (const p of [...group, ...this.queue.splice(0)]) p.reject(err as Error);
          this.options.fencedOut();
          return;
        }
        // Held until the outcome is settled and the state re-read; see the class comment.
        await this.reset(err);
        for (const p of group) p.reject(err as Error);
        continue;
      }
      for (const p of group) {
        p.unit.onCommitted?.();
        p.resolve();
      }
    }
  }

  /**
   * Replaces the producer after a failed transaction, waiting with capped backoff while Kafka is
   * away, then runs onReset. Returns early only when the publisher is closing.
   */
  private async reset(cause: unknown): Promise<void> {
    if (fenced(cause)) {
      this.logger.warn(
        { transactionalId: this.transactionalId },
        'this producer was fenced: a transaction timed out, or another instance polls the same resource ' +
          'set (run one per set: two of them keep fencing each other); registering the transactional id again',
      );
    }
    this.logger.warn(
      { err: cause },
      'transaction failed; settling it with a fresh producer before anything else is published',
    );
    const started = Date.now();
    let delay = 250;
    for (let attempt = 1; !this.closing.signal.aborted; attempt++) {
      const old = this.producer;
      this.producer = undefined;
      await old?.disconnect().catch(() => undefined);
      try {
        await this.start();
        await this.options.onReset?.((unit) => this.commitGroup([unit]).then(() => unit.onCommitted?.()));
        this.logger.info(
          { attempts: attempt, waitedMs: Date.now() - started },
          'transactional producer ready again; the failed step will be retried from the committed state',
        );
        return;
      } catch (err) {
        const wait = Math.min(delay, this.options.retryMaxMs);
        this.logger.warn(
          { err, attempt, retryInMs: wait },
          `waiting for Kafka to take transactions again: ${firstLine(err)}`,
        );
        await abortableSleep(wait, this.closing.signal);
        delay = Math.min(delay * 2, this.options.retryMaxMs);
      }
    }
  }

  private async commitGroup(units: PublishUnit[]): Promise<void> {
    const producer = this.producer;
    if (!producer) throw new Error('the transactional producer is not connected');
    const byTopic = new Map<string, Message[]>();
    for (const unit of units) {
      for (const t of unit.messages) {
        const list = byTopic.get(t.topic) ?? [];
        for (const m of t.messages) list.push(m);
        byTopic.set(t.topic, list);
      }
    }
    const topicMessages = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    const settle = this.lastCommitAt + (this.options.commitSettleMs ?? COMMIT_SETTLE_MS) - Date.now();
    if (settle > 0) await abortableSleep(settle, this.closing.signal);
    const transaction = await producer.transaction();
    try {
      // One broker per send: a multi-broker sendBatch can commit records twice (see PartitionRouter).
      await this.router.send(transaction, topicMessages, { acks: -1, compression: CompressionTypes.None });
      await transaction.commit();
      this.lastCommitAt = Date.now();
    } catch (err) {
      // Best effort: if the abort fails too, the fresh producer of reset() settles the transaction.
      await transaction.abort().catch(() => undefined);
      throw err;
    }
  }

  /** Finishes what is queued (or, while Kafka is away, gives it up) and disconnects. */
  async close(): Promise<void> {
    this.closed = true;
    // A drain waiting out an outage would hold shutdown forever; queued units are rejected instead.
    const bound = setTimeout(() => this.closing.abort(), 5_000);
    await this.draining;
    clearTimeout(bound);
    this.closing.abort();
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = undefined;
  }
}

/** Whether a failure says the broker fenced this producer's epoch (kafkajs 2 has no name for code 90). */
function fenced(err: unknown): boolean {
  return errorChain(err).some((e) => {
    const { type, code, message } = (e ?? {}) as { type?: unknown; code?: unknown; message?: unknown };
    return type === 'INVALID_PRODUCER_EPOCH' || code === 90 || /fenced/i.test(String(message ?? ''));
  });
}
