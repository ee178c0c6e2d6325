// Every simulator response, endpoint by endpoint, validated against the OpenAPI files with ajv (not with
// the client's zod), on every spec file that describes the endpoint.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { startSimulator, type Simulator } from '../../sim/index.ts';
import { Contract, describeErrors, type SpecFile } from './openapi.ts';

const contract = new Contract();
const agent = new Agent({ keepAliveTimeout: 1000 });
after(() => agent.close());

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

async function call(
  sim: Simulator,
  path: string,
  opts: { method?: string; body?: unknown; token?: string | null } = {},
): Promise<Raw> {
  const method = opts.method ?? 'GET';
  const headers: Record<string, string> = {};
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? sim.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await request(`${sim.url}${path}`, {
    method: method as 'GET',
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    dispatcher: agent,
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    text,
    json: text ? (JSON.parse(text) as unknown) : undefined,
  };
}

let validated = 0;

/** Validates a JSON response against each spec file describing the operation; returns the files used. */
function check(method: string, template: string, res: Raw, status = res.status): SpecFile[] {
  const files = contract.filesFor(method, template);
  assert.ok(files.length > 0, `no spec describes ${method} ${template}`);
  for (const file of files) {
    const validate = contract.responseValidator(file, method, template, status === 200 ? '200' : 'default');
    assert.ok(
      validate(res.json),
      `${file} ${method} ${template} → ${res.status}: ${describeErrors(validate.errors)}\n${res.text.slice(0, 300)}`,
    );
    validated++;
  }
  return files;
}

function checkHead(template: string, res: Raw): void {
  for (const file of contract.filesFor('HEAD', template)) {
    if (res.status === 404) continue;
    assert.equal(res.status, 200);
    const schemas = contract.responseHeaders(file, 'HEAD', template, '200');
    for (const [name, validate] of Object.entries(schemas)) {
      const raw = res.headers[name];
      if (raw === undefined) continue;
      const value = Array.isArray(raw) ? raw[0] : raw;
      const typed = /^-?\d+$/.test(value ?? '') && name === 'content-length' ? Number(value) : value;
      assert.ok(validate(typed), `${file} HEAD header ${name}=${value}: ${describeErrors(validate.errors)}`);
    }
    const type = res.headers['content-type'];
    assert.ok(
      type === 'application/json' || type === 'application/octet-stream',
      `content-type ${String(type)}`,
    );
    if (type === 'application/json')
      assert.equal(res.headers['last-modified'], undefined, 'folders carry no last-modified');
    validated++;
  }
}

// Every list key is optional in the spec (and left out of empty pages with edge values).
type Listing = { conversations?: Array<{ id: string }> };
type Conversation = { documents?: Array<{ id?: number }> };

/** Calls every endpoint of the simulator with every paging step and validates each response. */
async function sweep(sim: Simulator): Promise<void> {
  const conv = await call(sim, '/v2/conversations');
  check('GET', '/v2/conversations', conv);
  for (const c of (conv.json as Listing).conversations ?? []) {
    const one = await call(sim, `/v2/conversations/${c.id}`);
    check('GET', '/v2/conversations/{conversation_id}', one);
    for (const d of (one.json as Conversation).documents ?? []) {
      if (d.id === undefined) continue;
      const meta = await call(sim, `/v2/conversations/${c.id}/documents/${d.id}`);
      check('GET', '/v2/conversations/{conversation_id}/documents/{document_id}', meta);
    }
  }
  for (let offset = 0; ; offset += 60) {
    const page = await call(sim, `/v2/batches?limit=60&offset=${offset}`);
    check('GET', '/v2/batches', page);
    if (((page.json as { batches?: unknown[] }).batches ?? []).length === 0) break;
  }
  const window = `from_timestamp=${Math.floor(sim.now() / 1000) - 30 * 3600}&to_timestamp=${Math.floor(sim.now() / 1000)}`;
  const runIds: string[] = [];
  for (let offset = 0; ; offset += 50) {
    const page = await call(sim, `/v2/apps/runs?${window}&limit=50&offset=${offset}`);
    check('GET', '/v2/apps/runs', page);
    const runs = (page.json as { runs?: Array<{ id?: string }> }).runs ?? [];
    for (const r of runs) if (r.id !== undefined) runIds.push(r.id);
    if (runs.length === 0) break;
  }
  assert.ok(runIds.length > 0);
  const flags = [
    '',
    '&include_review_results=true&include_confidence_scores=true&include_validation_results=true&include_source_info=true',
  ];
  for (const [n, id] of runIds.entries()) {
    check('GET', '/v2/apps/runs/{run_id}', await call(sim, `/v2/apps/runs/${id}`));
    for (let fileOffset = 0; ;) {
      const page = await call(sim, `/v2/apps/runs/${id}/results?file_offset=${fileOffset}${flags[n % 2]}`);
      check('GET', '/v2/apps/runs/{run_id}/results', page);
      const body = page.json as { files?: unknown[]; has_more: boolean };
      if (!body.has_more) break;
      fileOffset += (body.files ?? []).length;
    }
  }
  for (const id of sim.expected.queryIds())
    check('GET', '/v2/queries/{query_id}', await call(sim, `/v2/queries/${id}`));
  for (const f of sim.expected.files()) {
    const path = f.path.split('/').map(encodeURIComponent).join('/');
    const res = await call(sim, `/v2/files/${path}`, { method: 'HEAD' });
    assert.equal(res.status, f.exists ? 200 : 404, f.path);
    checkHead('/v2/files/{path}', res);
  }
  for (let start = 0; ; start += 700) {
    const page = await call(sim, '/v1/auditlogs', { method: 'POST', body: { start, size: 700 } });
    check('POST', '/v1/auditlogs', page);
    if (((page.json as { data?: { results?: unknown[] } }).data?.results ?? []).length === 0) break;
  }
  const filtered = await call(sim, '/v1/auditlogs', {
    method: 'POST',
    body: {
      start: 0,
      size: 50,
      log_type: 'api_v2',
      email: 'user3@acme.com',
      start_time: '0',
      end_time: String(sim.now()),
    },
  });
  check('POST', '/v1/auditlogs', filtered);
}

describe('simulator responses validate against the OpenAPI files', () => {
  const scale = { batches: 130, runs: 30, auditLogs: 2000, conversations: 8, queries: 8, files: 40 };

  it('clean data, before and after the clock moves', async () => {
    const sim = await startSimulator({ port: 0, seed: 'contract', scale });
    try {
      await sweep(sim);
      sim.advance(2 * 3600_000);
      await sweep(sim);
      assert.ok(validated > 500, `validated ${validated} responses`);
    } finally {
      await sim.close();
    }
  });

  it('edge values (int64 extremes, huge floats, odd strings) are still inside the contract', async () => {
    const sim = await startSimulator({ port: 0, seed: 'contract-edge', scale, edgeValues: true });
    try {
      await sweep(sim);
      const batches = await call(sim, '/v2/batches?limit=2');
      assert.match(batches.text, /"created_at_ms":-9007199254740991/);
      assert.match(batches.text, /"updated_at_ms":9007199254740991/);
      const audit = await call(sim, '/v1/auditlogs', { method: 'POST', body: { size: 5 } });
      assert.match(audit.text, /"timestamp_millis":"not-a-number"/);
    } finally {
      await sim.close();
    }
  });
});

describe('simulator error responses validate against the error schema', () => {
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({
      port: 0,
      seed: 'errors',
      scale: { batches: 10, runs: 5, conversations: 2, queries: 2, files: 5 },
    });
  });
  after(() => sim.close());

  const endpoints: Array<[string, string, string, unknown?]> = [
    ['GET', '/v2/conversations', '/v2/conversations'],
    ['GET', '/v2/batches', '/v2/batches'],
    ['GET', '/v2/apps/runs', '/v2/apps/runs'],
    ['GET', '/v2/apps/runs/{run_id}/results', '/v2/apps/runs/x/results'],
    ['GET', '/v2/queries/{query_id}', '/v2/queries/x'],
    ['POST', '/v1/auditlogs', '/v1/auditlogs', {}],
  ];

  for (const [method, template, path, body] of endpoints) {
    it(`401 without a token and with a wrong one: ${method} ${template}`, async () => {
      for (const token of [null, 'wrong-token']) {
        const res = await call(sim, path, { method, body, token });
        assert.equal(res.status, 401);
        check(method, template, res);
      }
    });
  }

  it('HEAD without a token is 401', async () => {
    const res = await call(sim, '/v2/files/x', { method: 'HEAD', token: null });
    assert.equal(res.status, 401);
  });

  it('404 for unknown ids, 400 for bad parameters', async () => {
    const cases: Array<[string, string, string, number, unknown?]> = [
      [
        'GET',
        '/v2/apps/runs/{run_id}/results',
        '/v2/apps/runs/00000000-0000-4000-8000-000000000000/results',
        404,
      ],
      ['GET', '/v2/conversations/{conversation_id}', '/v2/conversations/nope', 404],
      [
        'GET',
        '/v2/conversations/{conversation_id}/documents/{document_id}',
        `/v2/conversations/${sim.expected.conversations().keys[0] ?? 'x'}/documents/999999`,
        404,
      ],
      ['GET', '/v2/queries/{query_id}', '/v2/queries/nope', 404],
      ['GET', '/v2/batches', '/v2/batches?limit=ten', 400],
      ['POST', '/v1/auditlogs', '/v1/auditlogs', 400, { start: -1 }],
    ];
    for (const [method, template, path, status, body] of cases) {
      const res = await call(sim, path, { method, body });
      assert.equal(res.status, status, `${method} ${path}`);
      check(method, template, res);
    }
  });

  it('429, 500 and 503 fault bodies, and Retry-After on 429', async () => {
    const seen = new Set<number>();
    for (const [key, status] of [
      ['rate429', 429],
      ['rate500', 500],
      ['rate503', 503],
    ] as const) {
      sim.setFaults({ rate429: 0, rate500: 0, rate503: 0, [key]: 1, maxConsecutive: 1000 });
      const res = await call(sim, `/v2/batches?limit=1&offset=${status}`);
      assert.equal(res.status, status);
      check('GET', '/v2/batches', res);
      if (status === 429) assert.ok(res.headers['retry-after'] !== undefined);
      seen.add(res.status);
    }
    sim.setFaults({ rate429: 0, rate500: 0, rate503: 0 });
    assert.equal(seen.size, 3);
  });
});

