import type { Kafka, Message } from 'kafkajs';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import { redact } from '../core/secrets.ts';
import { producerDlqTopic, resourceTopic, stateTopic } from '../core/topics.ts';
import { deadLetterMessage, excerpt, type DeadLetter } from './dead-letter.ts';
import type { EngineContext, Step } from './follow/types.ts';
import type { InstabaseClient } from './instabase/client.ts';
import { stringifyJson } from './instabase/json.ts';
import type { InstabaseError } from './instabase/errors.ts';
import type { Publisher } from './publisher.ts';
import type { RecordEncoder } from './record-encoder.ts';
import type { StateStore } from './state-store.ts';

export interface RuntimeDeps {
  config: Config;
  kafka: Kafka;
  client: InstabaseClient;
  publisher: Publisher;
  state: StateStore;
  encoder: RecordEncoder;
  logger: Logger;
  now?: () => number;
  /** Shared by the runtimes of one process's work units, so that its totals are one place. */
  counters?: RuntimeCounters;
  /**
   * Per topic, the largest record batch it takes (`max.message.bytes`, read at start-up): a topic made
   * beforehand may take less than `kafka.maxMessageBytes`. Unset: what the pipeline creates topics with.
   */
  topicLimits?: ReadonlyMap<string, number>;
}

/** Committed records and dead letters per resource, counted once their transaction has committed. */
export interface RuntimeCounters {
  published: Map<string, number>;
  deadLettered: Map<string, number>;
}

/**
 * The runtime half of the Kafka Connect split: sources hand it steps (records, dead letters, state);
 * it encodes the records, dead-letters what does not encode, and publishes all of it with the state
 * in one transaction. Counters move only once the transaction has committed.
 */
export class ProducerRuntime {
  readonly published: Map<string, number>;
  readonly deadLettered: Map<string, number>;

  constructor(private readonly deps: RuntimeDeps) {
    this.published = deps.counters?.published ?? new Map();
    this.deadLettered = deps.counters?.deadLettered ?? new Map();
  }

  private readonly inFlight = new Set<Promise<void>>();

  /**
   * The context of one poll. Once `signal` is aborted (the scheduler aborts a poll that failed), its
   * commits are refused: branches of the poll that were still running (a fan-out whose sibling
   * failed) must not publish while the next poll walks the same cursors again, or both would
   * publish the same pages.
   */
  context(signal: AbortSignal, logger: Logger): EngineContext {
    return {
      config: this.deps.config,
      client: this.deps.client,
      state: this.deps.state,
      logger,
      commit: (step) => {
        if (signal.aborted) {
          return Promise.reject(
            new Error(
              'this poll is over (it failed or the producers are stopping); the step is not published',
            ),
          );
        }
        return this.tracked(this.commit(step));
      },
      now: this.deps.now ?? Date.now,
      signal,
    };
  }

  private tracked(commit: Promise<void>): Promise<void> {
    const settled = commit.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return commit;
  }

