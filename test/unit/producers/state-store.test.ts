/**
 * The cursor state store (producers/state-store.ts) over an in-memory compacted topic: changes apply in
 * order (null forgets a key), values past 2^53 survive the round trip, and `load` reads up to its own
 * fresh marker, skips every marker, and swaps the state in only once the read is complete.
 */
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import fc from 'fast-check';
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import type { Kafka } from 'kafkajs';
import { createLogger } from '../../../core/log.ts';
import type { PublishUnit } from '../../../producers/publisher.ts';
import { StateStore } from '../../../producers/state-store.ts';

const logger = createLogger('test', undefined, 'silent');

interface Record_ {
  key: string;
  value: string | null;
}

/** A topic in memory; a consumer reads it from the start, as read_committed would (everything is committed). */
class MemoryTopic {
  readonly log: Record_[] = [];
  readonly consumerConfigs: unknown[] = [];
  readonly deletedGroups: string[][] = [];
  disconnected = 0;

  kafka(): Kafka {
    return {
      consumer: (config: unknown) => {
        this.consumerConfigs.push(config);
        let stopped = false;
        return {
          connect: async () => undefined,
          subscribe: async () => undefined,
          // Delivers one message per turn of the event loop until disconnected, as a fetch loop does.
          run: async ({ eachMessage }: { eachMessage: (p: unknown) => Promise<void> }) => {
            for (const r of [...this.log]) {
              await new Promise((resolve) => setImmediate(resolve));
              if (stopped) return;
              await eachMessage({
                message: {
                  key: Buffer.from(r.key),
                  value: r.value === null ? null : Buffer.from(r.value),
                },
              });
            }
          },
          disconnect: async () => {
            stopped = true;
            this.disconnected += 1;
          },
        };
      },
      admin: () => ({
        connect: async () => undefined,
        deleteGroups: async (groups: string[]) => void this.deletedGroups.push(groups),
        disconnect: async () => undefined,
      }),
    } as unknown as Kafka;
  }

  /** The publisher's side: a unit's messages land on the topic. */
  send = async (unit: PublishUnit): Promise<void> => {
    for (const t of unit.messages)
      for (const m of t.messages)
        this.log.push({ key: String(m.key), value: m.value === null ? null : String(m.value) });
  };
}

