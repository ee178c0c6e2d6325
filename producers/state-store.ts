import { randomUUID } from 'node:crypto';
import type { Kafka, Message } from 'kafkajs';
import type { Logger } from '../core/log.ts';
import { stringifyJson } from './instabase/json.ts';
import { defaultStateDir, LocalState } from './local-state.ts';
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
 * cover and applied here only once that transaction commits. The keys (./follow/state-keys.ts):
 *
 * - `<resource>/<id>`, `<resource>/<scope>/<id>`: an entity's last published hash (scope: a parent id);
 * - `<resource>/_window`: a time-windowed resource's watermark;
 * - `<resource>/_tail`: what an append-only resource published from its unsettled tail;
 * - `<child>/_cursor/<parent id>`: where a parent's children walk resumes;
 * - `_pages/<resource>`: the paging guard's page counts (./follow/page-budget.ts);
 * - `_cascade/<root>/<id>`: a root record tombstoned whose descendants' tombstones are still due (./jobs.ts);
 * - `__marker__/<instance id>`: the markers `load` writes and reads up to; they are not state and are
 *   never loaded.
 *
 * A store with a namespace (a share of a resource in a producers group, ./follow/shard.ts) writes its
 * keys as `@<namespace>/<key>` in the topic and reads only those: shares of one resource have the same
 * keys (`runs/_window`), and each must see only its own.
 *
 * Where the state lives once loaded: in a local LevelDB (./local-state.ts), not on the heap. It grows
 * with the number of entities followed (an entity with tombstones keeps what it last published), and
 * the producers' memory must not (#14). The local copy is only a cache of the topic: every load builds a
 * new one from the topic, so what it holds never decides what is committed. Changes applied since the
 * last write to it wait in `pending`, which reads see first. Before the first load (unit tests with an
 * in-memory Kafka-less context never load), `pending` is all there is.
 */
export class StateStore {
  private local: LocalState | undefined;
  /** Applied changes not yet written to `local` (null: forgotten); all of the state before a load. */
  private pending = new Map<string, StateValue | null>();
  /** The writes of `pending` into `local`, one after the other. */
  private writing: Promise<void> = Promise.resolve();
  private writeScheduled = false;

  /**
   * @param instanceId the transactional id of the publisher that writes this state (it names the markers)
   * @param owns which keys are this store's: in a producers group each unit of work loads only its own
   *   resources' keys, which only its transactional id writes (all keys outside namespaces when unset)
   * @param namespace set: the store's keys are those under `@<namespace>/` in the topic, and only those
   * @param localRoot the directory the local copies are made in (`producers.stateDir`)
   */
  constructor(
    readonly topic: string,
    private readonly instanceId: string,
    private readonly owns: (key: string) => boolean = () => true,
    namespace?: string,
    private readonly localRoot: string = defaultStateDir(),
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
    if (this.pending.has(key)) return (this.pending.get(key) ?? undefined) as T | undefined;
    return this.local?.get(key) as T | undefined;
  }

  /**
   * Every key under a prefix, e.g. all per-entity hashes of one resource, in key order. It is read
   * from a snapshot taken when the iteration starts: changes applied meanwhile are not in it.
   */
  async *entries<T extends StateValue>(
    prefix: string,
    keepKey: (key: string) => boolean = () => true,
  ): AsyncGenerator<[string, T]> {
    if (!this.local) {
      // In LevelDB's order (UTF-8 bytes), which differs from a string sort past U+FFFF.
      const keys = [...this.pending.keys()]
        .filter((k) => k.startsWith(prefix) && keepKey(k))
        .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const snapshot = keys.map((k) => [k, this.pending.get(k)] as const);
      for (const [key, value] of snapshot) if (value) yield [key, value as T];
      return;
    }
    await this.written();
    yield* this.local.entries(prefix, keepKey) as AsyncGenerator<[string, T]>;
  }

  /**
   * The entries under a prefix that pass `keep`, as an array. `keepKey` is asked first, and spares
   * reading the values of the keys it refuses (a walk's tombstone check reads only the missing).
   */
  async collect<T extends StateValue>(
    prefix: string,
    keep: (key: string, value: T) => boolean = () => true,
    keepKey: (key: string) => boolean = () => true,
  ): Promise<Array<[string, T]>> {
    const out: Array<[string, T]> = [];
    for await (const [key, value] of this.entries<T>(prefix, keepKey))
      if (keep(key, value)) out.push([key, value]);
    return out;
  }

  toMessages(changes: StateChange[]): Message[] {
    return changes.map((c) => ({
      key: this.prefix + c.key,
      value: c.value === null ? null : this.json(c.value),
    }));
  }

