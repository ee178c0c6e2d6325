// The simulator agrees with itself and with the API it stands in for (issue #11, parts 5 and 6): one
// description per conversation, client errors for malformed paths, every run status, ground truth
// filtered like the API, and --edge-values serving every spec-valid case of part 1 as raw JSON text.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startSimulator, type Simulator } from '../../sim/index.ts';

async function call(
  sim: Simulator,
  path: string,
  opts: { method?: 'GET' | 'HEAD' | 'POST'; body?: unknown } = {},
): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  const res = await request(`${sim.url}${path}`, {
    method: opts.method ?? 'GET',
    headers: {
      authorization: `Bearer ${sim.token}`,
      ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers };
}

const parse = (text: string) => JSON.parse(text) as Record<string, unknown>;

describe('simulator drift', () => {
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({ port: 0, seed: 'drift', scale: { conversations: 9, runs: 300 } });
  });
  after(() => sim.close());

  it('a conversation has the same description in the list and in the detail', async () => {
    const list = parse((await call(sim, '/v2/conversations')).text).conversations as Array<{
      id: string;
      description: string;
    }>;
    assert.equal(list.length, 9);
    assert.ok(list.some((c) => c.description === ''));
    for (const c of list) {
      const detail = parse((await call(sim, `/v2/conversations/${c.id}`)).text);
      assert.equal(detail.description, c.description, c.id);
    }
  });

  it('a malformed percent-escape in a path is a 400, not a 500', async () => {
    for (const path of ['/v2/apps/runs/%zz', '/v2/conversations/%zz', '/v2/queries/%E0%A4%A']) {
      const res = await call(sim, path);
      assert.equal(res.status, 400, path);
      assert.match(parse(res.text).message as string, /percent-encoding/);
    }
    const conversation = sim.expected.conversations().keys[0]!;
    assert.equal((await call(sim, `/v2/conversations/${conversation}/documents/%zz`)).status, 400);
    assert.equal((await call(sim, '/v2/files/acme_org/%zz', { method: 'HEAD' })).status, 400);
    assert.equal(sim.stats().byStatus['500'], undefined);
  });

  it('runs pass through PAUSED before they complete', async () => {
    const statuses = new Set<string>();
    for (let step = 0; step < 6; step++) {
      const now = Math.floor(sim.now() / 1000);
      const runs = parse(
        (await call(sim, `/v2/apps/runs?from_timestamp=0&to_timestamp=${now}&limit=1000`)).text,
      ).runs as Array<{ status: string }>;
      for (const r of runs) statuses.add(r.status);
      sim.advance(10 * 60_000);
    }
    assert.ok(statuses.has('PAUSED'), `statuses seen: ${[...statuses].join(', ')}`);
    assert.ok(statuses.has('COMPLETE') && statuses.has('RUNNING'));
  });

  it('/__sim/expected/runs splits comma-separated statuses as the API route does', async () => {
    const now = Math.floor(sim.now() / 1000);
    for (const status of ['COMPLETE,FAILED', 'COMPLETE&status=FAILED', 'PAUSED,RUNNING']) {
      const q = `from_timestamp=0&to_timestamp=${now}&status=${status}`;
      const served = parse((await call(sim, `/v2/apps/runs?${q}&limit=1000`)).text).runs as unknown[];
      const res = await request(`${sim.origin}/__sim/expected/runs?${q}`);
      const expected = (await res.body.json()) as { total: number };
      assert.equal(expected.total, served.length, status);
    }
    const both = parse(
      (
        await call(
          sim,
          `/v2/apps/runs?from_timestamp=0&to_timestamp=${now}&status=COMPLETE,FAILED&limit=1000`,
        )
      ).text,
    ).runs as unknown[];
    assert.ok(both.length > 0);
  });
});