describe('StateStore', () => {
  it('applies changes in order; null forgets a key; entries are by prefix, in key order', async () => {
    const store = new StateStore('state', 'p1');
    store.apply([
      { key: 'runs/1', value: { h: 'a' } },
      { key: 'runs/2', value: { h: 'b' } },
      { key: 'runs_results/_cursor/1', value: { next: 2 } },
      { key: 'runs/1', value: { h: 'c' } },
      { key: 'runs/2', value: null },
    ]);
    assert.deepEqual(store.get('runs/1'), { h: 'c' });
    assert.equal(store.get('runs/2'), undefined);
    assert.deepEqual(await store.collect('runs/'), [['runs/1', { h: 'c' }]]);
    assert.deepEqual(await store.collect('runs'), [
      ['runs/1', { h: 'c' }],
      ['runs_results/_cursor/1', { next: 2 }],
    ]);
  });

  it('writes state losslessly (int64 past 2^53) and a forgotten key as a compaction tombstone', () => {
    const store = new StateStore('state', 'p1');
    assert.deepEqual(
      store.toMessages([
        { key: 'batches/9007199254740993', value: { f: { id: 9007199254740993n } } },
        { key: 'batches/1', value: null },
      ]),
      [
        { key: 'batches/9007199254740993', value: '{"f":{"id":9007199254740993}}' },
        { key: 'batches/1', value: null },
      ],
    );
  });

  it('load reads up to its own marker: tombstones applied, markers skipped, int64 exact', async () => {
    const topic = new MemoryTopic();
    topic.log.push(
      { key: 'runs/1', value: '{"h":"a"}' },
      { key: 'runs/2', value: '{"h":"b"}' },
      { key: '__marker__/p1', value: 'an-earlier-load' },
      { key: '__marker__/p2', value: 'another-instance' },
      { key: 'runs/1', value: null },
      { key: 'batches/3', value: '{"f":{"id":9007199254740993}}' },
    );
    const store = new StateStore('state', 'p1');
    store.apply([{ key: 'stale/key', value: { h: 'x' } }]);
    await store.load(topic.kafka(), topic.send, logger);
    assert.deepEqual(await store.collect(''), [
      ['batches/3', { f: { id: 9007199254740993n } }],
      ['runs/2', { h: 'b' }],
    ]);
    assert.deepEqual(store.get('batches/3'), { f: { id: 9007199254740993n } });
    await store.close();
    const marker = topic.log.at(-1)!;
    assert.equal(marker.key, '__marker__/p1', 'the marker was sent before reading');
    assert.deepEqual(topic.consumerConfigs, [
      {
        groupId: `p1-state-loader-${marker.value}`,
        readUncommitted: false,
        allowAutoTopicCreation: false,
      },
    ]);
    assert.deepEqual(
      topic.deletedGroups,
      [[`p1-state-loader-${marker.value}`]],
      'the loader group is removed',
    );
    assert.equal(topic.disconnected, 1);
  });

  it('shares of one resource keep the same keys apart, each in its namespace (#16)', async () => {
    const topic = new MemoryTopic();
    const plain = new StateStore('state', 'g.runs');
    const [first, second] = ['runs.0', 'runs.1'].map(
      (ns) => new StateStore('state', `g.${ns}`, undefined, ns),
    );
    const write = (store: StateStore, wm: number) =>
      topic.send({
        messages: [{ topic: 'state', messages: store.toMessages([{ key: 'runs/_window', value: { wm } }]) }],
      });
    await write(plain, 1);
    await write(first!, 2);
    await write(second!, 3);
    await topic.send({
      messages: [{ topic: 'state', messages: second!.toMessages([{ key: 'runs/9', value: null }]) }],
    });
    assert.deepEqual(
      topic.log.slice(0, 4).map((r) => r.key),
      ['runs/_window', '@runs.0/runs/_window', '@runs.1/runs/_window', '@runs.1/runs/9'],
    );
    for (const store of [plain, first!, second!]) await store.load(topic.kafka(), topic.send, logger);
    assert.deepEqual(
      await plain.collect(''),
      [['runs/_window', { wm: 1 }]],
      'no namespaced key outside its namespace',
    );
    assert.deepEqual(await first!.collect(''), [['runs/_window', { wm: 2 }]]);
    assert.deepEqual(await second!.collect(''), [['runs/_window', { wm: 3 }]]);
    for (const store of [plain, first!, second!]) await store.close();
  });

  it('a read that does not reach the marker fails and leaves the state as it was', async () => {
    const topic = new MemoryTopic();
    topic.log.push({ key: 'runs/1', value: '{"h":"new"}' });
    const store = new StateStore('state', 'p1');
    store.apply([{ key: 'runs/1', value: { h: 'old' } }]);
    // The marker never lands (its transaction was lost): the read times out.
    await assert.rejects(
      store.load(topic.kafka(), async () => undefined, logger, 50),
      /state topic state was not read to its end within 50 ms/,
    );
    assert.deepEqual(await store.collect(''), [['runs/1', { h: 'old' }]]);
    assert.equal(topic.disconnected, 1, 'the consumer is closed after a failed read too');
  });
});

/** Byte order of UTF-8 keys, which is LevelDB's. */
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

