/**
 * The append-window strategy (producers/follow/append-window.ts) through in-memory ports: a window is
 * [watermark + 1, now - settle]; each page is committed with the offset of the next, so a poll that dies
 * inside a window resumes the same window at that offset, and the watermark moves to the window's end
 * only with its last page. Each poll then walks the unsettled tail (now - settle, now] whole, and the
 * settled window that reaches the same entries later skips what the tail published.
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
  tailStateBytes: 1_000_000,
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
const bounds = (api: MemoryApi) => api.queries('/audit').map((q) => [q.start, q.end, q.offset]);
const noTail: AppendWindowOptions = { ...options, settleMs: 0 };

describe('walkAppendWindow', () => {
  it('walks [now - lookback, now - settle], then the tail up to now; the next window skips what the tail published', async () => {
    const api = auditApi([entry(1, 991_000), entry(2, 998_000), entry(3, 999_500), entry(4, 1_001_000)]);
    const p = port(api, 1_000_000);
    await walkAppendWindow(p.ctx, audit, options);
    assert.deepEqual(emitted(p), ['1:e1', '2:e2', '3:e3'], 'entry 3 comes from the tail, entry 4 is later');
    assert.deepEqual(p.state.get('audit_logs/_window'), { wm: 999_000 });
    assert.deepEqual(p.state.get('audit_logs/_tail'), { keys: { '3': 1_000_000 } });
    p.setNow(1_005_000);
    await walkAppendWindow(p.ctx, audit, options);
    assert.deepEqual(emitted(p), ['1:e1', '2:e2', '3:e3', '4:e4'], 'nothing twice');
    assert.deepEqual(bounds(api), [
      ['990000', '999000', 0],
      ['990000', '999000', 2],
      ['999001', '1000000', 0],
      ['999001', '1000000', 1],
      ['999001', '1004000', 0],
      ['999001', '1004000', 2],
      ['1004001', '1005000', 0],
    ]);
    assert.deepEqual(p.state.get('audit_logs/_window'), { wm: 1_004_000 });
    assert.equal(p.state.get('audit_logs/_tail'), undefined, 'the watermark passed every tail entry');
  });

  it('an entry written late into the tail is published by the settled window that reaches it', async () => {
    const entries = [entry(1, 999_200)];
    const api = auditApi(entries);
    const p = port(api, 1_000_000);
    await walkAppendWindow(p.ctx, audit, options);
    assert.deepEqual(emitted(p), ['1:e1']);
    entries.push(entry(2, 999_100)); // written after the tail was walked, with an earlier time
    p.setNow(1_000_500);
    await walkAppendWindow(p.ctx, audit, options);
    assert.deepEqual(
      emitted(p),
      ['1:e1', '2:e2'],
      'the settled window [999001, 999500] found it, and 1 once',
    );
    assert.deepEqual(p.state.get('audit_logs/_tail'), { keys: { '1': 1_000_000 } }, 'kept: 1,000,000 > wm');
  });

  it('a poll that dies inside the tail walks it again and publishes nothing twice', async () => {
    const entries = [1, 2, 3, 4, 5].map((k) => entry(k, 999_100 + k * 100));
    const api = auditApi(entries);
    const p = port(api, 1_000_000);
    p.failCommitAfter(2); // the settled window (one empty page) and the tail's first page commit
    await assert.rejects(walkAppendWindow(p.ctx, audit, options), /aborted/);
    assert.deepEqual(emitted(p), ['1:e1', '2:e2']);
    p.setNow(1_000_200);
    await walkAppendWindow(p.ctx, audit, options);
    assert.deepEqual(emitted(p), ['1:e1', '2:e2', '3:e3', '4:e4', '5:e5']);
    p.setNow(1_010_000);
    await walkAppendWindow(p.ctx, audit, options);
    assert.deepEqual(
      emitted(p),
      ['1:e1', '2:e2', '3:e3', '4:e4', '5:e5'],
      'the settled window skips all five',
    );
    assert.equal(p.state.get('audit_logs/_tail'), undefined);
  });

  it('a poll that dies inside a window resumes that window at the next unpublished page', async () => {
    const entries = [1, 2, 3, 4, 5].map((k) => entry(k, 990_000 + k * 100));
    const api = auditApi(entries);
    const p = port(api, 1_000_000);
    p.failCommitAfter(1);
    await assert.rejects(walkAppendWindow(p.ctx, audit, noTail), /aborted/);
    assert.deepEqual(emitted(p), ['1:e1', '2:e2']);
    assert.deepEqual(p.state.get('audit_logs/_window'), { wm: 989_999, s: 990_000, e: 1_000_000, next: 2 });

    // Much later: the window keeps its bounds (not [990_000, now]) and resumes at offset 2.
    p.setNow(1_100_000);
    await walkAppendWindow(p.ctx, audit, noTail);
    assert.deepEqual(emitted(p), ['1:e1', '2:e2', '3:e3', '4:e4', '5:e5'], 'nothing twice, nothing lost');
    assert.deepEqual(bounds(api), [
      ['990000', '1000000', 0],
      ['990000', '1000000', 2],
      ['990000', '1000000', 2],
      ['990000', '1000000', 4],
      ['990000', '1000000', 5],
    ]);
    assert.deepEqual(p.state.get('audit_logs/_window'), { wm: 1_000_000 });
  });

  it('a resumed window ends where it began; the tail then starts at now - settle, not at its end', async () => {
    const entries = [1, 2, 3].map((k) => entry(k, 990_000 + k * 100));
    const api = auditApi(entries);
    const p = port(api, 1_000_000);
    p.failCommitAfter(1);
    await assert.rejects(walkAppendWindow(p.ctx, audit, options), /aborted/);
    p.setNow(1_100_000);
    await walkAppendWindow(p.ctx, audit, options);
    assert.deepEqual(emitted(p), ['1:e1', '2:e2', '3:e3']);
    assert.deepEqual(bounds(api).slice(-1), [['1099001', '1100000', 0]], 'the tail; (999000, 1099000] waits');
    assert.deepEqual(p.state.get('audit_logs/_window'), { wm: 999_000 });
  });

  it('an empty window moves the watermark; with settleMs 0 there is no tail', async () => {
    const api = auditApi([]);
    const p = port(api, 1_000_000);
    await walkAppendWindow(p.ctx, audit, noTail);
    assert.deepEqual(p.state.get('audit_logs/_window'), { wm: 1_000_000 });
    await walkAppendWindow(p.ctx, audit, noTail); // the next window would be [1_000_001, 1_000_000]
    assert.equal(api.requests.length, 1);
    await walkAppendWindow(p.ctx, audit, options);
    assert.equal(api.requests.length, 1, 'the tail (1_000_000, 1_000_000] is empty too');
  });

  it("the tail's short walks do not set the page budget a settled window learned", async () => {
    const api = auditApi([entry(1, 999_500)]);
    const p = port(api, 1_000_000);
    await walkAppendWindow(p.ctx, audit, options);
    p.state.apply([{ key: '_pages/audit_logs', value: { n: 30 } }]);
    await walkAppendWindow(p.ctx, audit, options); // no settled window is due: the tail alone
    assert.deepEqual(bounds(api).slice(-2), [
      ['999001', '1000000', 0],
      ['999001', '1000000', 1],
    ]);
    assert.deepEqual(p.state.get('_pages/audit_logs'), { n: 30 });
  });

  it('a tail busier than its state may remember is read as far as it fits; its settled window publishes the rest', async () => {
    const entries = Array.from({ length: 20 }, (_, i) => entry(i + 10, 999_100 + i * 10));
    const api = auditApi(entries);
    const p = port(api, 1_000_000);
    // {"keys":{"10":1000000,...}}: 13 bytes an entry, so two pages of five fit in 150 and three do not.
    const bounded = { ...options, pageSize: 5, tailStateBytes: 150 };
    await walkAppendWindow(p.ctx, audit, bounded);
    assert.deepEqual(
      emitted(p),
      entries.slice(0, 10).map((e) => `${e.id}:${e.v}`),
      'the tail stopped before the page that would not fit',
    );
    const tail = p.state.get('audit_logs/_tail') as { keys: Record<string, number> };
    assert.equal(Object.keys(tail.keys).length, 10);
    assert.ok(Buffer.byteLength(JSON.stringify(tail)) <= 150);
    // A poll while the tail is still unsettled publishes nothing new from it, and nothing twice.
    p.setNow(1_000_050);
    await walkAppendWindow(p.ctx, audit, bounded);
    assert.equal(emitted(p).length, 10);
    // Once settled, the window publishes the other ten, and the tail's keys are forgotten.
    p.setNow(1_002_000);
    await walkAppendWindow(p.ctx, audit, bounded);
    assert.deepEqual(
      emitted(p),
      entries.map((e) => `${e.id}:${e.v}`),
      'every entry once',
    );
    assert.equal(p.state.get('audit_logs/_tail'), undefined);
  });
});