  /**
   * A value as the topic and the local copy hold it. State may hold API values past 2^53, so it is
   * written and read with the lossless JSON codec. A value is written twice, to the topic and, once
   * committed, to the local copy: the text is made once.
   */
  private json(value: StateValue): string {
    let text = this.texts.get(value);
    if (text === undefined) {
      text = stringifyJson(value);
      this.texts.set(value, text);
    }
    return text;
  }

  private readonly texts = new WeakMap<StateValue, string>();

  /** Applies committed changes: reads see them at once; the local copy gets them in the background. */
  apply(changes: StateChange[]): void {
    for (const c of changes) this.pending.set(c.key, c.value);
    this.scheduleWrite();
  }

  /** Queues one write of `pending` to the local copy, unless one is queued and has not started. */
  private scheduleWrite(): void {
    if (!this.local || this.writeScheduled || this.pending.size === 0) return;
    this.writeScheduled = true;
    const local = this.local;
    this.writing = this.writing.then(() => this.writePending(local));
  }

  private async writePending(local: LocalState): Promise<void> {
    this.writeScheduled = false;
    if (local !== this.local) return; // a load replaced it, and `pending` with it
    const batch = [...this.pending];
    try {
      await local.write(batch.map(([key, value]) => [key, value === null ? null : this.json(value)]));
    } catch (err) {
      // Left in `pending`, where reads still find them; the next apply or entries() tries again.
      this.writeError = err as Error;
      return;
    }
    this.writeError = undefined;
    // A key applied again while the batch was written keeps its newer value in `pending`.
    for (const [key, value] of batch) if (this.pending.get(key) === value) this.pending.delete(key);
  }

  private writeError: Error | undefined;

  /** Resolves once everything applied so far is in the local copy; rejects when it could not be written. */
  private async written(): Promise<void> {
    this.scheduleWrite();
    await this.writing;
    if (this.writeError)
      throw new Error(`the local copy of the cursor state could not be written: ${this.writeError.message}`);
  }

  /**
   * Reads the topic from the beginning up to a marker this instance writes first. Everything before
   * the marker is then either committed (and read) or aborted (and skipped by read_committed), so the
   * loaded state is complete without reasoning about transaction markers and high-water marks. It is
   * read into a new local copy, which replaces the current one only once the read is complete, so
   * calling it again (after a transaction whose outcome was unknown) swaps in exactly what is
   * committed. `send` publishes the marker in a transaction of its own.
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

    const local = await LocalState.create(this.localRoot, this.instanceId, logger);
    const groupId = `${this.instanceId}-state-loader-${markerValue}`;
    const consumer = kafka.consumer({ groupId, readUncommitted: false, allowAutoTopicCreation: false });
    let read = 0;
    try {
      await consumer.connect();
      try {
        await consumer.subscribe({ topic: this.topic, fromBeginning: true });
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () =>
              reject(new Error(`state topic ${this.topic} was not read to its end within ${timeoutMs} ms`)),
            timeoutMs,
          );
          // Written in batches as they come, so a large state never sits in memory whole.
          let batch: Array<[string, string | null]> = [];
          void consumer
            .run({
              autoCommit: false,
              eachMessage: async ({ message }) => {
                const key = message.key?.toString() ?? '';
                if (key.startsWith('__marker__/')) {
                  if (key === markerKey && message.value?.toString() === markerValue) {
                    await local.write(batch);
                    batch = [];
                    clearTimeout(timer);
                    resolve();
                  }
                  return;
                }
                const own = this.own(key);
                if (own === undefined) return;
                read++;
                batch.push([own, message.value === null ? null : message.value.toString()]);
                if (batch.length >= LOAD_BATCH) {
                  const full = batch;
                  batch = [];
                  await local.write(full);
                }
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
    } catch (err) {
      await local.destroy();
      throw err;
    }
    const previous = this.local;
    this.local = local;
    // What was applied before is committed, so the read has it: the new copy replaces all of it.
    this.pending = new Map();
    this.writeScheduled = false;
    this.writeError = undefined;
    const before = this.writing;
    this.writing = Promise.resolve();
    await before;
    await previous?.destroy();
    logger.info({ topic: this.topic, records: read }, 'cursor state loaded');
  }

  /** Closes and removes the local copy (a stopped unit of work). */
  async close(): Promise<void> {
    const local = this.local;
    this.local = undefined;
    this.pending = new Map();
    await this.writing.catch(() => undefined);
    await local?.destroy();
  }
}

/** State records written to the local copy per batch while a load reads the topic. */
const LOAD_BATCH = 2_000;

/** What begins the topic keys of a namespaced store; no other key does (they begin with a resource). */
const NAMESPACED = '@';
