// Each paginator walks each endpoint of the simulator to the end, and the records it yields are compared
// with the simulator's ground truth: exactly, clean and with every fault knob on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  InstabaseAuthError,
  InstabaseClient,
  InstabasePagingError,
  childPathParams,
  walk,
  type InstabaseClientOptions,
  type Page,
  type ResourceSpec,
  type WalkParams,
  type WalkSummary,
} from '../../producers/instabase/index.ts';
import {
  auditLogs,
  batchFiles,
  batches,
  conversationDocumentMetadata,
  conversationDocuments,
  conversations,
  filesMetadata,
  queriesStatus,
  runs,
  runsResults,
} from '../../producers/resources.ts';
import { createLogger } from '../../core/log.ts';
import {
  startSimulator,
  type FaultKind,
  type FaultOptions,
  type Simulator,
  type SimulatorOptions,
} from '../../sim/index.ts';

const SCALE = {
  batches: 130,
  runs: 36,
  filesPerRun: 3,
  resultsPageSize: 2,
  auditLogs: 2500,
  conversations: 10,
  docsPerConversation: 2,
  queries: 10,
  files: 40,
};

const quietLogger = createLogger('contract-test');
quietLogger.level = 'error';

function clientFor(sim: Simulator, overrides: Partial<InstabaseClientOptions> = {}): InstabaseClient {
  return new InstabaseClient({
    baseUrl: sim.url,
    token: sim.token,
    timeoutMs: 2000,
    maxRetries: 6,
    maxMalformedRetries: 4,
    retryBaseMs: 1,
    retryMaxMs: 10,
    rps: 0,
    concurrency: 6,
    maxPagesPerWalk: 1000,
    logger: quietLogger,
    ...overrides,
  });
}

interface Tally {
  valid: unknown[];
  invalid: unknown[];
}

async function tally<R>(
  client: InstabaseClient,
  spec: ResourceSpec<R>,
  params: WalkParams,
  validKey: (r: R, index: number, page: Page<R>) => unknown,
  invalidKey: (raw: unknown, index: number) => unknown,
  into: Tally = { valid: [], invalid: [] },
): Promise<Tally> {
  for await (const page of walk(client, spec, params)) {
    for (const item of page.items) {
      if (item.ok) into.valid.push(validKey(item.record, item.index, page));
      else into.invalid.push(invalidKey(item.raw, item.index));
    }
  }
  return into;
}

async function firstPage<R>(gen: AsyncGenerator<Page<R>, WalkSummary, void>): Promise<Page<R>> {
  const step = await gen.next();
  assert.ok(!step.done, 'the walk yielded no page');
  return step.value;
}

/** Runs fn over items, at most `limit` at a time. */
async function each<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

