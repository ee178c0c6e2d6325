/**
 * The entity-window strategy and its ready children (producers/follow/entity-window.ts) through in-memory
 * ports: each poll lists [watermark - lookback, now] and moves the watermark only when it is done; open
 * entities that left the window are re-read by key until they are terminal; a parent's children walk
 * resumes at its checkpointed page, and restarts when the parent changed.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import {
  walkEntityWindow,
  walkReadyChildren,
  type ChildCursor,
  type TrackedEntity,
} from '../../../producers/follow/entity-window.ts';
import type { RequestSpec } from '../../../producers/instabase/client.ts';
import {
  cleanUp,
  declaration,
  emitted,
  leftOver,
  MemoryApi,
  offsetSpec,
  port,
  runsWindowOptions,
  walkKeysSettings,
  type Item,
} from './follow-ports.ts';

const runs = declaration('runs', offsetSpec('runs', '/runs', 'runs', 100));
const results = declaration('runs_results', offsetSpec('runs_results', '/runs/{run_id}/results', 'files'));

const options = runsWindowOptions;

/** Runs listed by time window ([from, to] in the query) or by id. */
function runsApi(all: () => Item[], files: (runId: string) => Item[] = () => []) {
  const inQuery = (req: RequestSpec, r: Item) =>
    req.query?.id !== undefined
      ? String(r.id) === req.query.id
      : (r.t as number) >= Number(req.query?.from) && (r.t as number) <= Number(req.query?.to);
  return new MemoryApi()
    .list('/runs', 'runs', (req) => all().filter((r) => inQuery(req, r)))
    .list('/runs/{run_id}/results', 'files', (req) => files(String(req.pathParams?.run_id)));
}

for (const keys of walkKeysSettings())
  describe(`walkEntityWindow, ${keys.title}`, () => {
    afterEach(() => assert.deepEqual(leftOver(keys), [], 'no scratch store outlives its walk'));
    after(() => cleanUp(keys));

    it('starts initialLookbackMs back, then resumes at the watermark minus the lookback', async () => {
      const api = runsApi(() => []);
      const p = port(api, 1_000_000, keys.producers);
      await walkEntityWindow(p.ctx, runs, options);
      assert.deepEqual(p.state.get('runs/_window'), { wm: 1_000_000 });
      p.setNow(1_050_000);
      await walkEntityWindow(p.ctx, runs, options);
      assert.deepEqual(
        api.queries('/runs').map((q) => [q.from, q.to]),
        [
          [900_000, 1_000_000],
          [990_000, 1_050_000],
        ],
      );
      assert.deepEqual(p.state.get('runs/_window'), { wm: 1_050_000 });
    });

    it('a failed poll leaves the watermark, so the next one lists the same window again', async () => {
      const api = runsApi(() => []);
      const p = port(api, 1_000_000, keys.producers);
      await walkEntityWindow(p.ctx, runs, options);
      api.on('/runs', () => new Error('503'));
      p.setNow(1_200_000);
      await assert.rejects(walkEntityWindow(p.ctx, runs, options), /503/);
      assert.deepEqual(p.state.get('runs/_window'), { wm: 1_000_000 });
      api.list('/runs', 'runs', () => []);
      await walkEntityWindow(p.ctx, runs, options);
      assert.deepEqual(api.queries('/runs').at(-1), { from: 990_000, to: 1_200_000, limit: 100, offset: 0 });
    });

    it('re-reads an open run by id after it left the window, publishing each status once', async () => {
      let run: Item = { id: 5, v: 'RUNNING', t: 995_000 };
      const api = runsApi(() => [run]);
      const p = port(api, 1_000_000, keys.producers);
      await walkEntityWindow(p.ctx, runs, options);
      // Far later: the run is behind the window, still RUNNING.
      p.setNow(2_000_000);
      await walkEntityWindow(p.ctx, runs, options);
      run = { ...run, v: 'COMPLETE' };
      p.setNow(2_100_000);
      await walkEntityWindow(p.ctx, runs, options);
      p.setNow(2_200_000);
      await walkEntityWindow(p.ctx, runs, options);
      assert.deepEqual(emitted(p), ['5:RUNNING', '5:COMPLETE']);
      assert.deepEqual(
        api.queries('/runs').filter((q) => q.id !== undefined).length,
        2,
        'read by id while open (twice), never once it is COMPLETE',
      );
      const tracked = p.state.get<TrackedEntity>('runs/5');
      assert.equal(tracked?.open, false);
      assert.equal(tracked?.ready, true, 'a COMPLETE run is kept until its children are walked');
    });

    it('forgets terminal runs well behind the window', async () => {
      const api = runsApi(() => [{ id: 1, v: 'FAILED', t: 985_000 }]);
      const p = port(api, 1_000_000, keys.producers);
      await walkEntityWindow(p.ctx, runs, options);
      assert.notEqual(p.state.get('runs/1'), undefined, 'still tracked');
      p.setNow(1_030_000); // lists from 990_000 (it is not seen), forgets before 980_000: still kept
      await walkEntityWindow(p.ctx, runs, options);
      assert.notEqual(p.state.get('runs/1'), undefined, 'still tracked');
      p.setNow(1_100_000); // lists from 1_020_000, forgets before 1_010_000
      await walkEntityWindow(p.ctx, runs, options);
      assert.equal(p.state.get('runs/1'), undefined);
    });
  });

