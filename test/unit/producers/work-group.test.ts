/**
 * How a producers group spreads its units of work (producers/work-group.ts, assignUnits): every unit a
 * member can run goes to exactly one such member, evenly, a unit stays where it runs while that is even,
 * and every member computing the plan gets the same one. The shares of a split root (`runs.0`, `runs.1`)
 * land on different members as far as the counts allow.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Admin } from 'kafkajs';
import { rootOfShare } from '../../../producers/follow/shard.ts';
import { assignUnits, growWorkTopic, type MemberUnits } from '../../../producers/work-group.ts';

const UNITS = [
  'conversations.0',
  'conversations.1',
  'conversations.2',
  'batches.0',
  'batches.1',
  'runs.0',
  'runs.1',
  'queries_status',
  'files_metadata',
  'audit_logs',
];
const rootOf = rootOfShare;

const members = fc.uniqueArray(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 6 }).chain((ids) =>
  fc.tuple(
    ...ids.map((id) =>
      fc.record({
        memberId: fc.constant(`m-${id}`),
        runs: fc.subarray(UNITS, { minLength: 0 }),
        owns: fc.subarray(UNITS),
      }),
    ),
  ),
);

describe('assignUnits', () => {
  it('gives every unit some member runs to exactly one member that runs it', () => {
    fc.assert(
      fc.property(members, (ms) => {
        const plan = assignUnits(ms, UNITS);
        const given = [...plan.values()].flat();
        assert.equal(new Set(given).size, given.length, 'no unit twice');
        const runnable = UNITS.filter((u) => ms.some((m) => m.runs.includes(u)));
        assert.deepEqual([...given].sort(), [...runnable].sort(), 'every runnable unit, nothing else');
        for (const [id, units] of plan) {
          const m = ms.find((x) => x.memberId === id)!;
          for (const u of units) assert.ok(m.runs.includes(u), `${id} runs ${u}`);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('spreads units evenly when every member runs all of them, and keeps them where they run', () => {
    fc.assert(
      fc.property(members, (raw) => {
        const ms = raw.map((m) => ({ ...m, runs: UNITS }));
        const plan = assignUnits(ms, UNITS);
        const sizes = [...plan.values()].map((u) => u.length);
        assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `even: ${sizes.join(',')}`);
        // Run again with each member owning what it was given: nothing moves.
        const owned = ms.map((m) => ({ ...m, owns: plan.get(m.memberId)! }));
        assert.deepEqual(assignUnits(owned, UNITS), plan, 'a settled plan is stable');
      }),
      { numRuns: 500 },
    );
  });

  it("spreads a root's shares over the members when it plans from scratch, and keeps that spread", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), (n) => {
        const ms = Array.from({ length: n }, (_, i) => ({ memberId: `m-${i}`, runs: UNITS, owns: [] }));
        const plan = assignUnits(ms, UNITS);
        for (const root of new Set(UNITS.map(rootOf))) {
          const shares = UNITS.filter((u) => rootOf(u) === root).length;
          for (const [id, units] of plan) {
            const held = units.filter((u) => rootOf(u) === root).length;
            assert.ok(held <= Math.ceil(shares / n), `${id} holds ${held} of ${root}'s ${shares} shares`);
          }
        }
        const owned = ms.map((m) => ({ ...m, owns: plan.get(m.memberId)! }));
        assert.deepEqual(assignUnits(owned, UNITS), plan, 'a settled plan is stable');
      }),
    );
  });

  it('a member joining a settled group takes shares of the split roots, not only whole roots', () => {
    const two = ['a', 'b'].map((id) => ({ memberId: id, runs: UNITS, owns: [] as string[] }));
    const settled = assignUnits(two, UNITS);
    const three = [
      ...two.map((m) => ({ ...m, owns: settled.get(m.memberId)! })),
      { memberId: 'c', runs: UNITS, owns: [] },
    ];
    const after = assignUnits(three, UNITS);
    for (const [id, units] of after) {
      assert.ok(units.filter((u) => rootOf(u) === 'conversations').length <= 1, `${id}: ${units.join(', ')}`);
    }
  });

  it('is the same plan whatever order the members come in', () => {
    fc.assert(
      fc.property(members, (ms) => {
        const reversed = [...ms].reverse();
        assert.deepEqual(
          Object.fromEntries(assignUnits(reversed, UNITS)),
          Object.fromEntries(assignUnits(ms, UNITS)),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('a member that dies: only its units move, to the survivors', () => {
    const three: MemberUnits[] = ['a', 'b', 'c'].map((id) => ({ memberId: id, runs: UNITS, owns: [] }));
    const before = assignUnits(three, UNITS);
    const survivors = three
      .filter((m) => m.memberId !== 'b')
      .map((m) => ({ ...m, owns: before.get(m.memberId)! }));
    const after = assignUnits(survivors, UNITS);
    for (const id of ['a', 'c']) {
      for (const u of before.get(id)!) assert.ok(after.get(id)!.includes(u), `${u} stays on ${id}`);
    }
    assert.deepEqual([...after.values()].flat().sort(), [...UNITS].sort(), "b's units are taken over");
    assert.deepEqual(
      [...after.values()].map((u) => u.length),
      [5, 5],
    );
  });
});

describe('growWorkTopic', () => {
  /** An admin over one topic of `partitions` partitions; createPartitions may be made to fail. */
  const admin = (partitions: number, fail?: { grownByOther: boolean }) => {
    const calls: number[] = [];
    const a = {
      fetchTopicMetadata: async () => ({
        topics: [
          { name: 't', partitions: Array.from({ length: partitions }, (_, i) => ({ partitionId: i })) },
        ],
      }),
      createPartitions: async ({ topicPartitions }: { topicPartitions: Array<{ count: number }> }) => {
        calls.push(topicPartitions[0]!.count);
        if (fail) {
          if (fail.grownByOther) partitions = topicPartitions[0]!.count;
          throw new Error('INVALID_PARTITIONS');
        }
        partitions = topicPartitions[0]!.count;
      },
    };
    return { admin: a as unknown as Admin, calls };
  };

  it('adds the partitions a larger layout needs, and nothing when there are enough', async () => {
    const short = admin(6);
    await growWorkTopic(short.admin, 't', 9);
    assert.deepEqual(short.calls, [9]);
    const enough = admin(9);
    await growWorkTopic(enough.admin, 't', 9);
    assert.deepEqual(enough.calls, []);
  });

  it('accepts a topic another member grew first, and fails when it is still short', async () => {
    await growWorkTopic(admin(6, { grownByOther: true }).admin, 't', 9);
    await assert.rejects(
      growWorkTopic(admin(6, { grownByOther: false }).admin, 't', 9),
      /INVALID_PARTITIONS/,
    );
  });
});
