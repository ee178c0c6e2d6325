/**
 * The transactional publisher (producers/publisher.ts) behind its `Publisher` seam, over an in-memory
 * Kafka that records what each transaction committed: units that arrive while a transaction is in
 * flight go into the next one, a transaction stays under its message and byte limits, `onCommitted`
 * runs before `publish` resolves, and a closed publisher takes nothing more. (What happens after a
 * failed transaction is in publisher-reset.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import fc from 'fast-check';
import type { Kafka, Message, TopicMessages } from 'kafkajs';
import { createLogger } from '../../../core/log.ts';
import {
  MAX_BYTES_PER_SEND,
  sendParts,
  TransactionalPublisher,
  type Publisher,
  type PublishUnit,
} from '../../../producers/publisher.ts';

const logger = createLogger('test', undefined, 'silent');

/** A Kafka whose transactions commit when `gate` lets them; each commit is kept as one list. */
class MemoryKafka {
  /** Per committed transaction, its messages as `topic:key`. */
  readonly transactions: string[][] = [];
  readonly events: string[] = [];
  private gate: Promise<void> = Promise.resolve();
  private open: (() => void) | undefined;

  /** Holds every commit until `release()`. */
  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open?.();
    this.gate = Promise.resolve();
  }

  kafka(): Kafka {
    return {
      producer: () => ({
        connect: async () => void this.events.push('connect'),
        disconnect: async () => void this.events.push('disconnect'),
        transaction: async () => {
          const pending: string[] = [];
          return {
            sendBatch: async ({ topicMessages }: { topicMessages: TopicMessages[] }) => {
              for (const t of topicMessages)
                for (const m of t.messages) pending.push(`${t.topic}:${String(m.key)}`);
            },
            commit: async () => {
              await this.gate;
              this.transactions.push(pending);
            },
            abort: async () => undefined,
          };
        },
      }),
    } as unknown as Kafka;
  }
}

const unit = (topic: string, keys: string[], onCommitted?: () => void): PublishUnit => ({
  messages: [{ topic, messages: keys.map((key): Message => ({ key, value: key })) }],
  ...(onCommitted ? { onCommitted } : {}),
});

const keys = (prefix: string, n: number) => Array.from({ length: n }, (_, k) => `${prefix}${k}`);

async function started(kafka: MemoryKafka): Promise<Publisher> {
  const publisher = new TransactionalPublisher(kafka.kafka(), 'tx', logger, { retryMaxMs: 5 });
  await publisher.start();
  return publisher;
}

describe('TransactionalPublisher', () => {
  it('groups the units that arrive during a transaction into the next one, in order', async () => {
    const kafka = new MemoryKafka();
    const publisher = await started(kafka);
    const order: string[] = [];
    kafka.hold();
    const first = publisher.publish(unit('a', ['1'], () => order.push('1 committed')));
    const rest = [
      publisher.publish(unit('b', ['2'], () => order.push('2 committed'))),
      publisher.publish(unit('a', ['3'], () => order.push('3 committed'))),
    ];
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(order.length, 0, 'nothing is applied before its transaction commits');
    kafka.release();
    await first.then(() => order.push('1 resolved'));
    await Promise.all(rest.map((p, k) => p.then(() => order.push(`${k + 2} resolved`))));
    assert.deepEqual(
      kafka.transactions.map((t) => [...t].sort()),
      [['a:1'], ['a:3', 'b:2']],
    );
    assert.deepEqual(order, [
      '1 committed',
      '1 resolved',
      '2 committed',
      '3 committed',
      '2 resolved',
      '3 resolved',
    ]);
    await publisher.close();
  });

  it('a transaction holds at most 5000 messages; a larger unit goes alone', async () => {
    const kafka = new MemoryKafka();
    const publisher = await started(kafka);
    kafka.hold();
    const units = [
      publisher.publish(unit('t', ['first'])),
      publisher.publish(unit('t', keys('a', 3000))),
      publisher.publish(unit('t', keys('b', 2000))),
      publisher.publish(unit('t', keys('c', 1))),
      publisher.publish(unit('t', keys('d', 6000))),
    ];
    kafka.release();
    await Promise.all(units);
    assert.deepEqual(
      kafka.transactions.map((t) => t.length),
      [1, 5000, 1, 6000],
    );
    await publisher.close();
  });

  it('a transaction holds at most 8 MiB', async () => {
    const kafka = new MemoryKafka();
    const publisher = await started(kafka);
    const big = (key: string): PublishUnit => ({
      messages: [{ topic: 't', messages: [{ key, value: Buffer.alloc(3 * 1024 * 1024) }] }],
    });
    kafka.hold();
    const units = [
      publisher.publish(unit('t', ['first'])),
      ...['x', 'y', 'z'].map((k) => publisher.publish(big(k))),
    ];
    kafka.release();
    await Promise.all(units);
    assert.deepEqual(kafka.transactions, [['t:first'], ['t:x', 't:y'], ['t:z']]);
    await publisher.close();
  });

  it('close() finishes what is queued, disconnects, and turns away later units', async () => {
    const kafka = new MemoryKafka();
    const publisher = await started(kafka);
    kafka.hold();
    const queued = [publisher.publish(unit('t', ['1'])), publisher.publish(unit('t', ['2']))];
    const closed = publisher.close();
    await assert.rejects(publisher.publish(unit('t', ['3'])), /publisher is closed/);
    await new Promise((r) => setTimeout(r, 50)); // a slow commit, well within close()'s bound
    kafka.release();
    await Promise.all(queued);
    await closed;
    assert.deepEqual(kafka.transactions, [['t:1'], ['t:2']]);
    assert.deepEqual(kafka.events, ['connect', 'disconnect']);
  });
});

test('a transaction goes out in sends of at most MAX_BYTES_PER_SEND, each partition in its order (#14)', () => {
  const message = fc.record({
    topic: fc.constantFrom('a', 'b', 'state'),
    partition: fc.integer({ min: 0, max: 2 }),
    size: fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 100_000, max: 900_000 })),
  });
  fc.assert(
    fc.property(fc.array(message, { maxLength: 60 }), (specs) => {
      const byTopic = new Map<string, Message[]>();
      specs.forEach((s, i) => {
        const list = byTopic.get(s.topic) ?? [];
        byTopic.set(s.topic, list);
        list.push({ key: `k${i}`, value: 'x'.repeat(s.size), partition: s.partition });
      });
      const topicMessages = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
      const parts = sendParts(topicMessages);
      for (const part of parts) {
        const sizes = part.flatMap((t) =>
          t.messages.map((m) => String(m.value).length + String(m.key).length + 64),
        );
        const bytes = sizes.reduce((a, b) => a + b, 0);
        assert.ok(bytes <= MAX_BYTES_PER_SEND || sizes.length === 1, `a part of ${bytes} bytes`);
      }
      // Every message once, each partition's messages in their order.
      const order = (tms: TopicMessages[]) => {
        const seen = new Map<string, string[]>();
        for (const t of tms)
          for (const m of t.messages) {
            const k = `${t.topic}-${m.partition}`;
            seen.set(k, [...(seen.get(k) ?? []), String(m.key)]);
          }
        return seen;
      };
      assert.deepEqual(order(parts.flat()), order(topicMessages));
    }),
    { numRuns: 300 },
  );
});
