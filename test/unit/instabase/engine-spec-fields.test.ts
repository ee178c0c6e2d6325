// What the spec offers is requested and carried (issue #11, Deliver 5): source info on run results, the
// run-level results envelope on each result document, and a conversation's state from its detail.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../../../sim/index.ts';
import { emitted, harness } from './engine-harness.ts';

async function withSim(fn: (sim: Simulator) => Promise<void>): Promise<void> {
  const sim = await startSimulator({
    port: 0,
    seed: 'spec-fields',
    scale: { runs: 12, filesPerRun: 2, conversations: 8, docsPerConversation: 2 },
  });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

describe('fields the spec offers', () => {
  it('run results are requested with source info and carry the run envelope', async () => {
    await withSim(async (sim) => {
      const h = harness(sim, { resources: ['runs', 'runs_results'], initialLookbackMs: 86_400_000 });
      await h.poll('runs');
      const docs = emitted(h, 'runs_results');
      assert.ok(docs.length > 0);
      for (const d of docs) {
        const layouts = d.fields.page_layouts as unknown[];
        assert.ok(layouts.length > 0, 'page layouts come with include_source_info');
        assert.ok((d.fields.post_processed_paths as unknown[]).length > 0);
        const coordinates = (d.object as { fields: Array<{ source_coordinates?: unknown[] }> }).fields[0]!
          .source_coordinates;
        assert.ok(coordinates && coordinates.length > 0, 'source coordinates stay in the object');
        assert.equal(d.fields.run_status, 'COMPLETE');
        assert.equal(typeof d.fields.run_message, 'string');
        assert.equal(d.fields.run_review_completed, true);
        const custom = d.fields.run_keys_custom as { source?: unknown; run?: unknown };
        assert.equal(custom.source, 'simulator');
        assert.equal(typeof custom.run, 'string');
        assert.ok(Array.isArray((d.fields.run_case_info as { fields: unknown[] }).fields));
      }
      await h.close();
    });
  });

  it('a conversation is published with the state of its detail', async () => {
    await withSim(async (sim) => {
      const h = harness(sim, { resources: ['conversations'] });
      await h.poll('conversations');
      const conversations = emitted(h, 'conversations');
      assert.equal(conversations.length, 8);
      for (const c of conversations) {
        const c0 = sim.data.conversationIndex(String(c.fields.id))!;
        assert.equal(c.fields.state, sim.data.conversation(c0).state, String(c.fields.id));
        assert.equal((c.object as { state: unknown }).state, c.fields.state, 'part of the published object');
      }
      // Nothing changed: a second poll publishes nothing, the state included.
      const before = h.emits.length;
      await h.poll('conversations');
      assert.equal(h.emits.length, before);
      await h.close();
    });
  });
});
