// Paging and parent rules of the producers' poll jobs (issue #11, part 4), against the in-process
// simulator: children of an invalid parent are walked, a short page ends nothing, and a runaway walk is
// stopped early by the page budget instead of at the client's 100,000-page cap.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  PAGE_BUDGET_FACTOR,
  PAGE_BUDGET_MIN_PAGES,
  pageHistoryKey,
  type PageHistory,
} from '../../../producers/follow/page-budget.ts';
import { InstabasePagingError } from '../../../producers/instabase/errors.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../../sim/index.ts';
import { emitted, harness } from './engine-harness.ts';

async function withSim(opts: SimulatorOptions, fn: (sim: Simulator) => Promise<void>): Promise<void> {
  const sim = await startSimulator({ port: 0, seed: 'engine-paging', ...opts });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

const SMALL = {
  batches: 47,
  runs: 40,
  filesPerRun: 3,
  auditLogs: 400,
  conversations: 12,
  docsPerConversation: 3,
  queries: 3,
  files: 5,
};

describe('children of a parent that breaks the contract', () => {
  it('an invalid conversation is dead-lettered and its valid documents and metadata are still published', async () => {
    await withSim({ scale: SMALL, badRecords: 0.3 }, async (sim) => {
      const h = harness(sim, { resources: ['conversations'] });
      await h.poll('conversations');
      const truth = sim.expected.conversations();
      assert.ok(truth.invalidKeys.length > 0, 'the seed serves invalid conversations');
      const deadIds = h.dead
        .filter((d) => d.resource === 'conversations')
        .map((d) => (JSON.parse(d.raw!) as { id: string }).id);
      assert.deepEqual(deadIds.sort(), [...truth.invalidKeys].sort());

      const docsOf = (cid: string) =>
        emitted(h, 'conversation_documents').filter((e) => e.fields.conversation_id === cid);
      let checked = 0;
      for (const cid of truth.invalidKeys) {
        const docs = sim.expected.conversationDocuments(cid);
        assert.equal(docsOf(cid).length, docs.keys.length, `valid documents of invalid conversation ${cid}`);
        const meta = emitted(h, 'conversation_document_metadata').filter(
          (e) => e.fields.conversation_id === cid,
        );
        const validMeta = [...docs.keys, ...docs.invalidKeys].filter((d) =>
          sim.expected.documentMetadataValid(cid, d),
        );
        assert.equal(meta.length, validMeta.length, `metadata of the documents of ${cid}`);
        checked += docs.keys.length;
      }
      assert.ok(checked > 0, 'at least one invalid conversation has valid documents');

      // Being invalid is not being gone: later complete walks publish no tombstone for it.
      await h.poll('conversations');
      await h.poll('conversations');
      assert.equal(h.emits.filter((e) => e.deleted).length, 0);
      await h.close();
    });
  });

  it('a COMPLETE run that breaks the contract still gets its result files published', async () => {
    await withSim({ scale: SMALL, badRecords: 0.3 }, async (sim) => {
      const h = harness(sim, { resources: ['runs', 'runs_results'], initialLookbackMs: 86_400_000 });
      await h.poll('runs');
      const now = sim.now();
      const invalid = sim.expected.runs({ from_timestamp: Math.floor(now / 1000) - 86_400 }).invalidKeys;
      const completeInvalid = invalid.filter(
        (id): id is string => sim.data.run(sim.data.runIndex(id, now)!, now).status === 'COMPLETE',
      );
      assert.ok(completeInvalid.length > 0, 'the seed serves invalid COMPLETE runs');
      for (const id of completeInvalid) {
        const files = sim.expected.runResults(id).keys.length;
        const docs = emitted(h, 'runs_results').filter((e) => e.fields.run_id === id);
        assert.equal(docs.length, files * 2, `result documents of invalid run ${id}`);
      }
      await h.close();
    });
  });
});

describe('a server that caps pages below the size asked for', () => {
  it('loses nothing: batches, runs and audit entries are walked to the empty page', async () => {
    await withSim({ scale: { ...SMALL, maxPageSize: 7 } }, async (sim) => {
      const h = harness(sim, {
        resources: ['batches', 'runs', 'audit_logs'],
        batchesPageSize: 25,
        runsPageSize: 20,
        auditLogsPageSize: 50,
        initialLookbackMs: 86_400_000,
      });
      await h.poll('batches');
      await h.poll('runs');
      await h.poll('audit_logs');
      assert.equal(emitted(h, 'batches').length, SMALL.batches);
      const now = sim.now();
      const runs = sim.expected.runs({ from_timestamp: Math.floor(now / 1000) - 86_400 });
      assert.equal(emitted(h, 'runs').length, runs.keys.length);
      assert.ok(runs.keys.length > 20, 'more runs than one requested page');
      assert.equal(emitted(h, 'audit_logs').length, SMALL.auditLogs);
      assert.equal(h.dead.length, 0);
      await h.close();
    });
  });
});

describe('the endless-paging guard', () => {
  it('stops a runaway walk at a multiple of the last complete walk, loudly, and lets the next walk go further', async () => {
    await withSim({ scale: { ...SMALL, batches: 30 } }, async (sim) => {
      const h = harness(sim, { resources: ['batches'], batchesPageSize: 10 });
      await h.poll('batches');
      // 30 batches in pages of 10: three full pages and the empty one that ends the walk.
      assert.deepEqual(h.state.get<PageHistory>(pageHistoryKey('batches')), { n: 4 });
      assert.equal(emitted(h, 'batches').length, 30);

      sim.setEndless('infinite');
      const budget = Math.max(PAGE_BUDGET_MIN_PAGES, PAGE_BUDGET_FACTOR * 4);
      await assert.rejects(
        h.poll('batches'),
        (e: unknown) => e instanceof InstabasePagingError && e.reason === 'page_cap' && e.pages === budget,
      );
      // The first 30 are unchanged; every other record of the budget's pages is new.
      assert.equal(emitted(h, 'batches').length, budget * 10);
      assert.ok(
        h.lines.some((l) => l.includes('"level":50') && l.includes(`walk stopped after ${budget} pages`)),
        'logged at error level',
      );
      assert.equal(h.dead.filter((d) => d.reason === 'malformed-response').length, 1, 'dead-lettered');
      assert.deepEqual(h.state.get<PageHistory>(pageHistoryKey('batches')), { n: 4, b: budget });

      // Still runaway: the next walk may take FACTOR times the budget hit, and no more.
      await assert.rejects(
        h.poll('batches'),
        (e: unknown) => e instanceof InstabasePagingError && e.pages === budget * PAGE_BUDGET_FACTOR,
      );

      // Growth that was real: once the server ends its walk again, the history follows it.
      sim.setEndless('off');
      await h.poll('batches');
      assert.deepEqual(h.state.get<PageHistory>(pageHistoryKey('batches')), { n: 4 });
      await h.close();
    });
  });

  it('without history, a walk is held to its resource cap', async () => {
    await withSim({ scale: { ...SMALL, batches: 30 }, endless: 'infinite' }, async (sim) => {
      const h = harness(sim, { resources: ['batches'], batchesPageSize: 10 }, { maxPagesPerWalk: 25 });
      await assert.rejects(
        h.poll('batches'),
        (e: unknown) => e instanceof InstabasePagingError && e.pages === 25,
      );
      assert.equal(emitted(h, 'batches').length, 250);
      assert.equal(h.state.get(pageHistoryKey('batches')), undefined, 'nothing to escalate past the cap');
      await h.close();
    });
  });
});
