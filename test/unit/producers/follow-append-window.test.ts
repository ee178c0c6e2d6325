/**
 * The append-window strategy (producers/follow/append-window.ts) through in-memory ports: a window is
 * [watermark + 1, now - settle]; each page is committed with the offset of the next, so a poll that dies
 * inside a window resumes the same window at that offset, and the watermark moves to the window's end
 * only with its last page.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { walkAppendWindow, type AppendWindowOptions } from '../../../producers/follow/append-window.ts';
import { declaration, emitted, MemoryApi, offsetSpec, port, type Item } from './follow-ports.ts';

const audit = declaration('audit_logs', offsetSpec('audit_logs', '/audit', 'entries'));
const options: AppendWindowOptions = {
  bounds: (start, end) => ({ query: { start: String(start), end: String(end) } }),
  settleMs: 1_000,
  initialLookbackMs: 10_000,
};

/** Entries at times `t`, listed by [start, end] from the query, in time order. */
function auditApi(entries: Item[]) {
  return new MemoryApi().list('/audit', 'entries', (req) =>
    entries.filter(
      (e) => (e.t as number) >= Number(req.query?.start) && (e.t as number) <= Number(req.query?.end),
    ),
  );
}

const entry = (id: number, t: number): Item => ({ id, v: `e${id}`, t });

describe('walkAppendWindow', () => {
  it('walks [now - lookback, now - settle] first, then from the watermark on', async () => {
    const api = auditApi([entry(1, 991_000), entry(2, 998_000), entry(3, 999_500), entry(4, 1_001_000)]);
    const p = port(api, 1_000_000);
    await walkAppendWindow(p.ctx, audit, options);
    assert.deepEqual(emitted(p), ['1:e1', '2:e2'], 'entry 3 is younger than settleMs: left for later');
    assert.deepEqual(p.state.get('audit_logs/_window'), { wm: 999_000 });
    p.setNow(1_005_000);
    await walkAppendWindow(p.ctx, audit, options);
    assert.deepEqual(emitted(p), ['1:e1', '2:e2', '3:e3', '4:e4']);
    assert.deepEqual(
      api.queries('/audit').map((q) => [q.start, q.end, q.offset]),
      [
        ['990000', '999000', 0],
        ['990000', '999000', 2],
        ['999001', '1004000', 0],
        ['999001', '1004000', 2],
      ],
    );
  });

  it('a poll that dies inside a window resumes that window at the next unpublished page', async () => {
    const entries = [1, 2, 3, 4, 5].map((k) => entry(k, 990_000 + k * 100));
    const api = auditApi(entries);
    const p = port(api, 1_000_000);
    p.failCommitAfter(1);
    await assert.rejects(walkAppendWindow(p.ctx, audit, options), /aborted/);
    assert.deepEqual(emitted(p), ['1:e1', '2:e2']);
    assert.deepEqual(p.state.get('audit_logs/_window'), { wm: 989_999, s: 990_000, e: 999_000, next: 2 });

    // Much later: the window keeps its bounds (not [990_000, now - settle]) and resumes at offset 2.
    p.setNow(1_100_000);
    await walkAppendWindow(p.ctx, audit, options);
    assert.deepEqual(emitted(p), ['1:e1', '2:e2', '3:e3', '4:e4', '5:e5'], 'nothing twice, nothing lost');
    assert.deepEqual(
      api.queries('/audit').map((q) => [q.start, q.end, q.offset]),
      [
        ['990000', '999000', 0],
        ['990000', '999000', 2],
        ['990000', '999000', 2],
        ['990000', '999000', 4],
        ['990000', '999000', 5],
      ],
    );
    assert.deepEqual(p.state.get('audit_logs/_window'), { wm: 999_000 });
  });

  it('an empty window moves the watermark; a window not yet settled is not walked', async () => {
    const api = auditApi([]);
    const p = port(api, 1_000_000);
    await walkAppendWindow(p.ctx, audit, options);
    assert.deepEqual(p.state.get('audit_logs/_window'), { wm: 999_000 });
    p.setNow(1_000_000); // the next window would be [999_001, 999_000]
    await walkAppendWindow(p.ctx, audit, options);
    assert.equal(api.requests.length, 1);
  });
});