  /** Resolves once every commit handed over so far has committed or failed. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  async commit(step: Step): Promise<void> {
    const { config, encoder, state, publisher } = this.deps;
    const fetchedAt = (this.deps.now ?? Date.now)();
    const byTopic = new Map<string, Message[]>();
    const push = (topic: string, message: Message) => {
      const list = byTopic.get(topic);
      if (list) list.push(message);
      else byTopic.set(topic, [message]);
    };
    const counts = new Map<string, number>();
    const { maxMessageBytes } = config.kafka;
    const dead: DeadLetter[] = [...step.dead];
    /** State keys of records that cannot be published: their state keeps only the hash. */
    const unpublished = new Set<string>();
    const stateOf = new Map(step.state.map((c) => [c.key, c]));
    for (const emit of step.emits) {
      try {
        const message = encoder.encode(emit, fetchedAt);
        const topic = resourceTopic(config, emit.resource);
        const bytes = byteLength(message.key) + byteLength(message.value);
        // The state that repeats the record for its tombstone must fit the state topic as well.
        const change = emit.stateKey === undefined ? undefined : stateOf.get(emit.stateKey);
        const [stateMessage] = change ? state.toMessages([change]) : [];
        const stateBytes = stateMessage ? byteLength(stateMessage.key) + byteLength(stateMessage.value) : 0;
        const tooLarge =
          bytes > this.limit(topic)
            ? `the record is ${bytes} bytes encoded, more than ${topic} takes (${this.limit(topic)} bytes: ` +
              `kafka.maxMessageBytes, or less when the topic's max.message.bytes is lower)`
            : stateBytes > this.limit(stateTopic(config))
              ? `its cursor state (what its tombstone would repeat) is ${stateBytes} bytes, more than ` +
                `${stateTopic(config)} takes (${this.limit(stateTopic(config))} bytes: twice ` +
                `kafka.maxMessageBytes, or less when the topic's max.message.bytes is lower)`
              : undefined;
        if (tooLarge) {
          const raw = stringifyJson(emit.object);
          dead.push({
            resource: emit.resource,
            reason: 'record-too-large',
            error: tooLarge,
            endpoint: emit.endpoint,
            key: emit.key,
            raw: excerpt(raw, RAW_EXCERPT_CHARS),
            ibContext: config.instabase.context,
            details: {
              encodedBytes: bytes,
              stateBytes,
              maxMessageBytes,
              rawBytes: Buffer.byteLength(raw),
              deleted: emit.deleted,
            },
          });
          if (emit.stateKey !== undefined) unpublished.add(emit.stateKey);
          continue;
        }
        push(topic, message);
        counts.set(emit.resource, (counts.get(emit.resource) ?? 0) + 1);
      } catch (err) {
        if (emit.stateKey !== undefined) unpublished.add(emit.stateKey);
        dead.push({
          resource: emit.resource,
          reason: 'unmappable-record',
          error: (err as Error).message,
          endpoint: emit.endpoint,
          key: emit.key,
          raw: stringifyJson(emit.object),
          ibContext: config.instabase.context,
        });
      }
    }
    for (const letter of dead) {
      this.deps.logger.warn(
        { resource: letter.resource, reason: letter.reason, endpoint: letter.endpoint },
        redact(letter.error),
      );
      // Its raw text is bounded so that the letter fits its topic, escaped inside JSON.
      const topic = producerDlqTopic(config, letter.resource);
      const raw =
        letter.raw === undefined ? undefined : excerpt(letter.raw, Math.floor(this.limit(topic) / 4));
      push(topic, deadLetterMessage({ ...letter, raw }));
    }
    // What never went out needs no tombstone (and the state of one too large would be as large). The
    // hash stays, so the same version is not dead-lettered again at every poll.
    const changes = unpublished.size
      ? step.state.map((c) =>
          unpublished.has(c.key) && c.value ? { key: c.key, value: { h: c.value.h } } : c,
        )
      : step.state;
    for (const message of state.toMessages(changes)) push(stateTopic(config), message);
    if (byTopic.size === 0) return;
    await publisher.publish({
      messages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      onCommitted: () => {
        state.apply(changes);
        for (const [resource, n] of counts) {
          metrics.recordsPublished.inc({ resource }, n);
          this.published.set(resource, (this.published.get(resource) ?? 0) + n);
        }
        for (const letter of dead) {
          metrics.deadLettered.inc({ resource: letter.resource, stage: 'producer' });
          this.deadLettered.set(letter.resource, (this.deadLettered.get(letter.resource) ?? 0) + 1);
        }
      },
    });
  }

  /**
   * The largest message (key and value) a topic takes: `kafka.maxMessageBytes`, twice it for the state
   * topic, as the pipeline creates them, or less when the topic itself takes less.
   */
  private limit(topic: string): number {
    const { config, topicLimits } = this.deps;
    const wanted =
      topic === stateTopic(config) ? 2 * config.kafka.maxMessageBytes : config.kafka.maxMessageBytes;
    const takes = topicLimits?.get(topic);
    return takes === undefined ? wanted : Math.min(wanted, takes - BATCH_OVERHEAD);
  }

  /** A page-level failure that retries could not cure: the response itself goes to the dead letters. */
  async deadLetterFailure(resource: string, err: InstabaseError): Promise<void> {
    await this.commit({
      emits: [],
      state: [],
      dead: [
        {
          resource,
          reason: 'malformed-response',
          error: err.message,
          endpoint: err.endpoint,
          requestPath: err.requestPath,
          raw: err.bodyExcerpt,
          ibContext: this.deps.config.instabase.context,
          details: { code: err.code, status: err.status ?? null, attempts: err.attempts },
        },
      ],
    });
  }
}

/** What a record batch of one record adds to the record (batch header, record framing), with room to spare. */
const BATCH_OVERHEAD = 1_024;

/** The characters of a record's JSON a `record-too-large` dead letter keeps: enough to tell which it is. */
const RAW_EXCERPT_CHARS = 16_384;

const byteLength = (v: Message['value'] | Message['key']): number =>
  v == null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length;