for (const keys of walkKeysSettings())
  describe(`walkReadyChildren, ${keys.title}`, () => {
    afterEach(() => assert.deepEqual(leftOver(keys), [], 'no scratch store outlives its walk'));
    after(() => cleanUp(keys));

    const files = (n: number) => Array.from({ length: n }, (_, k) => ({ id: k + 1, v: `f${k + 1}` }));

    async function readyRun(v = 'COMPLETE') {
      const run = { id: 7, v, t: 999_000 };
      const api = runsApi(
        () => [run],
        () => files(5),
      );
      const p = port(api, 1_000_000, keys.producers);
      await walkEntityWindow(p.ctx, runs, options);
      p.committed.length = 0;
      return { api, p };
    }

    it('resumes at the checkpointed page after a commit failed, and clears the ready mark at the end', async () => {
      const { api, p } = await readyRun();
      const entity = p.state.get<TrackedEntity>('runs/7')!;
      p.failCommitAfter(1);
      await assert.rejects(
        walkReadyChildren(p.ctx, runs, results, (id) => ({ run_id: id }), 1),
        /aborted/,
      );
      assert.deepEqual(emitted(p), ['1:f1', '2:f2']);
      assert.deepEqual(p.state.get<ChildCursor>('runs_results/_cursor/7'), {
        ph: entity.h,
        next: 2,
        done: false,
      });

      await walkReadyChildren(p.ctx, runs, results, (id) => ({ run_id: id }), 1);
      assert.deepEqual(emitted(p), ['1:f1', '2:f2', '3:f3', '4:f4', '5:f5'], 'no file twice, none lost');
      assert.deepEqual(
        api.queries('/runs/{run_id}/results').map((q) => q.offset),
        [0, 2, 2, 4, 5],
        'the second walk starts at the checkpoint (and ends on an empty page)',
      );
      assert.equal(p.state.get('runs_results/_cursor/7'), undefined);
      assert.equal(p.state.get<TrackedEntity>('runs/7')?.ready, undefined);

      await walkReadyChildren(p.ctx, runs, results, (id) => ({ run_id: id }), 1);
      assert.equal(api.queries('/runs/{run_id}/results').length, 5, 'a walked parent is not walked again');
    });

    it('a cursor of an older version of the parent is not resumed: the walk starts over', async () => {
      const { api, p } = await readyRun();
      p.state.apply([{ key: 'runs_results/_cursor/7', value: { ph: 'older', next: 4, done: false } }]);
      await walkReadyChildren(p.ctx, runs, results, (id) => ({ run_id: id }), 1);
      assert.deepEqual(api.queries('/runs/{run_id}/results')[0]?.offset, 0);
      assert.deepEqual(emitted(p), ['1:f1', '2:f2', '3:f3', '4:f4', '5:f5']);
    });

    it('parents not ready are not walked', async () => {
      const { api, p } = await readyRun('RUNNING');
      await walkReadyChildren(p.ctx, runs, results, (id) => ({ run_id: id }), 1);
      assert.equal(api.queries('/runs/{run_id}/results').length, 0);
    });
  });
