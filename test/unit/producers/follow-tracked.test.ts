/**
 * Tracked ids (producers/follow/tracked.ts) through in-memory ports: an id is polled until it is
 * terminal, every change of its content is published once, and it is not polled after that.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pollTracked, trackIds } from '../../../producers/follow/tracked.ts';
import type { ResourceSpec } from '../../../producers/instabase/resource.ts';
import { declaration, emitted, MemoryApi, offsetSpec, port, type Item } from './follow-ports.ts';

const single: ResourceSpec<unknown> = {
  ...offsetSpec('queries_status', '/queries/{query_id}', ''),
  paginator: { kind: 'single' },
};
const queries = declaration('queries_status', single);

describe('pollTracked', () => {
  it('publishes each change of a tracked id until it is terminal, then stops polling it', async () => {
    const status: Record<string, Item> = {
      q1: { id: 1, v: 'RUNNING' },
      q2: { id: 2, v: 'RUNNING' },
    };
    const api = new MemoryApi().on('/queries/{query_id}', (req) => status[String(req.pathParams?.query_id)]);
    const p = port(api);
    const poll = () =>
      pollTracked(
        p.ctx,
        queries,
        (id) => ({ query_id: id }),
        (r) => r.v === 'COMPLETE',
        2,
      );

    const added = trackIds(p.ctx, queries, ['q1', 'q2']);
    assert.deepEqual(added, [
      { key: 'queries_status/q1', value: { done: false } },
      { key: 'queries_status/q2', value: { done: false } },
    ]);
    p.state.apply(added);
    await poll();
    await poll();
    assert.deepEqual(emitted(p).sort(), ['1:RUNNING', '2:RUNNING'], 'unchanged: published once');
    status.q1 = { id: 1, v: 'COMPLETE' };
    await poll();
    await poll();
    assert.deepEqual(emitted(p).sort(), ['1:COMPLETE', '1:RUNNING', '2:RUNNING']);
    const q1Polls = api.requests.filter((r) => r.pathParams?.query_id === 'q1').length;
    assert.equal(q1Polls, 3, 'q1 is not polled once it is terminal');
    assert.deepEqual(
      trackIds(p.ctx, queries, ['q1', 'q3']),
      [{ key: 'queries_status/q3', value: { done: false } }],
      'known ids are left as they are',
    );
  });
});
