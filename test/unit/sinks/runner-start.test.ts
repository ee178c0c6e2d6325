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

describe('SinkRunner.start', () => {
  it('closes what it connected when it fails half way, and starts cleanly when tried again', async () => {
    const { kafka, log } = fakeKafka(1);
    const logger = createLogger('runner-start-test');
    logger.level = 'silent';
    const runner = new SinkRunner({
      kafka,
      clickhouse: {} as never,
      decoder: {} as never,
      targets: [],
      groupId: 'g',
      flushRows: 10,
      flushMs: 1_000,
      flushBytes: 1_000_000,
      retryMaxMs: 1_000,
      groupTimeouts: {},
      features: {} as never,
      fromBeginning: true,
      logger,
    });
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
});
