// Every resource through the producers' poll jobs with --edge-values on and a server that caps its
// pages below the size asked for (issue #11, Deliver 3 and 4): every record the simulator serves is
// emitted, none is dead-lettered, no walk is aborted, and each emit encodes against its Avro schema.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RESOURCE_NAMES, type ResourceName } from '../../core/resources.ts';
import { trackIds } from '../../producers/follow/tracked.ts';
import { RecordEncoder, stringKeyType } from '../../producers/record-encoder.ts';
import { DECLARATIONS } from '../../producers/resources.ts';
import { avroType } from '../../schemas/index.ts';
import { startSimulator, type Simulator } from '../../sim/index.ts';
import { emitted, harness, type Harness } from '../unit/instabase/engine-harness.ts';

const SCALE = {
  batches: 40,
  runs: 30,
  filesPerRun: 3,
  docsPerFile: 2,
  auditLogs: 300,
  conversations: 6,
  docsPerConversation: 2,
  queries: 6,
  files: 15,
  maxPageSize: 7,
};
const DAY = 86_400_000;

describe('producers with edge values on, against a server that caps its pages', () => {
  let sim: Simulator;
  let h: Harness;
  const aborted: Array<[string, unknown]> = [];

  before(async () => {
    sim = await startSimulator({ port: 0, seed: 'producers-edge', edgeValues: true, scale: SCALE });
    h = harness(sim, {
      files: sim.expected.files().map((f) => f.path),
      batchesPageSize: 25,
      runsPageSize: 25,
      auditLogsPageSize: 50,
      initialLookbackMs: 2 * DAY,
      // Far enough back that runs re-read by id still fall inside the window.
      runsLookbackMs: 2 * DAY,
    });
    h.state.apply(
      trackIds(
        { state: h.state } as Parameters<typeof trackIds>[0],
        DECLARATIONS.queries_status,
        sim.expected.queryIds(),
      ),
    );
    for (const root of [
      'conversations',
      'batches',
      'runs',
      'queries_status',
      'files_metadata',
      'audit_logs',
    ] as const) {
      await h.poll(root).catch((err: unknown) => aborted.push([root, err]));
    }
  });
  after(async () => {
    await h.close();
    await sim.close();
  });

  it('aborts no walk and dead-letters nothing', () => {
    assert.deepEqual(
      aborted.map(([root, err]) => `${root}: ${(err as Error).message}`),
      [],
    );
    assert.deepEqual(
      h.dead.map((d) => `${d.resource}: ${d.error}`),
      [],
    );
  });

  it('emits every record the simulator serves, resource by resource', () => {
    const e = sim.expected;
    const now = sim.now();
    const conversations = e.conversations();
    const docs = conversations.keys.map((c) => e.conversationDocuments(c));
    const runs = e.runs({ from_timestamp: Math.floor((now - 2 * DAY) / 1000) });
    const resultDocs = runs.keys.reduce((n, id) => n + e.runResults(id).total * SCALE.docsPerFile, 0);
    const audit = e.auditLogs({ start_time: String(now - 2 * DAY), end_time: String(now) });
    const expected: Record<ResourceName, number> = {
      conversations: conversations.total,
      conversation_documents: docs.reduce((n, d) => n + d.total, 0),
      conversation_document_metadata: docs.reduce((n, d) => n + d.keys.length + d.invalidKeys.length, 0),
      batches: e.batches().total,
      batch_files: [...e.batches().keys, ...e.batches().invalidKeys].reduce<number>(
        (n, id) => n + e.batchFiles(String(id)).total,
        0,
      ),
      runs: runs.total,
      runs_results: resultDocs,
      queries_status: SCALE.queries,
      files_metadata: SCALE.files,
      audit_logs: audit.total,
    };
    const got = Object.fromEntries(RESOURCE_NAMES.map((r) => [r, emitted(h, r).length]));
    assert.deepEqual(got, expected);
    assert.equal(runs.withoutId, 1, 'a run without id was served');
    assert.ok(
      emitted(h, 'conversation_documents').some((d) => d.fields.id === undefined),
      'a document without id was emitted',
    );
  });

  it('emits the edge values exactly, keyed as documented', () => {
    const batch = emitted(h, 'batches').find((b) => b.fields.id === 9007199254740993n);
    assert.ok(batch, 'batch id 2^53+1 as bigint');
    assert.equal(batch.key, '9007199254740993');
    const first = emitted(h, 'batches').find((b) => b.fields.id === 1)!;
    assert.equal(first.fields.created_at_ms, -9007199254740991);
    const idless = emitted(h, 'runs').find((r) => r.fields.id === undefined)!;
    assert.match(idless.key, /^[0-9a-f]{64}$/, 'a run without id is keyed by its content hash');
    const leap = emitted(h, 'conversation_documents').find(
      (d) => d.fields.uploadTimestamp === '2016-12-31T23:59:60Z',
    )!;
    assert.equal(leap.fields.uploadTimestamp_ms, Date.UTC(2017, 0, 1));
    const file = emitted(h, 'files_metadata').find((f) => f.fields.last_modified === '2016-12-31T23:59:60Z');
    assert.equal(file?.fields.last_modified_ms, Date.UTC(2017, 0, 1));
    const result = emitted(h, 'runs_results').find((r) =>
      (r.fields.page_numbers as unknown[]).includes(9007199254740993n),
    );
    assert.ok(result, 'page_numbers past 2^53 kept exact');
  });

  it('encodes every emit against its Avro schema (the encoder of the producers, without a registry)', () => {
    const registered = new Map(
      RESOURCE_NAMES.map((r) => [r, { valueId: 1, keyId: 2, type: avroType(r), keyType: stringKeyType() }]),
    );
    const encoder = new RecordEncoder(registered, undefined);
    const failures: string[] = [];
    for (const emit of h.emits) {
      try {
        encoder.encode(emit, sim.now());
      } catch (err) {
        failures.push(`${emit.resource} ${emit.key}: ${(err as Error).message}`);
      }
    }
    // Runs and documents without id (the spec requires none) encode with a null id.
    assert.deepEqual(failures, []);
  });
});