describe('bad records really break the contract, and only they do', () => {
  it('ajv flags exactly the records the simulator reports as invalid', async () => {
    const sim = await startSimulator({
      port: 0,
      seed: 'bad',
      badRecords: 0.2,
      scale: {
        batches: 100,
        runs: 30,
        auditLogs: 600,
        conversations: 15,
        queries: 15,
        files: 50,
        resultsPageSize: 1000,
      },
    });
    const badIndexes = (method: string, template: string, res: Raw, listPath: string): number[] => {
      const out = new Set<number>();
      for (const file of contract.filesFor(method, template)) {
        const validate = contract.responseValidator(file, method, template, '200');
        validate(res.json);
        for (const e of validate.errors ?? []) {
          const m = new RegExp(`^${listPath}/(\\d+)(/|$)`).exec(e.instancePath);
          assert.ok(m, `error outside the record list: ${e.instancePath} ${e.message ?? ''}`);
          out.add(Number(m[1]));
        }
      }
      return [...out].sort((a, b) => a - b);
    };
    try {
      const batches = await call(sim, '/v2/batches?limit=1000');
      const batchIds = (batches.json as { batches: Array<{ id: number }> }).batches.map((b) => b.id);
      assert.deepEqual(
        badIndexes('GET', '/v2/batches', batches, '/batches').map((i) => batchIds[i]),
        sim.expected.batches().invalidKeys,
      );

      const conv = await call(sim, '/v2/conversations');
      const convIds = ((conv.json as Listing).conversations ?? []).map((c) => c.id);
      assert.deepEqual(
        badIndexes('GET', '/v2/conversations', conv, '/conversations').map((i) => convIds[i]),
        sim.expected.conversations().invalidKeys,
      );

      const audit = await call(sim, '/v1/auditlogs', { method: 'POST', body: { size: 1000 } });
      assert.deepEqual(
        badIndexes('POST', '/v1/auditlogs', audit, '/data/results'),
        sim.expected.auditLogs().invalidKeys,
      );

      const window = `from_timestamp=0&to_timestamp=${Math.floor(sim.now() / 1000)}`;
      const runs = await call(sim, `/v2/apps/runs?${window}&limit=1000`);
      const runIds = (runs.json as { runs: Array<{ id: string }> }).runs.map((r) => r.id);
      assert.deepEqual(
        badIndexes('GET', '/v2/apps/runs', runs, '/runs').map((i) => runIds[i]),
        sim.expected.runs({ from_timestamp: 0 }).invalidKeys,
      );

      let badFiles = 0;
      for (const id of runIds) {
        const res = await call(sim, `/v2/apps/runs/${id}/results?include_source_info=true`);
        const bad = badIndexes('GET', '/v2/apps/runs/{run_id}/results', res, '/files');
        badFiles += bad.length;
        assert.deepEqual(bad, sim.expected.runResults(id).invalidKeys, id);
      }
      assert.ok(badFiles > 0, 'some result files were bad');

      let badDocs = 0;
      for (const cid of convIds) {
        const res = await call(sim, `/v2/conversations/${cid}`);
        const docIds = ((res.json as Conversation).documents ?? []).map((d) => d.id);
        const bad = badIndexes('GET', '/v2/conversations/{conversation_id}', res, '/documents').map(
          (i) => docIds[i],
        );
        assert.deepEqual(bad, sim.expected.conversationDocuments(cid).invalidKeys);
        badDocs += bad.length;
        for (const did of docIds) {
          if (did === undefined) continue;
          const meta = await call(sim, `/v2/conversations/${cid}/documents/${did}`);
          const ok = contract
            .filesFor('GET', '/v2/conversations/{conversation_id}/documents/{document_id}')
            .every((f) =>
              contract.responseValidator(
                f,
                'GET',
                '/v2/conversations/{conversation_id}/documents/{document_id}',
                '200',
              )(meta.json),
            );
          assert.equal(ok, sim.expected.documentMetadataValid(cid, did));
        }
      }
      assert.ok(badDocs > 0, 'some conversation documents were bad');

      for (const qid of sim.expected.queryIds()) {
        const res = await call(sim, `/v2/queries/${qid}`);
        const ok = contract.responseValidator(
          'openapi-2026-01-15.yaml',
          'GET',
          '/v2/queries/{query_id}',
          '200',
        )(res.json);
        assert.equal(ok, sim.expected.query(qid)?.valid);
      }
    } finally {
      await sim.close();
    }
  });
});
