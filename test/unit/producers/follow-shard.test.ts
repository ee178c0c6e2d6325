/**
 * Shares of a root resource (producers/follow/shard.ts, #16): every record, valid or not, belongs to
 * exactly one share; shares walking the same listing, each with its own state, publish together exactly
 * what one unsharded walk publishes, each record once, tombstones included; the same holds for the
 * entity-window strategy and its ready children.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { walkChanges } from '../../../producers/follow/changes.ts';
import { walkEntityWindow, walkReadyChildren } from '../../../producers/follow/entity-window.ts';
import { ownedPage, shardOf } from '../../../producers/follow/shard.ts';
import type { Page } from '../../../producers/instabase/paginators.ts';
import {
  declaration,
  emitted,
  MemoryApi,
  offsetSpec,
  port,
  runsWindowOptions,
  type Item,
  type Port,
} from './follow-ports.ts';

const batches = {
  ...declaration('batches', offsetSpec('batches', '/items', 'items', 3)),
  // As the real declarations do, a record without its id cannot be keyed.
  key: (r: Item) => {
    if (r.id === undefined) throw new Error('no id');
    return String(r.id);
  },
};

/** A page of records as the walker yields it: ids that are numbers are valid, others break the contract. */
function pageOf(ids: Array<number | string | null>): Page<unknown> {
  const items = ids.map((id, index) =>
    typeof id === 'number'
      ? { ok: true as const, index, record: { id, v: 'x' } }
      : {
          ok: false as const,
          index,
          raw: id === null ? { v: 'no id' } : { id, v: 'x' },
          rawJson: '{}',
          issues: [],
        },
  );
  return {
    resource: 'batches',
    endpoint: 'GET /items',
    requestPath: '/items',
    pathParams: {},
    pageIndex: 0,
    position: { kind: 'offset', offset: 0 },
    next: undefined,
    last: true,
    items,
    records: items.flatMap((i) => (i.ok ? [i.record] : [])),
    invalid: items.flatMap((i) => (i.ok ? [] : [i])),
    meta: undefined,
    attempts: 1,
  };
}

describe('shares of a root resource', () => {
  it('hash keys the same way on every member and in every version', () => {
    // Pinned: a change here moves parents between shares, and each share's state would not match them.
    assert.deepEqual(
      ['1', '2', '3', 'abc', 'conv-7'].map((k) => shardOf(k, 4)),
      [3, 3, 2, 2, 1],
    );
  });

  it('give every record of a page, valid or not, to exactly one share; keyless ones to share 0', () => {
    const ids = fc.array(fc.oneof(fc.integer({ min: 0, max: 10_000 }), fc.string(), fc.constant(null)), {
      maxLength: 40,
    });
    fc.assert(
      fc.property(ids, fc.integer({ min: 1, max: 8 }), (list, count) => {
        const page = pageOf(list);
        const shares = Array.from({ length: count }, (_, index) =>
          ownedPage(batches, page, { index, count }),
        );
        const owners = page.items.map((item) => shares.filter((s) => s.items.includes(item)).length);
        assert.ok(
          owners.every((n) => n === 1),
          `each item in exactly one share: ${owners.join(',')}`,
        );
        for (const s of shares) {
          assert.deepEqual(
            s.records,
            s.items.flatMap((i) => (i.ok ? [i.record] : [])),
          );
          assert.deepEqual(
            s.invalid,
            s.items.filter((i) => !i.ok),
          );
        }
        list.forEach((id, i) => {
          if (id === null)
            assert.ok(shares[0]!.items.includes(page.items[i]!), 'a keyless record is share 0');
        });
      }),
      { numRuns: 300 },
    );
  });

  it('walk changes together exactly as one walk does, each record once, tombstones by their owner', async () => {
    let items: Item[] = Array.from({ length: 40 }, (_, i) => ({ id: i, v: `v${i}` }));
    const api = () => new MemoryApi().list('/items', 'items', () => items);
    const whole = port(api());
    const count = 3;
    const shares = Array.from({ length: count }, () => port(api()));
    const walkAll = async () => {
      await walkChanges(whole.ctx, batches, { tombstones: true });
      for (const [index, p] of shares.entries())
        await walkChanges(p.ctx, batches, { tombstones: true, shard: { index, count } });
    };
    const union = () => shares.flatMap(emitted).sort();
    await walkAll();
    assert.deepEqual(union(), emitted(whole).sort());
    assert.ok(
      shares.every((p) => emitted(p).length > 0),
      'every share has some of the records',
    );
    items = items.filter((r) => r.id !== 7).map((r) => (r.id === 9 ? { ...r, v: 'changed' } : r));
    await walkAll();
    await walkAll();
    assert.deepEqual(union(), emitted(whole).sort(), 'changes and tombstones alike');
    assert.ok(emitted(whole).includes('-7'));
    assert.equal(shares.flatMap(emitted).filter((e) => e === '-7').length, 1, 'one tombstone, by its owner');
    const keys = shares.flatMap(emitted);
    assert.equal(new Set(keys).size, keys.length, 'no share publishes what another does');
  });

  it('walk an entity window and its ready children together exactly as one walk does', async () => {
    const runs = declaration('runs', offsetSpec('runs', '/runs', 'runs', 4));
    const results = declaration(
      'runs_results',
      offsetSpec('runs_results', '/runs/{run_id}/results', 'files'),
    );
    const all: Item[] = Array.from({ length: 30 }, (_, i) => ({
      id: i,
      v: i % 3 === 0 ? 'RUNNING' : 'COMPLETE',
      t: 999_000 + i,
    }));
    const api = () =>
      new MemoryApi()
        .list('/runs', 'runs', () => all)
        .list('/runs/{run_id}/results', 'files', (req) => [
          { id: Number(req.pathParams?.run_id) * 100, v: 'r1' },
          { id: Number(req.pathParams?.run_id) * 100 + 1, v: 'r2' },
        ]);
    const poll = async (p: Port, shard?: { index: number; count: number }) => {
      await walkEntityWindow(p.ctx, runs, { ...runsWindowOptions, ...(shard ? { shard } : {}) });
      await walkReadyChildren(p.ctx, runs, results, (key) => ({ run_id: key }), 2);
    };
    const whole = port(api());
    await poll(whole);
    const shares = [port(api()), port(api())];
    for (const [index, p] of shares.entries()) await poll(p, { index, count: 2 });
    const union = shares.flatMap(emitted).sort();
    assert.deepEqual(union, emitted(whole).sort());
    assert.equal(new Set(union).size, union.length, 'each run and result once');
    assert.equal(
      emitted(whole).filter((e) => e.endsWith(':r1')).length,
      20,
      'the complete runs have results',
    );
  });
});
