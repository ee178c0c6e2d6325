/**
 * Records too large for Kafka (producers/runtime.ts): one over `kafka.maxMessageBytes` is dead-lettered
 * with its reason and a bounded excerpt instead of failing its page's transaction (which the broker
 * refuses with MESSAGE_TOO_LARGE at every poll, holding up the page's other records for good); its
 * state keeps the hash only, so it is neither dead-lettered again nor tombstoned later; and every dead
 * letter's raw text is bounded so that the letter itself fits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Kafka } from 'kafkajs';
import { configSchema } from '../../../core/config.ts';
import { createLogger } from '../../../core/log.ts';
import type { Emit } from '../../../producers/follow/types.ts';
import type { InstabaseClient } from '../../../producers/instabase/client.ts';
import type { PublishUnit, Publisher } from '../../../producers/publisher.ts';
import { RecordEncoder, stringKeyType } from '../../../producers/record-encoder.ts';
import { ProducerRuntime } from '../../../producers/runtime.ts';
import { StateStore } from '../../../producers/state-store.ts';
import { avroType } from '../../../schemas/index.ts';

const LIMIT = 65_536;

function runtime(topicLimits?: ReadonlyMap<string, number>) {
  const config = configSchema.parse({
    instabase: { apiUrl: 'http://api.invalid/api', token: 't' },
    kafka: { topicPrefix: 't.', maxMessageBytes: LIMIT },
  });
  const units: PublishUnit[] = [];
  const publisher: Publisher = {
    start: async () => undefined,
    publish: async (unit) => {
      units.push(unit);
      unit.onCommitted?.();
    },
    close: async () => undefined,
  };
  const state = new StateStore('t._state', 'runtime-test');
  const logger = createLogger('runtime-test');
  logger.level = 'silent';
  const rt = new ProducerRuntime({
    config,
    kafka: {} as Kafka,
    client: {} as InstabaseClient,
    publisher,
    state,
    encoder: new RecordEncoder(
      new Map([['batches', { valueId: 1, keyId: 2, type: avroType('batches'), keyType: stringKeyType() }]]),
      undefined,
    ),
    logger,
    ...(topicLimits ? { topicLimits } : {}),
  });
  const topic = (name: string) => units.flatMap((u) => u.messages.filter((t) => t.topic === name));
  const letters = () =>
    topic('t.batches.dlq').flatMap((t) =>
      t.messages.map((m) => JSON.parse(String(m.value)) as Record<string, unknown>),
    );
  return { rt, state, units, topic, letters };
}

const batch = (id: number, name: string, stateKey?: string): Emit => ({
  resource: 'batches',
  key: String(id),
  fields: { id, name },
  object: { id, name },
  endpoint: 'GET /v2/batches',
  deleted: false,
  ...(stateKey ? { stateKey } : {}),
});

describe('ProducerRuntime with records over kafka.maxMessageBytes', () => {
  it('dead-letters the large one with a bounded excerpt, publishes the rest, and keeps only its hash', async () => {
    const { rt, state, topic, letters } = runtime();
    const big = batch(1, 'x'.repeat(2 * LIMIT), 'batches/1');
    const small = batch(2, 'two', 'batches/2');
    const entity = (e: Emit) => ({ h: `h${e.key}`, k: e.key, f: e.fields, o: e.object });
    await rt.commit({
      emits: [big, small],
      dead: [],
      state: [
        { key: 'batches/1', value: entity(big) },
        { key: 'batches/2', value: entity(small) },
      ],
    });
    const published = topic('t.batches').flatMap((t) => t.messages);
    assert.equal(published.length, 1, 'the small one is published');
    const [letter] = letters();
    assert.equal(letter?.reason, 'record-too-large');
    assert.match(String(letter?.error), /bytes encoded, more than t\.batches takes \(65536 bytes/);
    assert.ok(String(letter?.raw).length < 20_000, 'an excerpt, not the record');
    assert.match(String(letter?.raw), /cut: \d+ bytes in all/);
    assert.equal(rt.deadLettered.get('batches'), 1, 'counted');
    assert.deepEqual(
      state.get('batches/1'),
      { h: 'h1' },
      'its state keeps the hash only: no tombstone later',
    );
    assert.deepEqual(state.get('batches/2'), entity(small));
    for (const t of topic('t._state'))
      for (const m of t.messages) assert.ok(String(m.value).length < LIMIT, 'no state message is as large');
  });

  it('takes the limits topics made beforehand have, for records and for the state that repeats them', async () => {
    const { rt, state, topic, letters } = runtime(
      new Map([
        ['t.batches', 20_000],
        ['t._state', 50_000],
      ]),
    );
    const entity = (e: Emit) => ({ h: `h${e.key}`, k: e.key, f: e.fields, o: e.object });
    // 30 KB: within the setting, over what the topic takes.
    const overTopic = batch(1, 'x'.repeat(15_000));
    // 10 KB as a record, but its state repeats fields the record does not carry: 55 KB.
    const overState = batch(2, 'y'.repeat(5_000), 'batches/2');
    overState.fields = { id: 2, name: 'y'.repeat(5_000), extra: 'z'.repeat(45_000) };
    const fine = batch(3, 'z', 'batches/3');
    await rt.commit({
      emits: [overTopic, overState, fine],
      dead: [],
      state: [
        { key: 'batches/2', value: entity(overState) },
        { key: 'batches/3', value: entity(fine) },
      ],
    });
    assert.deepEqual(
      topic('t.batches').flatMap((t) => t.messages.map((m) => m.key !== undefined)),
      [true],
      'only the small one goes out',
    );
    assert.deepEqual(
      letters().map((l) => [
        l.reason,
        String(l.error)
          .replace(/\d+/g, 'N')
          .replace(/ bytes: .*/, ')'),
      ]),
      [
        ['record-too-large', 'the record is N bytes encoded, more than t.batches takes (N)'],
        [
          'record-too-large',
          'its cursor state (what its tombstone would repeat) is N bytes, more than t._state takes (N)',
        ],
      ],
    );
    assert.deepEqual(state.get('batches/2'), { h: 'h2' });
  });

  it("bounds every dead letter's raw text, so that the letter fits its topic", async () => {
    const { rt, letters, topic } = runtime();
    await rt.commit({
      emits: [],
      state: [],
      dead: [
        {
          resource: 'batches',
          reason: 'invalid-record',
          error: 'does not match',
          endpoint: 'GET /v2/batches',
          raw: JSON.stringify({ id: 3, name: '"'.repeat(LIMIT) }),
        },
      ],
    });
    assert.equal(letters()[0]?.reason, 'invalid-record');
    const [message] = topic('t.batches.dlq').flatMap((t) => t.messages);
    assert.ok(String(message?.value).length <= LIMIT, `${String(message?.value).length} bytes`);
  });
});