const sorted = (xs: unknown[]) =>
  [...xs].sort((a, b) => (String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
const idOf = (raw: unknown) => (raw as { id?: unknown }).id;

function assertSame(name: string, got: Tally, valid: unknown[], invalid: unknown[]): void {
  assert.deepEqual(sorted(got.valid), sorted(valid), `${name}: valid records`);
  assert.deepEqual(sorted(got.invalid), sorted(invalid), `${name}: invalid records`);
}

/** Walks all ten resources and compares every one with the simulator's ground truth. */
async function walkEverything(sim: Simulator, client: InstabaseClient): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const e = sim.expected;
  const note = (name: string, t: Tally) => (counts[name] = t.valid.length + t.invalid.length);

  // conversations → conversation_documents → conversation_document_metadata
  const conv = await tally(client, conversations, {}, (r) => r.id, idOf);
  const convTruth = e.conversations();
  assertSame('conversations', conv, convTruth.keys, convTruth.invalidKeys);
  note('conversations', conv);
  const docs: Tally = { valid: [], invalid: [] };
  const docTruth: Tally = { valid: [], invalid: [] };
  const meta: Tally = { valid: [], invalid: [] };
  const metaTruth: Tally = { valid: [], invalid: [] };
  await each([...convTruth.keys, ...convTruth.invalidKeys], 4, async (cid) => {
    const parent = { id: cid };
    const pathParams = childPathParams(conversationDocuments, parent);
    const t = await tally(
      client,
      conversationDocuments,
      { pathParams },
      (r) => `${cid}/${String(r.id)}`,
      (raw) => `${cid}/${String(idOf(raw))}`,
    );
    docs.valid.push(...t.valid);
    docs.invalid.push(...t.invalid);
    const truth = e.conversationDocuments(cid);
    docTruth.valid.push(...truth.keys.map((d) => `${cid}/${d}`));
    docTruth.invalid.push(...truth.invalidKeys.map((d) => `${cid}/${d}`));
    // A document served without an id (edge values) has no metadata to ask for.
    docTruth.valid.push(...Array.from({ length: truth.withoutId ?? 0 }, () => `${cid}/undefined`));
    for (const did of [...truth.keys, ...truth.invalidKeys]) {
      const params = childPathParams(conversationDocumentMetadata, { id: did }, pathParams);
      await tally(
        client,
        conversationDocumentMetadata,
        { pathParams: params },
        () => `${cid}/${did}`,
        () => `${cid}/${did}`,
        meta,
      );
      (e.documentMetadataValid(cid, did) ? metaTruth.valid : metaTruth.invalid).push(`${cid}/${did}`);
    }
  });
  assertSame('conversation_documents', docs, docTruth.valid, docTruth.invalid);
  assertSame('conversation_document_metadata', meta, metaTruth.valid, metaTruth.invalid);
  note('conversation_documents', docs);
  note('conversation_document_metadata', meta);

  const b = await tally(client, batches, { pageSize: 25 }, (r) => r.id, idOf);
  const bTruth = e.batches();
  assertSame('batches', b, bTruth.keys, bTruth.invalidKeys);
  note('batches', b);

  // batches → batch_files, token-paged two files at a time so most batches take several pages. A batch
  // that breaks the contract still has an id, and files.
  const bf: Tally = { valid: [], invalid: [] };
  const bfTruth: Tally = { valid: [], invalid: [] };
  await each([...bTruth.keys, ...bTruth.invalidKeys], 4, async (id) => {
    const pathParams = childPathParams(batchFiles, { id });
    const pathOf = (raw: unknown) => `${id}/${String((raw as { full_path?: unknown }).full_path)}`;
    await tally(client, batchFiles, { pathParams, pageSize: 2 }, pathOf, pathOf, bf);
    const truth = e.batchFiles(String(id));
    bfTruth.valid.push(...truth.keys.map((k) => `${id}/${k}`));
    bfTruth.invalid.push(...truth.invalidKeys.map((k) => `${id}/${k}`));
    // A node served without a full_path (edge values) is valid all the same.
    bfTruth.valid.push(...Array.from({ length: truth.withoutId ?? 0 }, () => `${id}/undefined`));
  });
  assertSame('batch_files', bf, bfTruth.valid, bfTruth.invalid);
  note('batch_files', bf);

  const nowS = Math.floor(sim.now() / 1000);
  const window = { from_timestamp: nowS - 30 * 3600, to_timestamp: nowS };
  const r = await tally(client, runs, { pageSize: 10, query: window }, (x) => x.id, idOf);
  const rTruth = e.runs(window);
  const runsWithoutId = Array.from({ length: rTruth.withoutId ?? 0 }, () => undefined);
  assertSame('runs', r, [...rTruth.keys, ...runsWithoutId], rTruth.invalidKeys);
  note('runs', r);

  const files: Tally = { valid: [], invalid: [] };
  const filesTruth: Tally = { valid: [], invalid: [] };
  // A run served without an id (edge values) has no results to ask for.
  await each([...rTruth.keys, ...rTruth.invalidKeys], 4, async (runId) => {
    const pathParams = childPathParams(runsResults, { id: runId });
    await tally(
      client,
      runsResults,
      { pathParams },
      (_x, i) => `${runId}/${i}`,
      (_raw, i) => `${runId}/${i}`,
      files,
    );
    const truth = e.runResults(runId);
    filesTruth.valid.push(...truth.keys.map((f) => `${runId}/${f}`));
    filesTruth.invalid.push(...truth.invalidKeys.map((f) => `${runId}/${f}`));
  });
  assertSame('runs_results', files, filesTruth.valid, filesTruth.invalid);
  note('runs_results', files);

  const q: Tally = { valid: [], invalid: [] };
  const qTruth: Tally = { valid: [], invalid: [] };
  await each(e.queryIds(), 4, async (id) => {
    await tally(
      client,
      queriesStatus,
      { pathParams: { query_id: id } },
      (x) => `${x.query_id}:${x.status}`,
      () => id,
      q,
    );
    const truth = e.query(id)!;
    (truth.valid ? qTruth.valid : qTruth.invalid).push(truth.valid ? `${id}:${truth.status}` : id);
  });
  assertSame('queries_status', q, qTruth.valid, qTruth.invalid);
  note('queries_status', q);

  const fm: Tally = { valid: [], invalid: [] };
  const fmTruth = e.files();
  await each(fmTruth, 4, async (f) => {
    await tally(
      client,
      filesMetadata,
      { pathParams: { path: f.path } },
      (x) => `${x.path}:${x.exists}:${x.type}`,
      () => f.path,
      fm,
    );
  });
  assertSame(
    'files_metadata',
    fm,
    fmTruth.filter((f) => f.valid).map((f) => `${f.path}:${f.exists}:${f.type}`),
    fmTruth.filter((f) => !f.valid).map((f) => f.path),
  );
  note('files_metadata', fm);

  const a = await tally(
    client,
    auditLogs,
    { pageSize: 300 },
    (_x, i) => i,
    (_raw, i) => i,
  );
  const aTruth = e.auditLogs();
  assert.equal(a.valid.length + a.invalid.length, aTruth.total, 'audit_logs total');
  assert.deepEqual(a.invalid, aTruth.invalidKeys, 'audit_logs invalid positions');
  assert.deepEqual(
    a.valid,
    Array.from({ length: aTruth.total }, (_, i) => i).filter((i) => !aTruth.invalidKeys.includes(i)),
  );
  note('audit_logs', a);

  const filter = {
    log_type: 'login_v2',
    email: 'user2@acme.com',
    start_time: String(sim.now() - 40 * 86_400_000),
    end_time: String(sim.now()),
  };
  const af = await tally(
    client,
    auditLogs,
    { pageSize: 3, body: filter },
    (x) => `${x.log_type}|${x.email}`,
    (_raw, i) => i,
  );
  const afTruth = e.auditLogs(filter);
  assert.equal(af.valid.length + af.invalid.length, afTruth.total, 'filtered audit_logs total');
  assert.deepEqual(af.invalid, afTruth.invalidKeys);
  assert.ok(
    af.valid.every((k) => k === 'login_v2|user2@acme.com'),
    'filter applied',
  );
  return counts;
}

const TRANSIENT: Array<[string, Partial<FaultOptions>, FaultKind[]]> = [
  ['429 with Retry-After', { rate429: 0.3, retryAfterS: 1 }, ['429']],
  ['500', { rate500: 0.3 }, ['500']],
  ['503', { rate503: 0.3 }, ['503']],
  ['slow responses past the client timeout', { rateSlow: 0.15, slowMs: 400 }, ['slow']],
  ['truncated JSON', { rateTruncate: 0.3 }, ['truncate']],
  ['non-JSON bodies', { rateMalformed: 0.3 }, ['malformed']],
  ['connection resets', { rateReset: 0.3 }, ['reset']],
  [
    'every transient fault at once',
    {
      rate429: 0.05,
      retryAfterS: 0,
      rate500: 0.05,
      rate503: 0.05,
      rateTruncate: 0.05,
      rateMalformed: 0.05,
      rateReset: 0.05,
    },
    ['429', '500', '503', 'truncate', 'malformed', 'reset'],
  ],
];

async function withSim<T>(opts: SimulatorOptions, fn: (sim: Simulator) => Promise<T>): Promise<T> {
  const sim = await startSimulator({ port: 0, seed: 'paging', scale: SCALE, ...opts });
  try {
    return await fn(sim);
  } finally {
    await sim.close();
  }
}

describe('paginators walk every endpoint with exact counts', () => {
  let cleanCounts: Record<string, number> = {};

  it('clean', async () => {
    await withSim({}, async (sim) => {
      const client = clientFor(sim);
      cleanCounts = await walkEverything(sim, client);
      await client.close();
      for (const [name, n] of Object.entries(cleanCounts)) assert.ok(n > 0, `${name} walked nothing`);
      assert.equal(cleanCounts.audit_logs, SCALE.auditLogs);
      assert.equal(cleanCounts.batches, SCALE.batches);
    });
  });

  for (const [name, faults, kinds] of TRANSIENT) {
    it(`with ${name}: the same records as a clean walk`, async () => {
      await withSim({ faults }, async (sim) => {
        // A slow response must outlast the deadline to be a fault at all.
        const client = clientFor(sim, faults.rateSlow ? { timeoutMs: 150 } : {});
        const counts = await walkEverything(sim, client);
        await client.close();
        assert.deepEqual(counts, cleanCounts);
        const injected = sim.stats().faults;
        for (const k of kinds) assert.ok(injected[k] > 0, `no ${k} fault was injected`);
      });
    });
  }

  it('with bad records: the valid ones, plus each bad one exactly once as an invalid item', async () => {
    await withSim({ badRecords: 0.15 }, async (sim) => {
      const client = clientFor(sim);
      const counts = await walkEverything(sim, client);
      await client.close();
      assert.deepEqual(counts, cleanCounts);
      const e = sim.expected;
      assert.ok(
        e.batches().invalidKeys.length > 0 && e.auditLogs().invalidCount > 0,
        'bad records were served',
      );
    });
  });

  it('with a server that caps every page below the size asked for: still every record', async () => {
    // 7 is below every page size walkEverything asks for except the filtered audit walk's 3.
    await withSim({ scale: { ...SCALE, maxPageSize: 7 } }, async (sim) => {
      const client = clientFor(sim);
      assert.deepEqual(await walkEverything(sim, client), cleanCounts);
      await client.close();
    });
  });

  it('with bad records and every transient fault at once', async () => {
    const all = TRANSIENT.at(-1)![1];
    await withSim({ badRecords: 0.1, faults: all }, async (sim) => {
      const client = clientFor(sim);
      assert.deepEqual(await walkEverything(sim, client), cleanCounts);
      await client.close();
    });
  });
});

describe('paginators follow the clock', () => {
  it('sees new batches and audit entries, finished runs with results, finished queries', async () => {
    await withSim({ growth: { batchesPerMin: 3, runsPerMin: 0.5, auditPerMin: 30 } }, async (sim) => {
      const client = clientFor(sim);
      const before = { batches: sim.expected.batches().total, audit: sim.expected.auditLogs().total };
      const running = sim.expected.runs({ status: ['RUNNING'] });
      const runningIds = running.keys;
      const runningQueries = sim.expected
        .queryIds()
        .filter((id) => sim.expected.query(id)!.status === 'RUNNING');
      assert.ok(running.total + runningQueries.length > 0, 'something is still running at the start');
      for (const id of runningIds) assert.equal(sim.expected.runResults(id).total, 0);

      sim.advance(3600_000);
      assert.equal(sim.expected.batches().total, before.batches + 180);
      assert.equal(sim.expected.auditLogs().total, before.audit + 1800);
      const counts = await walkEverything(sim, client);
      assert.equal(counts.batches, before.batches + 180);
      assert.equal(counts.audit_logs, before.audit + 1800);
      for (const id of runningIds) {
        const status = sim.expected.runs({ run_id: id, from_timestamp: 0 });
        assert.equal(status.total, 1);
        const pages = [];
        for await (const p of walk(client, runsResults, { pathParams: { run_id: id } })) pages.push(p);
        assert.notEqual(pages[0]!.meta?.status, 'RUNNING');
        if (pages[0]!.meta?.status === 'COMPLETE')
          assert.equal(pages.flatMap((p) => p.items).length, SCALE.filesPerRun);
      }
      for (const id of runningQueries) assert.notEqual(sim.expected.query(id)!.status, 'RUNNING');
      await client.close();
    });
  });
});

describe('edge values survive the client exactly', () => {
  it('int64 extremes, huge floats, non-numeric timestamp strings, odd strings', async () => {
    await withSim({ edgeValues: true }, async (sim) => {
      const client = clientFor(sim);
      const counts = await walkEverything(sim, client);
      assert.ok(counts.batches! > 0);
      const first = await firstPage(walk(client, batches, { pageSize: 2 }));
      const [b1, b2] = first.records;
      assert.equal(b1!.created_at_ms, -9007199254740991);
      assert.equal(b1!.updated_at_ms, 9007199254740991);
      assert.ok(b1!.name.includes('\u0000 nul'));
      assert.equal(b2!.name, '');
      const runPage = await firstPage(
        walk(client, runs, { query: { from_timestamp: 0, to_timestamp: Math.floor(sim.now() / 1000) } }),
      );
      assert.equal(runPage.records[0]!.finish_timestamp, 9223372036854775807n);
      assert.equal(typeof runPage.records[1]!.start_timestamp, 'bigint');
      const audit = await firstPage(walk(client, auditLogs, { pageSize: 5 }));
      assert.deepEqual(
        audit.records.map((r) => r.timestamp_millis),
        ['not-a-number', '', '1.7e12', '-9007199254740991', '99999999999999999999'],
      );
      const file = sim.expected.files()[1]!;
      const head = await firstPage(walk(client, filesMetadata, { pathParams: { path: file.path } }));
      assert.equal(head.records[0]!.content_length, 9223372036854775807n);
      const cid = sim.expected.conversations().keys[0]!;
      const meta = await firstPage(
        walk(client, conversationDocumentMetadata, {
          pathParams: { conversation_id: cid, document_id: 9007199254740991 },
        }),
      );
      assert.equal(meta.records[0]!.id, 9007199254740991);
      const results = await firstPage(
        walk(client, runsResults, {
          pathParams: { run_id: runPage.records[0]!.id! },
          query: { include_confidence_scores: true },
        }),
      );
      const field = results.records[0]!.documents![0]!.fields![0]!;
      assert.equal(field.confidence?.model, 1.7976931348623157e308);
      assert.equal(field.confidence?.ocr, 5e-324);
      await client.close();
    });
  });
});

describe('an endless page loop is impossible', () => {
  const expectPaging = async (p: Promise<unknown>, reason: string, endpoint: string) =>
    assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof InstabasePagingError, String(e));
      assert.equal(e.reason, reason);
      assert.equal(e.endpoint, endpoint);
      assert.match(e.message, new RegExp(`offset ${e.offset}`));
      return true;
    });
  const drain = async <R>(spec: ResourceSpec<R>, client: InstabaseClient, params: WalkParams = {}) => {
    for await (const _ of walk(client, spec, params)) void _;
  };

  it('a server that ignores the offset: repeated_page on every paged endpoint', async () => {
    await withSim({ endless: 'repeat' }, async (sim) => {
      const client = clientFor(sim);
      const run = sim.expected.runs({ status: ['COMPLETE'] }).keys[0]!;
      await expectPaging(drain(batches, client, { pageSize: 10 }), 'repeated_page', 'GET /v2/batches');
      await expectPaging(
        drain(runs, client, { pageSize: 5, query: { from_timestamp: 0 } }),
        'repeated_page',
        'GET /v2/apps/runs',
      );
      await expectPaging(
        drain(runsResults, client, { pathParams: { run_id: run } }),
        'repeated_page',
        'GET /v2/apps/runs/{run_id}/results',
      );
      await expectPaging(drain(auditLogs, client, { pageSize: 50 }), 'repeated_page', 'POST /v1/auditlogs');
      // A server that ignores start_token hands back the token it was sent: caught before the page repeats.
      const manyFiles = sim.expected
        .batches()
        .keys.find((id) => sim.expected.batchFiles(String(id)).total > 2)!;
      await expectPaging(
        drain(batchFiles, client, { pathParams: { batch_id: manyFiles }, pageSize: 1 }),
        'no_progress',
        'GET /v2/batches/{batch_id}/files',
      );
      await client.close();
    });
  });

  it('has_more stays true with empty pages: no_progress', async () => {
    await withSim({ endless: 'empty' }, async (sim) => {
      const client = clientFor(sim);
      const run = sim.expected.runs({ status: ['COMPLETE'] }).keys[0]!;
      await expectPaging(
        drain(runsResults, client, { pathParams: { run_id: run } }),
        'no_progress',
        'GET /v2/apps/runs/{run_id}/results',
      );
      // Empty pages with has_more, and the start_token sent handed back: asking again would loop.
      await expectPaging(
        drain(batchFiles, client, { pathParams: { batch_id: 1 } }),
        'no_progress',
        'GET /v2/batches/{batch_id}/files',
      );
      await client.close();
    });
  });

  it('a server that always has one more page: the page cap', async () => {
    await withSim({ endless: 'infinite' }, async (sim) => {
      const client = clientFor(sim, { maxPagesPerWalk: 25 });
      const run = sim.expected.runs({ status: ['COMPLETE'] }).keys[0]!;
      await expectPaging(drain(batches, client, { pageSize: 10 }), 'page_cap', 'GET /v2/batches');
      await expectPaging(
        drain(runsResults, client, { pathParams: { run_id: run } }),
        'page_cap',
        'GET /v2/apps/runs/{run_id}/results',
      );
      await expectPaging(
        drain(auditLogs, client, { pageSize: 10, maxPages: 7 }),
        'page_cap',
        'POST /v1/auditlogs',
      );
      await expectPaging(
        drain(batchFiles, client, { pathParams: { batch_id: 1 }, pageSize: 10 }),
        'page_cap',
        'GET /v2/batches/{batch_id}/files',
      );
      await client.close();
    });
  });
});

