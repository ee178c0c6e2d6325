/**
 * The changes strategy (producers/follow/changes.ts) through in-memory ports: what is new or changed is
 * published once, a record that stops being listed is marked after one complete walk and tombstoned
 * after the second, and a walk that dies half way concludes nothing about disappearance. Each holds with
 * the walk's keys in memory and with them on disk (producers/follow/walk-keys.ts).
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { publishTombstones, walkChanges, type EntityState } from '../../../producers/follow/changes.ts';
import {
  cleanUp,
  declaration,
  emitted,
  leftOver,
  MemoryApi,
  offsetSpec,
  port,
  walkKeysSettings,
  type Item,
} from './follow-ports.ts';

const decl = declaration('batches', offsetSpec('batches', '/items', 'items'));

function setupWith(initial: Item[], producers: Record<string, unknown> = {}) {
  let items = initial;
  const api = new MemoryApi().list('/items', 'items', () => items);
  const p = port(api, undefined, producers);
  const walk = () => tombstoning(p);
  return { api, p, walk, set: (next: Item[]) => void (items = next) };
}

/** A walk of `decl` with tombstones, and the state keys it tombstoned. */
async function tombstoning(p: ReturnType<typeof port>): Promise<{ deleted: string[] }> {
  const deleted: string[] = [];
  await walkChanges(p.ctx, decl, {
    tombstones: true,
    onTombstones: { afterPart: async (keys) => void deleted.push(...keys) },
  });
  return { deleted };
}

const a = { id: 1, v: 'a' };
const b = { id: 2, v: 'b' };
const c = { id: 3, v: 'c' };

for (const keys of walkKeysSettings())
  describe(`walkChanges, ${keys.title}`, () => {
    afterEach(() => assert.deepEqual(leftOver(keys), [], 'no scratch store outlives its walk'));
    after(() => cleanUp(keys));
    const setup = (initial: Item[]) => setupWith(initial, keys.producers);

    it('publishes every record once, then only what changed', async () => {
      const { p, walk, set } = setup([a, b, c]);
      await walk();
      assert.deepEqual(emitted(p), ['1:a', '2:b', '3:c']);
      const commits = p.committed.length;
      await walk();
      assert.deepEqual(emitted(p), ['1:a', '2:b', '3:c'], 'nothing unchanged is published again');
      assert.equal(p.committed.length, commits, 'an unchanged walk commits nothing');
      set([a, { id: 2, v: 'b2' }, c]);
      await walk();
      assert.deepEqual(emitted(p), ['1:a', '2:b', '3:c', '2:b2']);
    });

    it('tombstones a record only after two consecutive complete walks without it', async () => {
      const { p, walk, set } = setup([a, b, c]);
      await walk();
      set([a, c]);
      const first = await walk();
      assert.deepEqual(first.deleted, [], 'one miss is not a deletion');
      assert.deepEqual(emitted(p), ['1:a', '2:b', '3:c']);
      assert.equal(p.state.get<EntityState>('batches/2')?.missed, true, 'the miss is remembered');

      const second = await walk();
      assert.deepEqual(second.deleted, ['batches/2']);
      const tombstone = p.committed.at(-1)!.emits;
      assert.deepEqual(tombstone, [
        {
          resource: 'batches',
          key: '2',
          fields: b,
          object: b,
          endpoint: 'GET /items',
          deleted: true,
        },
      ]);
      assert.equal(p.state.get('batches/2'), undefined, 'the entity is forgotten with its tombstone');
      await walk();
      assert.deepEqual(emitted(p), ['1:a', '2:b', '3:c', '-2'], 'a tombstone is published once');
    });

    it('a record seen again after one miss loses its mark: misses must be consecutive', async () => {
      const { p, walk, set } = setup([a, b]);
      await walk();
      set([a]);
      await walk();
      set([a, b]);
      await walk();
      assert.equal(p.state.get<EntityState>('batches/2')?.missed, undefined);
      set([a]);
      await walk();
      assert.deepEqual(emitted(p), ['1:a', '2:b'], 'still only one miss in a row');
    });

    it('a walk that fails half way neither marks nor tombstones anything', async () => {
      const { api, p, walk, set } = setup([a, b, c]);
      await walk();
      set([a, b]);
      await walk();
      assert.equal(p.state.get<EntityState>('batches/3')?.missed, true);
      // The second page (offset 2) fails: c would be on it, and so would anything after b.
      api.on('/items', (req) =>
        Number(req.query?.offset) === 0 ? { items: [a, b] } : new Error('connection reset'),
      );
      await assert.rejects(walk(), /connection reset/);
      assert.deepEqual(emitted(p), ['1:a', '2:b', '3:c'], 'no tombstone from an incomplete walk');
      assert.equal(p.state.get<EntityState>('batches/3')?.missed, true, 'the mark stays as it was');
    });

    it('a record that breaks the contract but has its id is not taken for gone', async () => {
      const { p, walk, set } = setup([a, b]);
      await walk();
      set([a, { id: 2, v: 42 }]);
      await walk();
      await walk();
      assert.deepEqual(emitted(p), ['1:a', '2:b'], 'no tombstone for an invalid record still listed');
      assert.equal(p.committed.flatMap((s) => s.dead).length, 2, 'it is dead-lettered at each walk instead');
    });

    it('confirmed tombstones (the parent is gone) do not wait for a second walk', async () => {
      const { p, walk } = setup([a, b]);
      await walk();
      const deleted = await publishTombstones(p.ctx, decl, 'batches/', new Set(), 'GET /items', {
        confirmed: true,
      });
      assert.equal(deleted, 2);
      assert.deepEqual(emitted(p), ['1:a', '2:b', '-1', '-2']);
    });
  });

