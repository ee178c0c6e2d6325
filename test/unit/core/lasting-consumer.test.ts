/**
 * lastingConsumer (core/lasting-consumer.ts) against fake kafkajs consumers: a member kafkajs gave up on
 * (CRASH with restart false) is replaced until a replacement runs; kafkajs's own restarts, refused
 * credentials, a stopped member and crashes of a replaced member are left alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Consumer } from 'kafkajs';
import pino from 'pino';
import { lastingConsumer } from '../../../core/lasting-consumer.ts';

const logger = pino({ level: 'silent' });

class FakeConsumer {
  readonly events = { CRASH: 'consumer.crash', GROUP_JOIN: 'consumer.group_join' };
  private readonly listeners = new Map<string, Array<(e: { payload: unknown }) => void>>();
  began = 0;
  disconnected = 0;
  on(event: string, listener: (e: { payload: unknown }) => void) {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return () => undefined;
  }
  crash(error: Error, restart: boolean) {
    for (const l of this.listeners.get(this.events.CRASH) ?? []) l({ payload: { error, restart } });
  }
  join() {
    for (const l of this.listeners.get(this.events.GROUP_JOIN) ?? []) l({ payload: {} });
  }
  async disconnect() {
    this.disconnected += 1;
  }
}

const named = (name: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(name), { name, ...extra });

/** Lets the replacement loop (a few awaits deep) run. */
const settle = () => new Promise((r) => setImmediate(r));

function harness(failBegins = 0, during?: (c: FakeConsumer) => Promise<void>) {
  const made: FakeConsumer[] = [];
  const delays: number[] = [];
  let failures = failBegins;
  return {
    made,
    delays,
    start: () =>
      lastingConsumer({
        what: 'the test consumer',
        logger,
        retryMaxMs: 4_000,
        sleep: async (ms) => void delays.push(ms),
        create: () => {
          const c = new FakeConsumer();
          made.push(c);
          return c as unknown as Consumer;
        },
        begin: async (c) => {
          // The first member always starts; replacements fail `failBegins` times.
          if (made.length > 1 && failures > 0) {
            failures -= 1;
            throw named('KafkaJSConnectionError');
          }
          (c as unknown as FakeConsumer).began += 1;
          await during?.(c as unknown as FakeConsumer);
        },
      }),
  };
}

test('a member kafkajs gave up on is replaced, after capped backoff while Kafka is away', async () => {
  const h = harness(3);
  const lasting = await h.start();
  const first = h.made[0]!;
  assert.equal(lasting.current, first as unknown as Consumer);

  // kafkajs restarts this one itself.
  first.crash(named('KafkaJSNumberOfRetriesExceeded'), true);
  await settle();
  assert.equal(h.made.length, 1);

  // This one it gives up on.
  first.crash(named('KafkaJSGroupCoordinatorNotFound'), false);
  for (let i = 0; i < 20; i += 1) await settle();
  assert.equal(h.made.length, 5, 'three replacements failed to begin, the fourth runs');
  assert.deepEqual(h.delays, [1_000, 2_000, 4_000, 4_000], 'capped at retryMaxMs');
  const running = h.made[4]!;
  assert.equal(running.began, 1);
  assert.equal(lasting.current, running as unknown as Consumer);
  assert.ok(first.disconnected >= 1, 'the member given up on is disconnected');
  for (const failed of h.made.slice(1, 4)) assert.ok(failed.disconnected >= 1);

  // A late crash of a replaced member changes nothing.
  first.crash(named('KafkaJSGroupCoordinatorNotFound'), false);
  await settle();
  assert.equal(h.made.length, 5);

  await lasting.stop();
  assert.equal(running.disconnected, 1);
  running.crash(named('KafkaJSGroupCoordinatorNotFound'), false);
  await settle();
  assert.equal(h.made.length, 5, 'no replacement after stop');
});

test('refused credentials are not retried', async () => {
  const h = harness();
  await h.start();
  h.made[0]!.crash(named('KafkaJSProtocolError', { type: 'GROUP_AUTHORIZATION_FAILED' }), false);
  h.made[0]!.crash(named('KafkaJSSASLAuthenticationError'), false);
  await settle();
  assert.equal(h.made.length, 1);
});

test("the first member's failure is the caller's, with nothing left connected", async () => {
  const made: FakeConsumer[] = [];
  await assert.rejects(
    lastingConsumer({
      what: 'the test consumer',
      logger,
      retryMaxMs: 10,
      create: () => {
        const c = new FakeConsumer();
        made.push(c);
        return c as unknown as Consumer;
      },
      begin: async () => {
        throw named('KafkaJSConnectionError');
      },
    }),
    /KafkaJSConnectionError/,
  );
  assert.equal(made.length, 1);
  assert.equal(made[0]!.disconnected, 1);
});

/**
 * kafkajs reports a failed join as a CRASH after run() resolved: a replacement that "started" may be
 * given up on at once. Each such round waits longer; a member that joins resets the backoff.
 */
test('replacements that start but fail to join back off until one joins', async () => {
  const h = harness();
  await h.start();
  const giveUp = () => h.made.at(-1)!.crash(named('KafkaJSGroupCoordinatorNotFound'), false);
  for (let round = 0; round < 5; round += 1) {
    giveUp();
    for (let i = 0; i < 10; i += 1) await settle();
  }
  assert.equal(h.made.length, 6);
  assert.deepEqual(h.delays, [1_000, 2_000, 4_000, 4_000, 4_000]);
  h.made.at(-1)!.join();
  giveUp();
  for (let i = 0; i < 10; i += 1) await settle();
  assert.equal(h.delays.at(-1), 1_000, 'a member that joined resets the backoff');
});

test('stop() while a replacement is starting leaves nothing running, and no more follow', async () => {
  let release!: () => void;
  const h = harness(0, async (c) => {
    if (c === h.made[1]) await new Promise<void>((r) => (release = r));
  });
  const lasting = await h.start();
  h.made[0]!.crash(named('KafkaJSGroupCoordinatorNotFound'), false);
  for (let i = 0; i < 10; i += 1) await settle();
  assert.equal(h.made.length, 2, 'the replacement is starting');
  await lasting.stop();
  release();
  for (let i = 0; i < 10; i += 1) await settle();
  assert.equal(h.made[1]!.disconnected, 2, 'disconnected by stop, and again once its start finished');
  h.made[1]!.crash(named('KafkaJSGroupCoordinatorNotFound'), false);
  for (let i = 0; i < 10; i += 1) await settle();
  assert.equal(h.made.length, 2);
});
