import { randomUUID } from 'node:crypto';
import type { Kafka, Message } from 'kafkajs';
import type { Logger } from '../core/log.ts';
import { parseJson, stringifyJson } from './instabase/json.ts';
import type { PublishUnit } from './publisher.ts';

export type StateValue = Record<string, unknown>;

/** A change to the durable cursor state: a value, or null to forget the key (a compaction tombstone). */
export interface StateChange {
  key: string;
  value: StateValue | null;
}

/**
 * Cursor state (watermarks, per-parent cursors, last-seen hashes) kept in a compacted Kafka topic, as
 * Kafka Connect keeps source offsets. Changes are written in the same transaction as the records they
 * cover and applied in memory only once that transaction commits. The keys (./follow/state-keys.ts):
 *
 * - `<resource>/<id>`, `<resource>/<scope>/<id>`: an entity's last published hash (scope: a parent id);
 * - `<resource>/_window`: a time-windowed resource's watermark;
 * - `<resource>/_tail`: what an append-only resource published from its unsettled tail;
 * - `<child>/_cursor/<parent id>`: where a parent's children walk resumes;
 * - `_pages/<resource>`: the paging guard's page counts (./follow/page-budget.ts);
 * - `__marker__/<instance id>`: the markers `load` writes and reads up to; they are not state and are
 *   never loaded into memory.
 *
 * A store with a namespace (a share of a resource in a producers group, ./follow/shard.ts) writes its
 * keys as `@<namespace>/<key>` in the topic and reads only those: shares of one resource have the same
 * keys (`runs/_window`), and each must see only its own.
 */
export class StateStore {
  private values = new Map<string, StateValue>();
  /**
   * The keys under each of their first two '/'-ended prefixes (`batch_files/`, `batch_files/<batch>/`):
   * tombstones are concluded per scope, once per parent, and a scan of the whole state each time grew
   * with the square of the backlog (a quarter of the producers' CPU at 60k records, #14).
   */
  private byPrefix = new Map<string, Set<string>>();

  /**
   * @param instanceId the transactional id of the publisher that writes this state (it names the markers)
   * @param owns which keys are this store's: in a producers group each unit of work loads only its own
   *   resources' keys, which only its transactional id writes (all keys outside namespaces when unset)
   * @param namespace set: the store's keys are those under `@<namespace>/` in the topic, and only those
   */
  constructor(
    readonly topic: string,
    private readonly instanceId: string,
    private readonly owns: (key: string) => boolean = () => true,
    namespace?: string,
  ) {
    this.prefix = namespace === undefined ? '' : `${NAMESPACED}${namespace}/`;
  }

  /** What this store's keys carry in the topic: `@<namespace>/`, or nothing. */
  private readonly prefix: string;

  /** The store's key of a key read from the topic; undefined when the key is not this store's. */
  private own(topicKey: string): string | undefined {
    if (this.prefix) return topicKey.startsWith(this.prefix) ? topicKey.slice(this.prefix.length) : undefined;
    return !topicKey.startsWith(NAMESPACED) && this.owns(topicKey) ? topicKey : undefined;
  }

  get<T extends StateValue>(key: string): T | undefined {
    return this.values.get(key) as T | undefined;
  }

  /** Every key under a prefix, e.g. all per-entity hashes of one resource, in the order they came. */
  entries<T extends StateValue>(prefix: string): Array<[string, T]> {
    const out: Array<[string, T]> = [];
    // A key starts with a prefix that ends in its first or second '/' exactly when that is one of the
    // key's own indexed prefixes; any other prefix is answered by a scan.
    if (indexedPrefixes(prefix).at(-1) === prefix) {
      for (const key of this.byPrefix.get(prefix) ?? []) out.push([key, this.values.get(key) as T]);
      return out;
    }
    for (const [key, value] of this.values) if (key.startsWith(prefix)) out.push([key, value as T]);
    return out;
  }

  toMessages(changes: StateChange[]): Message[] {
    // State may hold API values past 2^53, so it is written and read with the lossless JSON codec.
    return changes.map((c) => ({
      key: this.prefix + c.key,
      value: c.value === null ? null : stringifyJson(c.value),
    }));
  }

  apply(changes: StateChange[]): void {
    for (const c of changes) {
      if (c.value === null) {
        if (this.values.delete(c.key)) this.unindex(c.key);
      } else {
        if (!this.values.has(c.key)) this.index(c.key);
        this.values.set(c.key, c.value);
      }
    }
  }

  private index(key: string): void {
    for (const prefix of indexedPrefixes(key)) {
      const keys = this.byPrefix.get(prefix);
      if (keys) keys.add(key);
      else this.byPrefix.set(prefix, new Set([key]));
    }
  }

  private unindex(key: string): void {
    for (const prefix of indexedPrefixes(key)) {
      const keys = this.byPrefix.get(prefix);
      keys?.delete(key);
      if (keys?.size === 0) this.byPrefix.delete(prefix);
    }
  }

  /**
   * Reads the topic from the beginning up to a marker this instance writes first. Everything before
   * the marker is then either committed (and read) or aborted (and skipped by read_committed), so the
   * loaded state is complete without reasoning about transaction markers and high-water marks. The
   * state in memory is replaced only once the read is complete, so calling it again (after a
   * transaction whose outcome was unknown) swaps in exactly what is committed. `send` publishes the
   * marker in a transaction of its own.
   */
  async load(
    kafka: Kafka,
    send: (unit: PublishUnit) => Promise<void>,
    logger: Logger,
    timeoutMs = 60_000,
  ): Promise<void> {
    const markerKey = `__marker__/${this.instanceId}`;
    const markerValue = randomUUID();
    await send({ messages: [{ topic: this.topic, messages: [{ key: markerKey, value: markerValue }] }] });

    const values = new Map<string, StateValue>();
    const groupId = `${this.instanceId}-state-loader-${markerValue}`;
    const consumer = kafka.consumer({ groupId, readUncommitted: false, allowAutoTopicCreation: false });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: this.topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`state topic ${this.topic} was not read to its end within ${timeoutMs} ms`)),
          timeoutMs,
        );
        void consumer
          .run({
            autoCommit: false,
            eachMessage: async ({ message }) => {
              const key = message.key?.toString() ?? '';
              if (key.startsWith('__marker__/')) {
                if (key === markerKey && message.value?.toString() === markerValue) {
                  clearTimeout(timer);
                  resolve();
                }
                return;
              }
              const own = this.own(key);
              if (own === undefined) return;
              if (message.value === null) values.delete(own);
              else values.set(own, parseJson(message.value.toString()) as StateValue);
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
      // The loader's group never commits; delete it so loads leave nothing behind on the broker.
      const admin = kafka.admin();
      await admin
        .connect()
        .then(() => admin.deleteGroups([groupId]))
        .catch(() => undefined)
        .finally(() => admin.disconnect());
    }
    this.values = values;
    this.byPrefix = new Map();
    for (const key of values.keys()) this.index(key);
    logger.info({ topic: this.topic, keys: values.size }, 'cursor state loaded');
  }
}

/** What begins the topic keys of a namespaced store; no other key does (they begin with a resource). */
const NAMESPACED = '@';

/** A key's prefixes up to and including its first and its second '/' (fewer when it has fewer). */
function indexedPrefixes(key: string): string[] {
  const out: string[] = [];
  for (let i = key.indexOf('/'); i >= 0 && out.length < 2; i = key.indexOf('/', i + 1))
    out.push(key.slice(0, i + 1));
  return out;
}
