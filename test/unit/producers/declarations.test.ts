/**
 * The resource declarations (producers/resources.ts) and the poll jobs built from them
 * (producers/jobs.ts): one declaration per resource, roots and children as their endpoints say, the
 * follow strategy agreeing with the topic kind, and buildJobs walking a root's tree in memory.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../../core/config.ts';
import { createLogger } from '../../../core/log.ts';
import { RESOURCE_NAMES, type ResourceName } from '../../../core/resources.ts';
import { buildJobs, JOB_RESOURCES } from '../../../producers/jobs.ts';
import { childrenOf, DECLARATIONS, ROOTS, type Declaration } from '../../../producers/resources.ts';
import type { ProducerRuntime } from '../../../producers/runtime.ts';
import { resourceMeta } from '../../../schemas/index.ts';
import { MemoryApi, port } from './follow-ports.ts';

const all: Declaration[] = RESOURCE_NAMES.map((name) => DECLARATIONS[name]);

describe('resource declarations', () => {
  it('are one per resource, under its own name, and a missing one does not compile', () => {
    for (const name of RESOURCE_NAMES) {
      assert.equal(DECLARATIONS[name].name, name);
      assert.equal(DECLARATIONS[name].spec.name, name, `${name}'s endpoint`);
    }
    // @ts-expect-error: every ResourceName needs its declaration
    const partial: { [K in ResourceName]: Declaration<K> } = { batches: DECLARATIONS.batches };
    assert.ok(partial);
  });

  it('each root job walks the tree its endpoints declare, as the jobs always did', () => {
    assert.deepEqual(JOB_RESOURCES, {
      conversations: ['conversations', 'conversation_documents', 'conversation_document_metadata'],
      batches: ['batches', 'batch_files'],
      runs: ['runs', 'runs_results'],
      queries_status: ['queries_status'],
      files_metadata: ['files_metadata'],
      audit_logs: ['audit_logs'],
    });
  });

  it('children say how their parent ids resolve; only a windowed parent marks children ready', () => {
    for (const d of all) {
      const parent = d.spec.parent?.resource;
      if (parent === undefined) {
        assert.notEqual(d.follow.kind, 'ready-children', `${d.name} is a root`);
        continue;
      }
      if (d.follow.kind === 'ready-children') {
        assert.equal(DECLARATIONS[parent].follow.kind, 'entity-window', d.name);
      } else {
        assert.equal(d.follow.kind, 'changes', d.name);
        assert.equal(typeof d.parentId, 'function', `${d.name} resolves its parent's ids`);
        // A changes tree is walked two levels deep below its root (./jobs.ts walkScattered).
        assert.deepEqual(
          childrenOf(d.name).flatMap((c) => childrenOf(c.name)),
          [],
          `${d.name}: too deep`,
        );
      }
    }
  });

  it('append-window resources, and only they, have an append-only (delete retention) topic', () => {
    for (const d of all) {
      assert.equal(d.follow.kind === 'append-window', resourceMeta(d.name).kind === 'append', d.name);
    }
  });

  it('strategies find what they read in the endpoint: terminal values, path parameters, child fields', () => {
    for (const d of ROOTS) {
      const f = d.follow;
      if (f.kind === 'tracked') assert.ok(d.spec.terminal, `${d.name} declares when it is final`);
      if (f.kind === 'tracked' || f.kind === 'head-per-path') {
        assert.ok(d.spec.path.includes(`{${f.pathParam}}`), `${d.name}: {${f.pathParam}}`);
      }
      if (f.kind === 'changes' && f.fromChild) {
        assert.ok(
          childrenOf(d.name).some((c) => c.name === f.fromChild?.resource),
          d.name,
        );
      }
    }
  });
});

describe('buildJobs', () => {
  const batches = [
    { id: 1, name: 'one' },
    { id: 2, name: 'two' },
  ];
  const files: Record<string, Array<Record<string, unknown>>> = {
    '1': [{ full_path: '/a.pdf' }, { full_path: '/b.pdf' }],
    '2': [{ full_path: '/c.pdf' }],
  };
  const api = (listed = [...batches]) =>
    new MemoryApi()
      .list('/v2/batches', 'batches', () => listed)
      .on('/v2/batches/{batch_id}/files', (req) => ({
        nodes: files[String(req.pathParams?.batch_id)] ?? [],
        has_more: false,
      }));

  function jobsOf(memory: MemoryApi, resources: ResourceName[]) {
    const p = port(memory);
    const config = configSchema.parse({
      instabase: { apiUrl: 'http://api.invalid/api', token: 't' },
      producers: { resources, intervalsMs: { batches: 1234 } },
    });
    const runtime = {
      context: () => p.ctx,
      deadLetterFailure: async () => undefined,
    } as unknown as ProducerRuntime;
    const logger = createLogger('jobs-test', undefined, 'silent');
    return { p, jobs: buildJobs({ config, runtime, logger }) };
  }

  it('makes one job per enabled root, in order, with its interval', () => {
    const { jobs } = jobsOf(api(), ['audit_logs', 'batches', 'batch_files', 'runs_results']);
    assert.deepEqual(
      jobs.map((j) => [j.name, j.intervalMs]),
      [
        ['batches', 1234],
        ['audit_logs', 30_000],
      ],
    );
  });

  it("walks a batch's files before its page, with the batch id in the path, when batch_files is on", async () => {
    const listed = [...batches];
    const memory = api(listed);
    const { p, jobs } = jobsOf(memory, ['batches', 'batch_files']);
    await jobs[0]!.run(new AbortController().signal);
    const resources = p.committed.flatMap((s) => s.emits.map((e) => `${e.resource}:${e.key}`));
    assert.deepEqual(resources, [
      'batch_files:["1","/a.pdf"]',
      'batch_files:["1","/b.pdf"]',
      'batch_files:["2","/c.pdf"]',
      'batches:1',
      'batches:2',
    ]);
    const filesRequests = memory.requests.filter((r) => r.path === '/v2/batches/{batch_id}/files');
    assert.deepEqual(
      filesRequests.map((r) => [r.pathParams, r.query?.page_size]),
      [
        [{ batch_id: 1 }, 100],
        [{ batch_id: 2 }, 100],
      ],
    );

    // A batch that is gone takes its files with it at once, after the batch's own two missed walks.
    listed.splice(1, 1);
    await jobs[0]!.run(new AbortController().signal);
    await jobs[0]!.run(new AbortController().signal);
    const gone = p.committed.flatMap((s) => s.emits.filter((e) => e.deleted).map((e) => e.key));
    assert.deepEqual(gone, ['2', '["2","/c.pdf"]']);
  });

  it("finishes a batch's cascade at the next poll when its files' tombstones failed after the batch's", async () => {
    const listed = [...batches];
    const memory = api(listed);
    const { p, jobs } = jobsOf(memory, ['batches', 'batch_files']);
    const run = () => jobs[0]!.run(new AbortController().signal);
    await run();
    listed.splice(1, 1);
    await run(); // batch 2 missed once: marked
    // The batch's tombstone commits; the first transaction with its files' does not (a kill there).
    const commit = p.ctx.commit;
    let failed = false;
    p.ctx.commit = async (step) => {
      if (!failed && step.emits.some((e) => e.resource === 'batch_files' && e.deleted)) {
        failed = true;
        throw new Error('transaction aborted');
      }
      await commit(step);
    };
    await assert.rejects(run(), /transaction aborted/);
    const tombstones = () => p.committed.flatMap((s) => s.emits.filter((e) => e.deleted).map((e) => e.key));
    assert.deepEqual(tombstones(), ['2'], 'the batch is gone, its files not yet');
    assert.ok(p.state.get('_cascade/batches/2'), 'the note that they are due committed with it');
    await run();
    assert.deepEqual(tombstones(), ['2', '["2","/c.pdf"]'], 'the next poll tombstones them, once');
    assert.equal(p.state.get('_cascade/batches/2'), undefined, 'and drops the note');
    await run();
    assert.deepEqual(tombstones(), ['2', '["2","/c.pdf"]']);
  });

  // The crash suite's group run (stop 26's CI) saw 13 committed conversations for 12 keys: a transaction
  // of a conversation's detail failed (a broker kill) while its listing page still committed.
  it("holds back a new conversation whose detail failed, rather than publish it without the detail's state", async () => {
    const memory = new MemoryApi()
      .on('/v2/conversations', () => ({
        conversations: [
          { id: 'c1', name: 'one' },
          { id: 'c2', name: 'two' },
        ],
      }))
      .on('/v2/conversations/{conversation_id}', (req) => {
        const id = String(req.pathParams?.conversation_id);
        return { id, name: id, state: 'COMPLETE', documents: [{ id: 1, name: `${id}.pdf` }] };
      })
      .on('/v2/conversations/{conversation_id}/documents/{document_id}', (req) => ({
        id: 1,
        name: `${String(req.pathParams?.conversation_id)}.pdf`,
      }));
    const { p, jobs } = jobsOf(memory, ['conversations', 'conversation_documents']);
    p.failCommitAfter(0); // the first detail's transaction does not commit
    await assert.rejects(jobs[0]!.run(new AbortController().signal), /transaction aborted/);
    const firstPoll = p.committed.flatMap((s) => s.emits.filter((e) => e.resource === 'conversations'));
    assert.equal(firstPoll.length, 1, 'only the conversation whose detail committed');
    await jobs[0]!.run(new AbortController().signal);
    const published = p.committed.flatMap((s) =>
      s.emits.filter((e) => e.resource === 'conversations').map((e) => `${e.key}:${String(e.fields.state)}`),
    );
    assert.deepEqual(published.sort(), ['c1:COMPLETE', 'c2:COMPLETE']);
    // Held back, it was still seen: no mark, so a later walk without it tombstones it only after two.
    assert.equal(
      p.committed.flatMap((s) => s.state).filter((c) => c.value?.missed).length,
      0,
      'no conversation marked missing',
    );
  });

  it('leaves batch files alone when batch_files is off', async () => {
    const memory = api();
    const { p, jobs } = jobsOf(memory, ['batches']);
    await jobs[0]!.run(new AbortController().signal);
    assert.deepEqual(
      p.committed.flatMap((s) => s.emits.map((e) => e.resource)),
      ['batches', 'batches'],
    );
    assert.equal(memory.requests.filter((r) => r.path !== '/v2/batches').length, 0);
  });
});
