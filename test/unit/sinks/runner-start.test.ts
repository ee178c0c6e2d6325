/**
 * SinkRunner.start() connects a dead-letter producer, an admin and the group consumer. Kafka can go
 * away between the daemon's start-up probe and these connections (a broker restarting resets them: a
 * crash run caught a sink exiting on it), so the daemon retries start() like any outage at start-up;
 * that needs a start that fails half way to leave nothing connected. In-memory kafkajs stand-ins record
 * what was connected and disconnected.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Kafka } from 'kafkajs';
import { createLogger } from '../../../core/log.ts';
import { SinkRunner } from '../../../sinks/runner.ts';

function fakeKafka(failSubscribes: number) {
  const log: string[] = [];
  let fails = failSubscribes;
  const client = (name: string) => ({
    connect: async () => void log.push(`${name} connect`),
    disconnect: async () => void log.push(`${name} disconnect`),
  });
  const kafka = {
    producer: () => client('producer'),
    admin: () => client('admin'),
    consumer: () => ({
      ...client('consumer'),
      events: { GROUP_JOIN: 'join', END_BATCH_PROCESS: 'end', CRASH: 'crash' },
      on: () => () => undefined,
      subscribe: async () => {
        if (fails-- > 0) throw new Error('Connection error: read ECONNRESET');
        log.push('consumer subscribe');
      },
      run: async () => void log.push('consumer run'),
    }),
  };
  return { kafka: kafka as unknown as Kafka, log };
}

/** A runner over the stand-ins, with no targets: only its Kafka clients matter here. */
function runnerOver(kafka: Kafka, retryMaxMs: number): SinkRunner {
  const logger = createLogger('runner-start-test');
  logger.level = 'silent';
  return new SinkRunner({
    kafka,
    clickhouse: {} as never,
    decoder: {} as never,
    targets: [],
    groupId: 'g',
    flushRows: 10,
    flushMs: 1_000,
    flushBytes: 1_000_000,
    retryMaxMs,
    groupTimeouts: {},
    features: {} as never,
    fromBeginning: true,
    logger,
  });
}

describe('SinkRunner.start', () => {
  it('closes what it connected when it fails half way, and starts cleanly when tried again', async () => {
    const { kafka, log } = fakeKafka(1);
    const runner = runnerOver(kafka, 1_000);
    await assert.rejects(runner.start(), /ECONNRESET/);
    assert.deepEqual(log.splice(0), [
      'producer connect',
      'admin connect',
      'consumer connect',
      'consumer disconnect',
      'producer disconnect',
      'admin disconnect',
    ]);
    await runner.start();
    assert.deepEqual(log.splice(0), [
      'producer connect',
      'admin connect',
      'consumer connect',
      'consumer subscribe',
      'consumer run',
    ]);
    await runner.stop(1_000);
    assert.deepEqual(log.sort(), ['admin disconnect', 'consumer disconnect', 'producer disconnect']);
  });

  /**
   * kafkajs reports a failed join as a CRASH after run() resolved. The runner started a new consumer
   * at once each time, so a group that could not be joined was retried in a tight loop; the pause now
   * grows until a consumer joins, and a join resets it.
   */
  it('a consumer kafkajs gave up on is replaced after a pause that grows until one joins', async () => {
    const made: Array<{ at: number; emit: (event: string, payload: unknown) => void }> = [];
    const client = { connect: async () => undefined, disconnect: async () => undefined };
    const kafka = {
      producer: () => client,
      admin: () => client,
      consumer: () => {
        const listeners = new Map<string, (e: { payload: unknown }) => void>();
        made.push({ at: Date.now(), emit: (event, payload) => listeners.get(event)?.({ payload }) });
        return {
          ...client,
          events: { GROUP_JOIN: 'join', END_BATCH_PROCESS: 'end', CRASH: 'crash' },
          on: (event: string, l: (e: { payload: unknown }) => void) => void listeners.set(event, l),
          subscribe: async () => undefined,
          run: async () => undefined,
        };
      },
    } as unknown as Kafka;
    const runner = runnerOver(kafka, 4_000);
    await runner.start();
    const giveUp = () =>
      made
        .at(-1)!
        .emit('crash', { error: new Error('The group coordinator is not available'), restart: false });
    const waitForConsumers = async (n: number) => {
      while (made.length < n) await new Promise((r) => setTimeout(r, 20));
    };
    giveUp();
    await waitForConsumers(2);
    giveUp();
    await waitForConsumers(3);
    const gaps = [made[1]!.at - made[0]!.at, made[2]!.at - made[1]!.at];
    assert.ok(gaps[0]! >= 900 && gaps[1]! >= 1_900, `pauses of about 1 s, then 2 s: ${gaps.join(', ')} ms`);
    // One that joins resets the pause.
    made.at(-1)!.emit('join', { memberAssignment: {} });
    const before = Date.now();
    giveUp();
    await waitForConsumers(4);
    assert.ok(made[3]!.at - before < 1_900, `back to about 1 s: ${made[3]!.at - before} ms`);
    await runner.stop(1_000);
  });
});
