import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  InstabasePagingError,
  InstabaseSchemaError,
  poll,
  walk,
  type Page,
  type ResourceSpec,
  type WalkSummary,
} from '../../../producers/instabase/index.ts';
import {
  auditLogs,
  batchFiles,
  batches,
  conversations,
  filesMetadata,
  queriesStatus,
  runs,
  runsResults,
} from '../../../producers/resources.ts';
import { json, testClient, type TestClient } from './helpers.ts';

let t: TestClient;
afterEach(async () => {
  await t.agent.close();
});

async function collect<R>(
  gen: AsyncGenerator<Page<R>, WalkSummary, void>,
): Promise<{ pages: Page<R>[]; summary: WalkSummary }> {
  const pages: Page<R>[] = [];
  for (;;) {
    const step = await gen.next();
    if (step.done) return { pages, summary: step.value };
    pages.push(step.value);
  }
}

const batch = (id: number) => ({ id, name: `b${id}`, updated_at_ms: 1000 + id });

describe('offset paginator', () => {
  it('walks past a short page to the empty one and reports positions to checkpoint', async () => {
    t = testClient();
    const all = Array.from({ length: 5 }, (_, i) => batch(i + 1));
    t.pool
      .intercept({ path: (p) => p.startsWith('/api/v2/batches?') })
      .reply((o) => {
        const q = new URL(o.path, 'http://x').searchParams;
        const off = Number(q.get('offset'));
        const lim = Number(q.get('limit'));
        return {
          statusCode: 200,
          data: { batches: all.slice(off, off + lim) },
          responseOptions: { headers: json },
        };
      })
      .persist();
    const { pages, summary } = await collect(
      walk(t.client, batches, { pageSize: 2, query: { workspace: 'ws' } }),
    );
    assert.deepEqual(
      pages.map((p) => [p.position.offset, p.next?.offset, p.last, p.records.map((r) => r.id)]),
      [
        [0, 2, false, [1, 2]],
        [2, 4, false, [3, 4]],
        [4, 5, false, [5]],
        [5, undefined, true, []],
      ],
    );
    assert.deepEqual(summary, { pages: 4, records: 5, invalid: 0, endOffset: 5 });
    assert.equal(pages[0]!.requestPath, '/v2/batches?workspace=ws&limit=2&offset=0');
  });

  it('stops on an empty page when the total is a multiple of the page size, and resumes from a checkpoint', async () => {
    t = testClient();
    t.pool
      .intercept({ path: '/api/v2/batches?limit=2&offset=4' })
      .reply(200, { batches: [batch(5), batch(6)] });
    t.pool.intercept({ path: '/api/v2/batches?limit=2&offset=6' }).reply(200, { batches: [] });
    const { pages, summary } = await collect(walk(t.client, batches, { pageSize: 2, startOffset: 4 }));
    assert.equal(pages.length, 2);
    assert.equal(pages[1]!.last, true);
    assert.equal(summary.records, 2);
    assert.equal(summary.endOffset, 6);
  });

  it('yields the valid records of a page and surfaces the bad one as an invalid item', async () => {
    t = testClient();
    t.pool
      .intercept({ path: '/api/v2/batches?limit=100&offset=0' })
      .reply(
        200,
        '{"batches":[{"id":1,"name":"a"},{"id":2,"created_at_ms":"yesterday"},{"id":3,"name":"c","extra":{"kept":true},"updated_at_ms":9223372036854775807}]}',
      );
    t.pool.intercept({ path: '/api/v2/batches?limit=100&offset=3' }).reply(200, { batches: [] });
    const { pages } = await collect(walk(t.client, batches));
    const page = pages[0]!;
    assert.deepEqual(
      page.records.map((r) => r.id),
      [1, 3],
    );
    assert.deepEqual(
      (page.records[1] as Record<string, unknown>).extra,
      { kept: true },
      'unknown fields are kept',
    );
    assert.equal(page.records[1]!.updated_at_ms, 9223372036854775807n);
    assert.equal(page.invalid.length, 1);
    const bad = page.invalid[0]!;
    assert.equal(bad.index, 1);
    assert.equal(bad.rawJson, '{"id":2,"created_at_ms":"yesterday"}');
    assert.deepEqual(bad.issues.map((i) => i.path.join('.')).sort(), ['created_at_ms', 'name']);
    assert.deepEqual(
      page.items.map((i) => i.ok),
      [true, false, true],
    );
  });

  it('throws a page-level schema error when the list is missing or not a list', async () => {
    t = testClient();
    t.pool.intercept({ path: '/api/v2/batches?limit=100&offset=0' }).reply(200, { batches: { id: 1 } });
    await assert.rejects(collect(walk(t.client, batches)), (e: unknown) => {
      assert.ok(e instanceof InstabaseSchemaError);
      assert.equal(e.endpoint, 'GET /v2/batches');
      assert.equal(e.status, 200);
      assert.deepEqual(e.issues[0]!.path, ['batches']);
      assert.equal(e.bodyExcerpt, '{"batches":{"id":1}}');
      return true;
    });
    t.pool.intercept({ path: '/api/v2/batches?limit=100&offset=0' }).reply(200, '[1,2]');
    await assert.rejects(collect(walk(t.client, batches)), InstabaseSchemaError);
  });

  it('detects a server that ignores the offset (the same full page again)', async () => {
    t = testClient();
    t.pool
      .intercept({ path: (p) => p.startsWith('/api/v2/batches') })
      .reply(200, { batches: [batch(1), batch(2)] })
      .persist();
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const p of walk(t.client, batches, { pageSize: 2 })) seen.push(p.position.offset);
      })(),
      (e: unknown) => {
        assert.ok(e instanceof InstabasePagingError);
        assert.equal(e.reason, 'repeated_page');
        assert.equal(e.offset, 2);
        assert.equal(e.endpoint, 'GET /v2/batches');
        assert.match(e.message, /offset 2/);
        return true;
      },
    );
    assert.deepEqual(seen, [0], 'the repeated page is never yielded');
  });

  it('stops at maxPagesPerWalk with a typed error', async () => {
    t = testClient({ maxPagesPerWalk: 3 });
    let n = 0;
    t.pool
      .intercept({ path: (p) => p.startsWith('/api/v2/batches') })
      .reply(() => ({ statusCode: 200, data: { batches: [batch(++n), batch(++n)] } }))
      .persist();
    await assert.rejects(collect(walk(t.client, batches, { pageSize: 2 })), (e: unknown) => {
      assert.ok(e instanceof InstabasePagingError);
      assert.equal(e.reason, 'page_cap');
      assert.equal(e.offset, 6);
      assert.equal(e.pages, 3);
      return true;
    });
  });
});