describe('walkChanges over more keys than walkKeysInMemory', () => {
  it('moves them to disk during the walk, and still publishes once and tombstones exactly the missing', async () => {
    const keys = walkKeysSettings()[1]!;
    after(() => cleanUp(keys));
    const all = Array.from({ length: 40 }, (_, i) => ({ id: i + 1, v: `v${i + 1}` }));
    let items: Item[] = all;
    // Every page repeats the record before it, as offset paging over a list that grows at the front does.
    const api = new MemoryApi().list('/items', 'items', () => items);
    const p = port(api, undefined, { ...keys.producers, walkKeysInMemory: 3 });
    const scratch: number[] = [];
    const commit = p.ctx.commit;
    p.ctx.commit = async (step) => {
      scratch.push(leftOver(keys).length);
      await commit(step);
    };
    const dup = { id: 0, v: 'dup' };
    items = [dup, ...all.slice(0, 20), dup, ...all.slice(20)];
    await walkChanges(p.ctx, decl, { tombstones: true });
    assert.ok(
      scratch.some((n) => n === 1),
      'the walk had a scratch store once past 3 keys',
    );
    assert.deepEqual(leftOver(keys), [], 'and removed it');
    assert.deepEqual(
      emitted(p),
      ['0:dup', ...all.map((r) => `${r.id}:${r.v}`)],
      'a record listed twice in one walk is published once',
    );

    const gone = new Set([3, 17, 18, 33, 40]);
    items = all.filter((r) => !gone.has(r.id));
    assert.deepEqual((await tombstoning(p)).deleted, [], 'one miss marks');
    const { deleted } = await tombstoning(p);
    assert.deepEqual(deleted.sort(), ['batches/0', ...[...gone].map((id) => `batches/${id}`)].sort());
    assert.deepEqual(leftOver(keys), []);
  });
});

describe('walkChanges when many entities disappear at once', () => {
  it('concludes them in parts of 1,000, each once and handed on, also when a part fails half way', async () => {
    const all = Array.from({ length: 2_500 }, (_, i) => ({ id: i + 1, v: 'v' }));
    let items: Item[] = all;
    const api = new MemoryApi().list('/items', 'items', () => items);
    const p = port(api);
    const wide = declaration('batches', offsetSpec('batches', '/items', 'items', 100));
    // What a root's walk hands on for its descendants' tombstones (producers/jobs.ts), part by part.
    const handedOn: string[][] = [];
    const walk = () =>
      walkChanges(p.ctx, wide, {
        tombstones: true,
        onTombstones: { afterPart: async (keys) => void handedOn.push(keys) },
      });
    await walk();
    items = [all[0]!];
    const before = p.committed.length;
    await walk();
    const marks = p.committed
      .slice(before)
      .filter((s) => s.state.some((c) => c.value?.missed))
      .map((s) => s.state.length);
    assert.deepEqual(marks, [1_000, 1_000, 499], 'the marks go out in parts');

    // The second part of the tombstones fails: the first is published, the rest waits for the next walk.
    p.failCommitAfter(1);
    await assert.rejects(walk(), /transaction aborted/);
    const first = emitted(p).filter((e) => e.startsWith('-'));
    assert.equal(first.length, 1_000);
    assert.deepEqual(
      handedOn.map((keys) => keys.length),
      [1_000],
      'the part that committed was handed on before the next one failed',
    );
    await walk();
    const tombstones = emitted(p).filter((e) => e.startsWith('-'));
    assert.equal(tombstones.length, 2_499, 'every gone entity has its tombstone');
    assert.equal(new Set(tombstones).size, 2_499, 'and only one');
    assert.equal(new Set(handedOn.flat()).size, 2_499, 'each handed on once');
    assert.equal(handedOn.flat().length, 2_499);
    assert.deepEqual(
      (await p.state.collect('batches/')).map(([k]) => k),
      ['batches/1'],
      'only the one still listed is left in the state',
    );
  });
});