test('the local copy agrees with a map, whatever the interleaving of applies, writes and reads (#14)', async () => {
  const segment = fc.constantFrom(
    'a',
    'b',
    '_window',
    '_cursor',
    '',
    'x/y',
    '12',
    'é',
    '\uFF21',
    '\u{1F600}',
  );
  const key = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'));
  const value = fc.option(
    fc.integer({ min: 0, max: 3 }).map((h) => ({ h })),
    { nil: null },
  );
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('apply' as const),
      changes: fc.array(fc.record({ key, value }), { maxLength: 6 }),
    }),
    // Lets the background writes of the local copy run (or not) before the next step.
    fc.record({ kind: fc.constant('yield' as const), turns: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ kind: fc.constant('read' as const), probe: key, slash: fc.boolean() }),
  );
  await fc.assert(
    // Loaded: the state in a local copy; not loaded (as the unit tests' engines run it): in memory.
    fc.asyncProperty(fc.boolean(), fc.array(op, { maxLength: 40 }), async (loaded, ops) => {
      const topic = new MemoryTopic();
      const store = new StateStore('t', 'i');
      if (loaded) await store.load(topic.kafka(), topic.send, logger);
      const model = new Map<string, { h: number }>();
      try {
        for (const o of ops) {
          if (o.kind === 'apply') {
            store.apply(o.changes);
            for (const c of o.changes) {
              if (c.value === null) model.delete(c.key);
              else model.set(c.key, c.value);
            }
          } else if (o.kind === 'yield') {
            for (let t = 0; t < o.turns; t++) await new Promise((r) => setImmediate(r));
          } else {
            const probe = o.slash ? `${o.probe}/` : o.probe;
            for (const k of [o.probe, probe]) assert.deepEqual(store.get(k), model.get(k), `get ${k}`);
            const want = [...model].filter(([k]) => k.startsWith(probe)).sort(([a], [b]) => byteOrder(a, b));
            assert.deepEqual(await store.collect(probe), want, `prefix ${JSON.stringify(probe)}`);
          }
        }
        for (const k of model.keys()) assert.deepEqual(store.get(k), model.get(k), `get ${k}`);
        assert.deepEqual(
          await store.collect(''),
          [...model].sort(([a], [b]) => byteOrder(a, b)),
        );
      } finally {
        await store.close();
      }
    }),
    { numRuns: 200 },
  );
});

test('a copy a killed producer left behind is removed by the next load of its instance; an open one is not', async () => {
  const root = await mkdtemp(join(tmpdir(), 'state-dir-'));
  try {
    const topic = new MemoryTopic();
    // A store of the same instance that is still open (a unit handed back to this process before
    // its previous run closed): LevelDB's lock keeps its copy from being taken for abandoned.
    const live = new StateStore('t', 'p1', undefined, undefined, root);
    await live.load(topic.kafka(), topic.send, logger);
    const [liveDir] = await readdir(root);
    // What a SIGKILL leaves: a copy no process holds.
    const orphan = 'p1.00000000-0000-0000-0000-000000000000';
    const left = new ClassicLevel(join(root, orphan));
    await left.open();
    await left.put('runs/1', '{}');
    await left.close();
    // Abandoned copies of other instances (a client id no longer used): one untouched for two hours,
    // one just made (it could be another unit's, being created).
    const stale = 'gone.00000000-0000-0000-0000-000000000001';
    const recent = 'gone.00000000-0000-0000-0000-000000000002';
    for (const name of [stale, recent]) {
      const db = new ClassicLevel(join(root, name));
      await db.open();
      await db.close();
    }
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    await utimes(join(root, stale), twoHoursAgo, twoHoursAgo);
    const store = new StateStore('t', 'p1', undefined, undefined, root);
    await store.load(topic.kafka(), topic.send, logger);
    const dirs = await readdir(root);
    assert.ok(!dirs.includes(stale), "another instance's stale abandoned copy is removed");
    assert.ok(dirs.includes(recent), "another instance's recent copy stays");
    await rm(join(root, recent), { recursive: true });
    assert.equal(dirs.length, 3, dirs.join(', '));
    assert.ok(!dirs.includes(orphan), 'the abandoned copy is removed');
    assert.ok(dirs.includes(liveDir!), 'the open copy stays');
    await store.load(topic.kafka(), topic.send, logger);
    assert.equal((await readdir(root)).length, 2, 'a new load replaces its own copy');
    await store.close();
    await live.close();
    assert.deepEqual(await readdir(root), [], 'closing removes the copy');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