describe('has_more paginator', () => {
  const results = (files: unknown[], has_more: boolean) => ({
    id: 'r1',
    status: 'COMPLETE',
    files,
    has_more,
  });
  const file = (n: number) => ({ original_file_name: `f${n}.pdf`, documents: [] });

  it('follows has_more with file_offset += files received and carries the run fields as meta', async () => {
    t = testClient();
    const base =
      '/api/v2/apps/runs/r1/results?include_review_results=true&include_confidence_scores=true&include_validation_results=true&include_source_info=true&file_offset=';
    t.pool.intercept({ path: `${base}0` }).reply(200, results([file(0), file(1)], true));
    t.pool.intercept({ path: `${base}2` }).reply(200, results([file(2)], false));
    const { pages, summary } = await collect(walk(t.client, runsResults, { pathParams: { run_id: 'r1' } }));
    assert.deepEqual(
      pages.map((p) => [p.position.offset, p.next?.offset, p.records.length]),
      [
        [0, 2, 2],
        [2, undefined, 1],
      ],
    );
    assert.equal(pages[0]!.meta?.status, 'COMPLETE');
    assert.equal('files' in (pages[0]!.meta ?? {}), false);
    assert.equal(summary.records, 3);
  });

  it('refuses has_more=true with an empty page', async () => {
    t = testClient();
    t.pool.intercept({ path: (p) => p.includes('file_offset=0') }).reply(200, results([file(0)], true));
    t.pool.intercept({ path: (p) => p.includes('file_offset=1') }).reply(200, results([], true));
    await assert.rejects(
      collect(walk(t.client, runsResults, { pathParams: { run_id: 'r1' } })),
      (e: unknown) => {
        assert.ok(e instanceof InstabasePagingError);
        assert.equal(e.reason, 'no_progress');
        assert.equal(e.offset, 1);
        assert.equal(e.endpoint, 'GET /v2/apps/runs/{run_id}/results');
        return true;
      },
    );
  });

  it('refuses has_more=true forever with the same page', async () => {
    t = testClient();
    t.pool
      .intercept({ path: (p) => p.includes('/results') })
      .reply(200, results([file(0), file(1)], true))
      .persist();
    await assert.rejects(
      collect(walk(t.client, runsResults, { pathParams: { run_id: 'r1' } })),
      (e: unknown) => {
        assert.ok(e instanceof InstabasePagingError);
        assert.equal(e.reason, 'repeated_page');
        assert.equal(e.offset, 2);
        return true;
      },
    );
  });
});

