/**
 * Model-based tests of the sink core (sinks/sink-core.ts) against in-memory fakes of the consumer
 * group, ClickHouse, the dead-letter producer and the registry. fast-check's scheduler picks the order
 * in which every pending operation completes (fetches, timer ticks, inserts, commits, schema fetches,
 * backoff sleeps, rebalances), so each run is one random interleaving, and a failure shrinks to a small
 * one. Invariants:
 *   1. every committed offset's record is in the table (or, if undecodable, in the dead-letter topic);
 *   2. at quiescence, every consumed offset is there and every partition is committed to its end;
 *   3. no delivered record lands twice unless an insert carrying it failed in between (a buffer is
 *      never written twice by two flush paths);
 *   4. the fake ClickHouse drops a block it has seen (a replicated table's block deduplication), and
 *      the sink is killed and restarted at random: a record lands twice only if one of the inserts
 *      that landed it was sent without its flush intent committed (flush-intent.ts). With the intent,
 *      the rebuilt insert after a kill or rebalance is the same block, byte for byte, and is dropped. (An
 *      insert a killed process had sent may land after its successor's: landing order proves nothing.)
 *   5. every request to a dead-letter topic fits what the topic takes (the broker refuses one that does
 *      not at every retry, and the sink stalled there), a dead letter cut to fit is a prefix of its
 *      value with its size in `x-value-bytes`, and no delivery of a poison message is dead-lettered
 *      twice (a retry after a failed request sends only what did not go out; a record read again after a
 *      rebalance or a restart is a new delivery).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Message } from 'kafkajs';
import pino from 'pino';
import type { BatchBuffer } from '../../../sinks/batch-buffer.ts';
import { messageBytes } from '../../../sinks/dead-letter-requests.ts';
import { DecodeError, type Decoded } from '../../../sinks/decoder.ts';
import { decodeIntent } from '../../../sinks/flush-intent.ts';
import type { TopicPartitionOffset } from '../../../sinks/offset-tracker.ts';
import type { IncomingMessage, RecordCoordinates, SinkTarget } from '../../../sinks/ports.ts';
import { LEGACY_FEATURES } from '../../../sinks/schema/features.ts';
import { SinkCore } from '../../../sinks/sink-core.ts';
import { sequence } from '../../../sim/rng.ts';

const logger = pino({ level: 'silent' });
const TOPICS = ['t.a', 't.b'];
const PARTITIONS = 2;
/** max.message.bytes of the dead-letter topics: about two dead letters, and less than a large one. */
const DLQ_LIMIT = 1_000;

/** One partition's log: a record (poison = undecodable) or a transaction marker per offset. */
type Entry = { kind: 'record'; poison: boolean; large?: boolean } | { kind: 'marker' };

interface Scenario {
  logs: Entry[][]; // TOPICS.length * PARTITIONS logs
  seed: number;
  flushRows: number;
  flushMs: number;
  insertFaults: number;
  commitFaults: number;
  registryFaults: number;
  rebalances: number;
  crashes: number;
}

const entry = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Entry>({ kind: 'record', poison: false }) },
  { weight: 1, arbitrary: fc.constant<Entry>({ kind: 'record', poison: true }) },
  // Poison larger than its dead-letter topic takes.
  { weight: 1, arbitrary: fc.constant<Entry>({ kind: 'record', poison: true, large: true }) },
  { weight: 2, arbitrary: fc.constant<Entry>({ kind: 'marker' }) },
);

const scenario: fc.Arbitrary<Scenario> = fc.record({
  logs: fc.array(fc.array(entry, { maxLength: 40 }), {
    minLength: TOPICS.length * PARTITIONS,
    maxLength: TOPICS.length * PARTITIONS,
  }),
  seed: fc.integer(),
  flushRows: fc.integer({ min: 1, max: 12 }),
  flushMs: fc.integer({ min: 1, max: 50 }),
  insertFaults: fc.integer({ min: 0, max: 6 }),
  commitFaults: fc.integer({ min: 0, max: 4 }),
  registryFaults: fc.integer({ min: 0, max: 2 }),
  rebalances: fc.integer({ min: 0, max: 2 }),
  crashes: fc.integer({ min: 0, max: 2 }),
});