describe('--edge-values serves every spec-valid case that is easy to mishandle', () => {
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({
      port: 0,
      seed: 'drift-edge',
      edgeValues: true,
      scale: { batches: 5, runs: 12, conversations: 3, queries: 6, files: 12, auditLogs: 10 },
    });
  });
  after(() => sim.close());

  const runsPath = () => `/v2/apps/runs?from_timestamp=0&to_timestamp=${Math.floor(sim.now() / 1000)}`;

  it('integers past 2^53 where the spec has no format: batch id, run batch_id, document id', async () => {
    assert.match((await call(sim, '/v2/batches')).text, /"id":9007199254740993,/);
    assert.match((await call(sim, runsPath())).text, /"batch_id":9007199254740993/);
    const conversation = sim.expected.conversations().keys[0]!;
    const detail = await call(sim, `/v2/conversations/${conversation}`);
    assert.match(detail.text, /"id":9007199254740993,/);
    const meta = await call(sim, `/v2/conversations/${conversation}/documents/9007199254740993`);
    assert.equal(meta.status, 200);
    assert.match(meta.text, /^\{"id":9007199254740993,/);
  });

  it('page_numbers, record_index and page numbers past 2^53, long integer literals for numbers', async () => {
    const run = parse((await call(sim, runsPath())).text).runs as Array<{ id: string }>;
    const flags =
      'include_source_info=true&include_confidence_scores=true&include_review_results=true&include_validation_results=true';
    const results = await call(sim, `/v2/apps/runs/${run[0]!.id}/results?${flags}`);
    assert.match(results.text, /"page_numbers":\[1,9007199254740993\]/);
    assert.match(results.text, /"record_index":9007199254740993/);
    assert.match(results.text, /"page_number":9007199254740993,"width":10000000000000000,/);
    assert.match(results.text, /"classification_confidence":\{"model":10000000000000000\}/);
    const query = await call(sim, `/v2/queries/${sim.expected.queryIds()[0]!}`);
    if (parse(query.text).status === 'COMPLETE') assert.match(query.text, /"top_x":10000000000000000/);
  });

  it('RFC 3339 variants in uploadTimestamp and in HEAD last-modified', async () => {
    const conversation = sim.expected.conversations().keys[0]!;
    const text = (await call(sim, `/v2/conversations/${conversation}`)).text;
    for (const v of [
      '2016-12-31T23:59:60Z',
      '2026-01-09t10:00:00.123456789z',
      '+05:30',
      '0001-01-01T00:00:00Z',
    ])
      assert.ok(text.includes(v), v);
    const files = sim.expected.files();
    const lastModified = async (i: number) =>
      (
        await call(sim, `/v2/files/${files[i]!.path.split('/').map(encodeURIComponent).join('/')}`, {
          method: 'HEAD',
        })
      ).headers['last-modified'];
    assert.equal(await lastModified(2), '2016-12-31T23:59:60Z');
    assert.equal(await lastModified(3), '2026-01-09t10:00:00.5+01:00');
  });

  it('records without id: a run and a document', async () => {
    const runs = parse((await call(sim, runsPath())).text).runs as Array<{ id?: string }>;
    assert.equal(runs.filter((r) => r.id === undefined).length, 1);
    assert.equal(sim.expected.runs({ from_timestamp: 0 }).withoutId, 1);
    const conversation = sim.expected.conversations().keys[0]!;
    const docs = parse((await call(sim, `/v2/conversations/${conversation}`)).text).documents as Array<{
      id?: number;
    }>;
    assert.equal(docs.filter((d) => d.id === undefined).length, 1);
  });

  it('omitted optional lists on empty pages: batches, runs, data, data.results, files, documents', async () => {
    assert.equal((await call(sim, '/v2/batches?offset=100')).text, '{}');
    assert.equal((await call(sim, `${runsPath()}&offset=1000`)).text, '{}');
    const audit = async (start: number) =>
      (await call(sim, '/v1/auditlogs', { method: 'POST', body: { start, size: 5 } })).text;
    assert.equal(await audit(100), '{"status":"OK","data":{}}');
    assert.equal(await audit(101), '{"status":"OK"}');
    const running = sim.expected.runs({ status: ['RUNNING'], from_timestamp: 0 }).keys;
    for (const id of running)
      assert.doesNotMatch((await call(sim, `/v2/apps/runs/${id}/results`)).text, /"files"/);
    const all = sim.expected.conversations().keys;
    const withoutDocs = [];
    for (const c of all) {
      const body = parse((await call(sim, `/v2/conversations/${c}`)).text);
      if (!('documents' in body)) withoutDocs.push(c);
    }
    assert.ok(
      withoutDocs.every((c) => sim.expected.conversationDocuments(c).total === 0),
      'only conversations without documents leave the list out',
    );
  });

  it('int64 timestamps far outside the years 1-9999', async () => {
    const batches = (await call(sim, '/v2/batches')).text;
    assert.match(batches, /"created_at_ms":-9007199254740991/);
    assert.match(batches, /"updated_at_ms":9007199254740991/);
    assert.match((await call(sim, runsPath())).text, /"finish_timestamp":9223372036854775807/);
    const audit = (await call(sim, '/v1/auditlogs', { method: 'POST', body: { size: 5 } })).text;
    assert.match(audit, /"timestamp_millis":"-9007199254740991"/);
  });
});