describe('token paginator', () => {
  const node = (n: number) => ({ full_path: `/b/1/f${n}.pdf`, metadata: { size: n }, name: `f${n}.pdf` });
  const base = '/api/v2/batches/7/files?page_size=2';

  it('sends no start_token first, then each next_page_token, while has_more; positions count records', async () => {
    t = testClient();
    t.pool
      .intercept({ path: base })
      .reply(200, { nodes: [node(0), node(1)], has_more: true, next_page_token: 'eyJwIjoxfQ==' });
    t.pool
      .intercept({ path: `${base}&start_token=eyJwIjoxfQ%3D%3D` })
      .reply(200, { nodes: [node(2)], has_more: true, next_page_token: 't2' });
    // has_more false ends the walk, whatever else the body says.
    t.pool
      .intercept({ path: `${base}&start_token=t2` })
      .reply(200, { nodes: [], has_more: false, next_page_token: 't3' });
    const { pages, summary } = await collect(
      walk(t.client, batchFiles, { pathParams: { batch_id: 7 }, pageSize: 2 }),
    );
    assert.deepEqual(
      pages.map((p) => [p.position, p.next, p.last, p.items.map((i) => i.index)]),
      [
        [{ kind: 'token', offset: 0 }, { kind: 'token', offset: 2, token: 'eyJwIjoxfQ==' }, false, [0, 1]],
        [
          { kind: 'token', offset: 2, token: 'eyJwIjoxfQ==' },
          { kind: 'token', offset: 3, token: 't2' },
          false,
          [2],
        ],
        [{ kind: 'token', offset: 3, token: 't2' }, undefined, true, []],
      ],
    );
    assert.equal(summary.records, 3);
    assert.equal(pages[0]!.meta?.next_page_token, 'eyJwIjoxfQ==');
  });

  it('resumes from a checkpointed token', async () => {
    t = testClient();
    t.pool.intercept({ path: `${base}&start_token=t2` }).reply(200, { nodes: [node(2)] });
    const { pages } = await collect(
      walk(t.client, batchFiles, {
        pathParams: { batch_id: 7 },
        pageSize: 2,
        startToken: 't2',
        startOffset: 2,
      }),
    );
    assert.deepEqual(
      pages.map((p) => [p.position.token, p.items[0]?.index, p.last]),
      [['t2', 2, true]],
    );
  });

  it('walks an empty page that hands a fresh token, and reads a body without nodes as empty', async () => {
    t = testClient();
    t.pool.intercept({ path: base }).reply(200, { has_more: true, next_page_token: 't1' });
    t.pool.intercept({ path: `${base}&start_token=t1` }).reply(200, { nodes: [node(0)], has_more: false });
    const { summary } = await collect(
      walk(t.client, batchFiles, { pathParams: { batch_id: 7 }, pageSize: 2 }),
    );
    assert.deepEqual([summary.pages, summary.records], [2, 1]);
  });

  for (const [name, body] of [
    ['has_more without a token', { nodes: [node(0)], has_more: true }],
    ['has_more with an empty token', { nodes: [node(0)], has_more: true, next_page_token: '' }],
  ] as const) {
    it(`refuses ${name}: no_progress`, async () => {
      t = testClient();
      t.pool.intercept({ path: base }).reply(200, body);
      await assert.rejects(
        collect(walk(t.client, batchFiles, { pathParams: { batch_id: 7 }, pageSize: 2 })),
        (e: unknown) => e instanceof InstabasePagingError && e.reason === 'no_progress' && e.pages === 1,
      );
    });
  }

  it('refuses the token it sent handed back: no_progress', async () => {
    t = testClient();
    t.pool.intercept({ path: base }).reply(200, { nodes: [node(0)], has_more: true, next_page_token: 't1' });
    t.pool
      .intercept({ path: `${base}&start_token=t1` })
      .reply(200, { nodes: [node(1)], has_more: true, next_page_token: 't1' });
    await assert.rejects(
      collect(walk(t.client, batchFiles, { pathParams: { batch_id: 7 }, pageSize: 2 })),
      (e: unknown) => e instanceof InstabasePagingError && e.reason === 'no_progress' && e.offset === 1,
    );
  });

  it('refuses fresh tokens with the same page again: repeated_page', async () => {
    t = testClient();
    let n = 0;
    t.pool
      .intercept({ path: (p) => p.startsWith(base) })
      .reply(() => ({
        statusCode: 200,
        data: { nodes: [node(0)], has_more: true, next_page_token: `t${++n}` },
      }))
      .persist();
    await assert.rejects(
      collect(walk(t.client, batchFiles, { pathParams: { batch_id: 7 }, pageSize: 2 })),
      (e: unknown) => e instanceof InstabasePagingError && e.reason === 'repeated_page',
    );
  });

  it('validates nodes exactly as the spec: nothing required, typed when present', async () => {
    t = testClient();
    t.pool
      .intercept({ path: base })
      .reply(
        200,
        '{"nodes":[{},{"metadata":{"size":"1 KB"}},{"perms":{"can_read":"yes"}},{"full_path":"/x","metadata":{"size":9223372036854775807}}]}',
      );
    const { pages } = await collect(walk(t.client, batchFiles, { pathParams: { batch_id: 7 }, pageSize: 2 }));
    const page = pages[0]!;
    assert.deepEqual(
      page.items.map((i) => i.ok),
      [true, false, false, true],
    );
    assert.equal(page.records[1]!.metadata?.size, 9223372036854775807n);
  });

  it('rejects a next_page_token or has_more of the wrong type as a schema error', async () => {
    t = testClient();
    t.pool.intercept({ path: base }).reply(200, { nodes: [], has_more: 'yes' });
    await assert.rejects(
      collect(walk(t.client, batchFiles, { pathParams: { batch_id: 7 }, pageSize: 2 })),
      (e: unknown) => e instanceof InstabaseSchemaError && e.issues[0]!.path.join('.') === 'has_more',
    );
  });
});