const tp = (topic: string, partition: number) => `${topic}:${partition}`;

async function runScenario(sc: Scenario, s: fc.Scheduler): Promise<void> {
  // The simulator's deterministic generator, seeded by fast-check, for the choices the fakes make.
  const random = sequence(sc.seed);
  let clock = 0;
  let faults = { insert: sc.insertFaults, commit: sc.commitFaults, registry: sc.registryFaults };
  const logOf = (topic: string, partition: number) =>
    sc.logs[TOPICS.indexOf(topic) * PARTITIONS + partition]!;
  const step = (label: string) => s.schedule(Promise.resolve(label), label);

  // --- the group member as Kafka sees it
  let generation = 0;
  let rebalancing = false;
  const brokerCommitted = new Map<string, number>();
  const brokerMetadata = new Map<string, string | null>();
  const paused = new Set<string>();
  const violations: string[] = [];

  // --- ClickHouse and the dead-letter topic
  /** Landed rows: "topic:partition:offset" → delivery ids of every copy. */
  const table = new Map<string, number[]>();
  /** Per row key, whether each landed copy came in an insert sent under a committed flush intent. */
  const landedUnderIntent = new Map<string, boolean[]>();
  /** The blocks ClickHouse has stored (their rows' identity, in body order): a repeat is dropped. */
  const blocks = new Set<string>();
  /** Delivery ids that were in an insert that failed (before or after landing). */
  const failedDeliveries = new Set<number>();
  const dlq = new Set<string>();
  /** The deliveries (fetches) of poison messages whose dead letter was sent. */
  const dlqDeliveries = new Set<number>();
  /** Each delivery of a poison message, by delivery id: its value as the log delivered it. */
  const poisonValues = new Map<number, Buffer>();

  const checkCommitted = (offsets: readonly TopicPartitionOffset[]) => {
    for (const o of offsets) {
      const log = logOf(o.topic, o.partition);
      for (let off = 0; off < Number(o.offset); off += 1) {
        const e = log[off];
        if (e?.kind !== 'record') continue;
        const k = `${o.topic}:${o.partition}:${off}`;
        if (e.poison ? !dlq.has(k) : !table.has(k))
          violations.push(`committed ${o.topic}:${o.partition}@${o.offset} before offset ${off} was durable`);
      }
    }
  };

  let nextDelivery = 1;
  const schemasFetched = new Set<number>();
  const decoder = {
    prepare(value: Buffer | null): Promise<void> | undefined {
      const { schema } = JSON.parse(value!.toString()) as { schema: number };
      if (schemasFetched.has(schema)) return undefined;
      return (async () => {
        await step('registry');
        if (faults.registry > 0 && random() < 0.5) {
          faults.registry -= 1;
          throw new Error('registry unreachable');
        }
        schemasFetched.add(schema);
      })();
    },
    decode(value: Buffer | null): Decoded {
      const record = JSON.parse(value!.toString()) as { schema: number; poison: boolean };
      if (record.poison) throw new DecodeError('avro-decode-failed', 'poison');
      return { schemaId: record.schema, type: undefined as never, record };
    },
  };
  const preparedSchemas = new Set<string>();
  const targets: SinkTarget[] = TOPICS.map((topic) => ({
    resource: topic,
    topic,
    dlqTopic: `${topic}.sink-dlq`,
    async prepare(schemaId: number) {
      await step('prepare');
      if (faults.registry > 0 && random() < 0.3) {
        faults.registry -= 1;
        throw new Error('ClickHouse unreachable');
      }
      preparedSchemas.add(`${topic}#${schemaId}`);
    },
    append(record: Record<string, unknown>, schemaId: number, c: RecordCoordinates, buffer: BatchBuffer) {
      assert.ok(preparedSchemas.has(`${topic}#${schemaId}`), 'append before prepare');
      buffer.out(schemaId, [topic])[0]!.push({
        ...c,
        ingested: buffer.ingestedAt,
        delivery: record['delivery'],
      });
    },
  }));

  // --- the sink process: killed and started again at random; a dead one's new calls go nowhere
  let incarnation = 0;
  // A killed process's calls never complete; those it had already sent still do.
  const dead = () => new Promise<never>(() => undefined);
  const makeCore = (me: number) =>
    new SinkCore({
      targets,
      decoder,
      flushRows: sc.flushRows,
      flushBytes: Number.MAX_SAFE_INTEGER,
      flushMs: sc.flushMs,
      retryMaxMs: 10,
      deadLetterLimits: new Map(TOPICS.map((t) => [`${t}.sink-dlq`, DLQ_LIMIT])),
      features: LEGACY_FEATURES,
      logger,
      now: () => clock,
      sleep: async (ms) => {
        await step('sleep');
        clock += ms;
      },
      consumer: {
        async commit(offsets) {
          if (me !== incarnation) return dead();
          const gen = generation;
          await step('commit');
          if (gen !== generation || rebalancing) throw new Error('ILLEGAL_GENERATION');
          if (faults.commit > 0 && random() < 0.5) {
            faults.commit -= 1;
            throw new Error('coordinator not available');
          }
          checkCommitted(offsets);
          for (const o of offsets) {
            brokerCommitted.set(tp(o.topic, o.partition), Number(o.offset));
            brokerMetadata.set(tp(o.topic, o.partition), o.metadata ?? null);
          }
        },
        async committed(topic) {
          if (me !== incarnation) return dead();
          await step('fetch-offsets');
          return Array.from({ length: PARTITIONS }, (_, partition) => ({
            partition,
            offset: brokerCommitted.get(tp(topic, partition)) ?? -1,
            metadata: brokerMetadata.get(tp(topic, partition)) ?? null,
          }));
        },
        pause: (topics) => me === incarnation && topics.forEach((t) => paused.add(t)),
        resume: (topics) => me === incarnation && topics.forEach((t) => paused.delete(t)),
      },
      writer: {
        async insert(_table, body) {
          if (me !== incarnation) return dead();
          const rows = Buffer.concat(body)
            .toString()
            .split('\n')
            .filter(Boolean)
            .map(
              (l) =>
                JSON.parse(l) as {
                  topic: string;
                  partition: number;
                  offset: number;
                  ingested: number;
                  delivery: number;
                },
            );
          await step('insert');
          // Sent under its intent: for every partition of the block, the broker holds the block's
          // announcement (flush-intent.ts) at the announced first offset, spanning the block's rows.
          const span = new Map<number, { first: number; last: number; topic: string }>();
          for (const r of rows) {
            const x = span.get(r.partition);
            span.set(r.partition, {
              topic: r.topic,
              first: Math.min(x?.first ?? Infinity, r.offset),
              last: Math.max(x?.last ?? -1, r.offset),
            });
          }
          const underIntent = [...span].every(([partition, { topic, first, last }]) => {
            const intent = decodeIntent(brokerMetadata.get(tp(topic, partition)));
            const range = intent?.ranges.find((r) => r.partition === partition);
            return (
              intent !== undefined &&
              range !== undefined &&
              intent.ingestedAt === rows[0]!.ingested &&
              brokerCommitted.get(tp(topic, partition)) === range.first &&
              range.first <= first &&
              last <= range.last
            );
          });
          const land = () => {
            const block = rows.map((r) => `${r.topic}:${r.partition}:${r.offset}@${r.ingested}`).join(',');
            if (blocks.has(block)) return;
            blocks.add(block);
            for (const r of rows) {
              const k = `${r.topic}:${r.partition}:${r.offset}`;
              table.set(k, [...(table.get(k) ?? []), r.delivery]);
              landedUnderIntent.set(k, [...(landedUnderIntent.get(k) ?? []), underIntent]);
            }
          };
          const outcome = faults.insert > 0 ? random() : 1;
          if (outcome < 0.6) {
            faults.insert -= 1;
            // Half of the failures land anyway (a timeout after the server took the insert).
            for (const r of rows) failedDeliveries.add(r.delivery);
            if (outcome < 0.3) land();
            throw new Error('ECONNRESET');
          }
          land();
        },
      },
      deadLetters: {
        async send(_topic, messages: Message[]) {
          if (me !== incarnation) return dead();
          await step('dlq');
          const bytes = messages.reduce((n, m) => n + messageBytes(m), 0);
          if (bytes > DLQ_LIMIT) violations.push(`invariant 5: a dead-letter request of ${bytes} bytes`);
          if (faults.insert > 0 && random() < 0.3) {
            faults.insert -= 1;
            throw new Error('NOT_ENOUGH_REPLICAS');
          }
          for (const m of messages) {
            const h = m.headers!;
            const k = `${String(h['x-source-topic'])}:${String(h['x-source-partition'])}:${String(h['x-source-offset'])}`;
            dlq.add(k);
            const value = m.value as Buffer;
            // Even cut, a value keeps its start, which names the delivery.
            const delivery = Number(/"delivery":(\d+)/.exec(value.toString())![1]);
            if (dlqDeliveries.has(delivery))
              violations.push(`invariant 5: delivery ${delivery} of ${k} dead-lettered twice`);
            dlqDeliveries.add(delivery);
            const original = poisonValues.get(delivery)!;
            if (h['x-value-bytes'] !== undefined) {
              assert.equal(h['x-value-bytes'], String(original.length), `invariant 5: ${k} size`);
              assert.deepEqual(value, original.subarray(0, value.length), `invariant 5: ${k} a prefix`);
            } else assert.deepEqual(value, original, `invariant 5: ${k} unchanged`);
          }
        },
      },
    });
  const everything = new Map(
    TOPICS.map((t) => [t, new Set(Array.from({ length: PARTITIONS }, (_, p) => p))]),
  );
  let core = makeCore(incarnation);
  core.assigned(everything);

  // --- the consumer: fetch positions per partition, reset to the committed offsets on every assignment
  const position = new Map<string, number>();
  const assign = () => {
    for (const topic of TOPICS)
      for (let p = 0; p < PARTITIONS; p += 1)
        position.set(tp(topic, p), brokerCommitted.get(tp(topic, p)) ?? 0);
  };
  assign();
  let rebalancesLeft = sc.rebalances;
  let crashesLeft = sc.crashes;
  const remaining = () =>
    TOPICS.flatMap((topic) =>
      Array.from({ length: PARTITIONS }, (_, p) => ({ topic, p })).filter(
        ({ topic, p }) => position.get(tp(topic, p))! < logOf(topic, p).length,
      ),
    );

  const rebalance = async () => {
    rebalancing = true;
    await step('rebalance');
    generation += 1;
    rebalancing = false;
    core.assigned(everything);
    assign();
  };

  // SIGKILL and a new process: the group drops the member, the new one starts from the commits.
  const crash = () => {
    incarnation += 1;
    generation += 1;
    // The new process's consumer has paused nothing.
    paused.clear();
    core = makeCore(incarnation);
    core.assigned(everything);
    assign();
  };

  const consumerLoop = async () => {
    for (let guard = 0; guard < 10_000; guard += 1) {
      await step('fetch');
      if (rebalancesLeft > 0 && random() < 0.05) {
        rebalancesLeft -= 1;
        void rebalance();
      }
      if (crashesLeft > 0 && !rebalancing && random() < 0.04) {
        crashesLeft -= 1;
        crash();
      }
      const open = remaining().filter(({ topic }) => !paused.has(topic));
      if (open.length === 0) {
        if (remaining().length === 0 && !rebalancing) return;
        continue;
      }
      const { topic, p } = open[Math.floor(random() * open.length)]!;
      const log = logOf(topic, p);
      const from = position.get(tp(topic, p))!;
      const to = Math.min(log.length, from + 1 + Math.floor(random() * 8));
      const messages: IncomingMessage[] = [];
      for (let off = from; off < to; off += 1) {
        const e = log[off]!;
        if (e.kind !== 'record') continue;
        const value = {
          schema: off % 3 === 0 ? 2 : 1,
          poison: e.poison,
          delivery: nextDelivery++,
          ...(e.large ? { pad: 'x'.repeat(1_200) } : {}),
        };
        const bytes = Buffer.from(JSON.stringify(value));
        if (e.poison) poisonValues.set(value.delivery, bytes);
        messages.push({ offset: String(off), key: null, value: bytes });
      }
      const gen = generation;
      if (messages.length === 0) {
        // kafkajs resolves a markers-only batch itself and reports it through END_BATCH_PROCESS.
        position.set(tp(topic, p), to);
        core.passed(topic, p, from, to);
        continue;
      }
      let resolved = from - 1;
      await core.handleBatch(
        { topic, partition: p, messages, lastOffset: String(to - 1) },
        {
          resolve: (offset) => {
            if (gen === generation) resolved = Math.max(resolved, Number(offset));
          },
          heartbeat: async () => {
            await step('heartbeat');
            if (rebalancing) throw new Error('REBALANCE_IN_PROGRESS');
          },
          isCurrent: () => gen === generation,
        },
      );
      // kafkajs fetches again from after the last resolved offset (eachBatchAutoResolve: false).
      if (gen === generation) position.set(tp(topic, p), resolved + 1);
    }
    throw new Error('consumer loop did not finish');
  };

  let consuming = true;
  const tickerLoop = async () => {
    while (consuming) {
      await step('tick');
      clock += Math.floor(random() * sc.flushMs * 2);
      core.tick();
    }
  };

  const consumer = consumerLoop().finally(() => (consuming = false));
  const ticker = tickerLoop();
  await s.waitIdle();
  await consumer;
  await ticker;

  // Quiescence: no more faults; flush until every partition is committed to its end.
  faults = { insert: 0, commit: 0, registry: 0 };
  for (let i = 0; i < 5; i += 1) {
    // Records the last assignment never consumed (a rebalance after the loop's last look) are read now.
    if (remaining().length > 0) {
      const c = consumerLoop();
      await s.waitIdle();
      await c;
    }
    const f = core.flush();
    await s.waitIdle();
    await f;
    const behind = TOPICS.flatMap((topic) =>
      Array.from({ length: PARTITIONS }, (_, p) => p).filter(
        (p) => (brokerCommitted.get(tp(topic, p)) ?? 0) < logOf(topic, p).length,
      ),
    );
    if (behind.length === 0) break;
  }

  assert.deepEqual(violations, [], 'invariants 1 and 5: what broke them, as it happened');
  assert.equal(core.failure, undefined);
  for (const topic of TOPICS) {
    for (let p = 0; p < PARTITIONS; p += 1) {
      const log = logOf(topic, p);
      assert.equal(
        brokerCommitted.get(tp(topic, p)) ?? 0,
        log.length,
        `invariant 2: ${tp(topic, p)} committed to its end`,
      );
      log.forEach((e, off) => {
        if (e.kind !== 'record') return;
        const k = `${topic}:${p}:${off}`;
        if (e.poison) assert.ok(dlq.has(k), `invariant 2: poison ${k} dead-lettered`);
        else assert.ok(table.has(k), `invariant 2: ${k} in the table`);
      });
    }
  }
  for (const [k, copies] of landedUnderIntent) {
    if (copies.length > 1 && copies.every(Boolean))
      assert.fail(`invariant 4: ${k} landed twice, every time in an insert sent under its flush intent`);
  }
  for (const [k, deliveries] of table) {
    const seen = new Set<number>();
    for (const d of deliveries) {
      if (seen.has(d) && !failedDeliveries.has(d))
        assert.fail(`invariant 3: delivery ${d} of ${k} inserted twice without a failed insert in between`);
      seen.add(d);
    }
  }
}

describe('sink core: model-based interleavings', () => {
  it('never commits past a record that is not durable, and loses nothing at quiescence', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, fc.scheduler(), (sc, s) => runScenario(sc, s)),
      { numRuns: Number(process.env.MODEL_RUNS ?? 1000), endOnFailure: true, includeErrorInReport: true },
    );
  });
});