describe('against the simulator, the client', () => {
  it('raises InstabaseAuthError for a wrong token and a wrong IB-Context', async () => {
    await withSim({ context: 'acme_org' }, async (sim) => {
      const wrongToken = clientFor(sim, { token: 'not-the-token', context: 'acme_org' });
      await assert.rejects(
        walk(wrongToken, batches).next(),
        (e: unknown) => e instanceof InstabaseAuthError && e.status === 401,
      );
      const wrongContext = clientFor(sim, { context: 'other_org' });
      await assert.rejects(
        walk(wrongContext, batches).next(),
        (e: unknown) => e instanceof InstabaseAuthError && e.status === 403,
      );
      const right = clientFor(sim, { context: 'acme_org' });
      assert.equal((await firstPage(walk(right, batches))).records.length, 100);
      await Promise.all([wrongToken.close(), wrongContext.close(), right.close()]);
    });
  });

  it('walks past short pages: a server that caps page sizes loses nothing, and the walk ends on the empty page', async () => {
    await withSim({ scale: { ...SCALE, maxPageSize: 20 } }, async (sim) => {
      const client = clientFor(sim);
      const pages: number[] = [];
      for await (const page of walk(client, batches, { pageSize: 50 })) pages.push(page.records.length);
      assert.equal(
        pages.reduce((a, b) => a + b, 0),
        SCALE.batches,
      );
      assert.deepEqual(pages, [20, 20, 20, 20, 20, 20, 10, 0]);
      await client.close();
    });
  });
});