describe('body_offset paginator', () => {
  it('sends start and size in the POST body with the filters, and reads data.results', async () => {
    t = testClient();
    const bodies: Array<Record<string, unknown>> = [];
    t.pool
      .intercept({ path: '/api/v1/auditlogs', method: 'POST' })
      .reply((o) => {
        const b = JSON.parse(String(o.body)) as { start: number; size: number };
        bodies.push(b);
        const n = Math.max(0, Math.min(b.size, 5 - b.start));
        const results = Array.from({ length: n }, (_, i) => ({
          timestamp_millis: String(1000 + b.start + i),
          log_type: 'api_v2',
        }));
        return { statusCode: 200, data: { status: 'OK', data: { results } } };
      })
      .persist();
    const { summary } = await collect(
      walk(t.client, auditLogs, { pageSize: 2, body: { log_type: 'api_v2', start_time: '1000' } }),
    );
    assert.equal(summary.records, 5);
    assert.deepEqual(bodies, [
      { log_type: 'api_v2', start_time: '1000', start: 0, size: 2 },
      { log_type: 'api_v2', start_time: '1000', start: 2, size: 2 },
      { log_type: 'api_v2', start_time: '1000', start: 4, size: 2 },
      { log_type: 'api_v2', start_time: '1000', start: 5, size: 2 },
    ]);
  });

  it('reads a 200 without data, or with data but no results, as an empty last page (both keys are optional)', async () => {
    t = testClient();
    for (const body of [{ status: 'OK', data: {} }, {}, { status: 'OK' }]) {
      t.pool.intercept({ path: '/api/v1/auditlogs', method: 'POST' }).reply(200, body);
      const { pages, summary } = await collect(walk(t.client, auditLogs));
      assert.equal(pages.length, 1, JSON.stringify(body));
      assert.equal(pages[0]!.last, true);
      assert.equal(summary.records, 0);
    }
  });

  it('takes a 200 without data but with a status other than OK for the error it is', async () => {
    t = testClient();
    t.pool
      .intercept({ path: '/api/v1/auditlogs', method: 'POST' })
      .reply(200, { status: 'ERROR', message: 'no permission' });
    await assert.rejects(collect(walk(t.client, auditLogs)), (e: unknown) => {
      assert.ok(e instanceof InstabaseSchemaError);
      assert.deepEqual(e.issues[0]!.path, ['data', 'results']);
      assert.match(e.issues[0]!.message, /"ERROR"/);
      assert.match(e.bodyExcerpt ?? '', /no permission/);
      return true;
    });
    t.pool.intercept({ path: '/api/v1/auditlogs', method: 'POST' }).reply(200, { status: 'ok', data: {} });
    assert.equal(
      (await collect(walk(t.client, auditLogs))).pages.length,
      1,
      'the case of OK does not matter',
    );
  });

  it('still rejects data or results of the wrong type', async () => {
    t = testClient();
    for (const [body, path] of [
      [{ status: 'OK', data: { results: {} } }, 'data.results'],
      [{ status: 'OK', data: [] }, 'data'],
      [{ status: 'OK', data: null }, 'data'],
    ] as const) {
      t.pool.intercept({ path: '/api/v1/auditlogs', method: 'POST' }).reply(200, body);
      await assert.rejects(collect(walk(t.client, auditLogs)), (e: unknown) => {
        assert.ok(e instanceof InstabaseSchemaError, JSON.stringify(body));
        assert.equal(e.issues[0]!.path.join('.'), path);
        return true;
      });
    }
  });
});

describe('single and HEAD', () => {
  it('yields a single object, or an invalid item when it breaks the schema', async () => {
    t = testClient();
    t.pool.intercept({ path: '/api/v2/queries/q1' }).reply(200, { query_id: 'q1', status: 'RUNNING' });
    t.pool.intercept({ path: '/api/v2/queries/q2' }).reply(200, { query_id: 'q2', status: 'DONE' });
    const ok = await collect(walk(t.client, queriesStatus, { pathParams: { query_id: 'q1' } }));
    assert.equal(ok.pages[0]!.records[0]!.status, 'RUNNING');
    const bad = await collect(walk(t.client, queriesStatus, { pathParams: { query_id: 'q2' } }));
    assert.equal(bad.pages[0]!.records.length, 0);
    assert.deepEqual(bad.pages[0]!.invalid[0]!.issues[0]!.path, ['status']);
  });

  it('polls until the query is terminal', async () => {
    t = testClient();
    t.pool
      .intercept({ path: '/api/v2/queries/q1' })
      .reply(200, { query_id: 'q1', status: 'RUNNING' })
      .times(2);
    t.pool
      .intercept({ path: '/api/v2/queries/q1' })
      .reply(200, { query_id: 'q1', status: 'COMPLETE', results: [{ response: 'hi' }] });
    const seen: string[] = [];
    for await (const p of poll(
      t.client,
      queriesStatus,
      { pathParams: { query_id: 'q1' } },
      { intervalMs: 1000, maxPolls: 5 },
    )) {
      seen.push(String(p.records[0]?.status));
    }
    assert.deepEqual(seen, ['RUNNING', 'RUNNING', 'COMPLETE']);
    assert.deepEqual(t.sleeps, [1000, 1000]);
  });

  it('gives up polling after maxPolls', async () => {
    t = testClient();
    t.pool
      .intercept({ path: '/api/v2/queries/q1' })
      .reply(200, { query_id: 'q1', status: 'RUNNING' })
      .persist();
    await assert.rejects(
      (async () => {
        for await (const _ of poll(
          t.client,
          queriesStatus,
          { pathParams: { query_id: 'q1' } },
          { intervalMs: 1, maxPolls: 3 },
        ))
          void _;
      })(),
      (e: unknown) => e instanceof InstabasePagingError && e.reason === 'poll_cap',
    );
  });

  it('builds file metadata from HEAD headers; 404 is a record of an absent path', async () => {
    t = testClient();
    const file = 'org/ws/fs/Instabase Drive/a.pdf';
    t.pool
      .intercept({ path: '/api/v2/files/org/ws/fs/Instabase%20Drive/a.pdf', method: 'HEAD' })
      .reply(200, '', {
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': '2048',
          'last-modified': 'Fri, 09 Jan 2026 10:00:00 GMT',
        },
      });
    t.pool
      .intercept({ path: '/api/v2/files/org/ws', method: 'HEAD' })
      .reply(200, '', { headers: { 'content-type': 'application/json' } });
    t.pool.intercept({ path: '/api/v2/files/org/gone', method: 'HEAD' }).reply(404, '');
    t.pool
      .intercept({ path: '/api/v2/files/org/odd', method: 'HEAD' })
      .reply(200, '', { headers: { 'content-type': 'text/html' } });
    const get = async (path: string) =>
      (await collect(walk(t.client, filesMetadata, { pathParams: { path } }))).pages[0]!;
    assert.deepEqual((await get(file)).records[0], {
      path: file,
      exists: true,
      type: 'file',
      content_type: 'application/octet-stream',
      content_length: 2048,
      last_modified: 'Fri, 09 Jan 2026 10:00:00 GMT',
      last_modified_ms: Date.parse('2026-01-09T10:00:00Z'),
    });
    assert.equal((await get('org/ws')).records[0]!.type, 'folder');
    assert.equal((await get('org/gone')).records[0]!.exists, false);
    const odd = await get('org/odd');
    assert.equal(odd.records.length, 0);
    assert.deepEqual(odd.invalid[0]!.issues[0]!.path, ['content-type']);
  });
});

describe('missing record lists', () => {
  it('a run whose results have no files yet is an empty last page', async () => {
    t = testClient();
    t.pool.intercept({ path: (p) => p.includes('/results') }).reply(200, { id: 'r1', status: 'RUNNING' });
    const { pages, summary } = await collect(walk(t.client, runsResults, { pathParams: { run_id: 'r1' } }));
    assert.equal(pages.length, 1);
    assert.equal(pages[0]!.last, true);
    assert.equal(pages[0]!.meta?.status, 'RUNNING');
    assert.equal(summary.records, 0);
  });

  it('an omitted `batches`, `runs` or `conversations` is an empty last page (the spec makes each optional)', async () => {
    t = testClient();
    for (const [spec, prefix] of [
      [batches, '/api/v2/batches'],
      [runs, '/api/v2/apps/runs'],
      [conversations, '/api/v2/conversations'],
    ] as const) {
      t.pool.intercept({ path: (p) => p.startsWith(prefix) }).reply(200, {});
      const { pages, summary } = await collect(walk(t.client, spec as ResourceSpec));
      assert.equal(pages.length, 1, spec.name);
      assert.equal(pages[0]!.last, true);
      assert.equal(summary.records, 0);
    }
  });
});
