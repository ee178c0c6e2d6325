/**
 * Every resource, end to end from the simulator into Kafka on the real stack: exact record counts
 * per topic, dead letters for exactly the records the simulator serves broken, no duplicates after a
 * restart, and new simulator data picked up by the next poll.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { resourceTopic, producerDlqTopic } from '../../core/topics.ts';
import { RESOURCE_NAMES } from '../../core/resources.ts';
import { startProducers, type RunningProducers } from '../../producers/daemon.ts';
import { startSimulator, type Simulator } from '../../sim/index.ts';
import { quietLogger, readTopics, testConfig, uniqueName, waitFor } from '../helpers/pipeline.ts';

const YEAR_MS = 365 * 24 * 3600 * 1000;

describe('producers against the simulator', () => {
  let sim: Simulator;
  const prefix = uniqueName('itp');

  before(async () => {
    sim = await startSimulator({
      port: 0,
      seed: 'producers-it',
      scale: {
        batches: 130,
        runs: 14,
        filesPerRun: 2,
        docsPerFile: 2,
        auditLogs: 450,
        conversations: 4,
        docsPerConversation: 2,
        queries: 4,
        files: 12,
      },
      badRecords: 0.05,
      logger: quietLogger,
    });
  });
  after(async () => {
    await sim?.close();
  });

  const config = () =>
    testConfig(
      prefix,
      {
        producers: {
          files: sim.expected.files().map((f) => f.path),
          queryIds: sim.expected.queryIds(),
          initialLookbackMs: 5 * YEAR_MS,
          defaultIntervalMs: 3_600_000,
          auditLogsSettleMs: 0,
          batchesPageSize: 25,
          auditLogsPageSize: 100,
        },
      },
      { INSTABASE_API_URL: sim.url, INSTABASE_API_TOKEN: sim.token },
    );

  async function runOnce(): Promise<RunningProducers> {
    const producers = await startProducers(config(), quietLogger, { now: () => sim.now() });
    await waitFor('every job to finish a poll', () =>
      [...producers.scheduler.status.values()].every((s) => s.polls >= 1 && !s.running),
    );
    for (const [name, s] of producers.scheduler.status)
      assert.equal(s.lastError, undefined, `${name}: ${s.lastError}`);
    return producers;
  }

  function expectedCounts(): Record<string, { valid: number; invalid: number }> {
    const e = sim.expected;
    const runs = e.runs();
    const completeRuns = runs.keys.filter((id) => e.runResults(id).total > 0);
    const conversations = e.conversations();
    let documents = 0;
    let docInvalid = 0;
    let metadata = 0;
    let metadataInvalid = 0;
    for (const id of conversations.keys) {
      const docs = e.conversationDocuments(id);
      documents += docs.keys.length;
      docInvalid += docs.invalidKeys.length;
      for (const did of docs.keys) {
        if (e.documentMetadataValid(id, did)) metadata += 1;
        else metadataInvalid += 1;
      }
    }
    const queries = e.queryIds().map((id) => e.query(id)!);
    const files = e.files();
    const audit = e.auditLogs({ end_time: String(sim.now()) });
    // Every batch with an id has its files walked, valid or not.
    const batchFiles = [...e.batches().keys, ...e.batches().invalidKeys].map((id) =>
      e.batchFiles(String(id)),
    );
    return {
      batches: { valid: e.batches().keys.length, invalid: e.batches().invalidKeys.length },
      batch_files: {
        valid: batchFiles.reduce((n, f) => n + f.keys.length + (f.withoutId ?? 0), 0),
        invalid: batchFiles.reduce((n, f) => n + f.invalidKeys.length, 0),
      },
      runs: { valid: runs.keys.length, invalid: runs.invalidKeys.length },
      runs_results: {
        valid: completeRuns.reduce((n, id) => n + e.runResults(id).keys.length * 2, 0),
        invalid: completeRuns.reduce((n, id) => n + e.runResults(id).invalidKeys.length, 0),
      },
      conversations: { valid: conversations.keys.length, invalid: conversations.invalidKeys.length },
      conversation_documents: { valid: documents, invalid: docInvalid },
      conversation_document_metadata: { valid: metadata, invalid: metadataInvalid },
      queries_status: {
        valid: queries.filter((q) => q.valid).length,
        invalid: queries.filter((q) => !q.valid).length,
      },
      files_metadata: {
        valid: files.filter((f) => f.valid).length,
        invalid: files.filter((f) => !f.valid).length,
      },
      audit_logs: { valid: audit.total - audit.invalidCount, invalid: audit.invalidCount },
    };
  }

  test('one poll publishes exactly the valid records and dead-letters exactly the broken ones', async () => {
    const producers = await runOnce();
    await producers.stop();
    const cfg = config();
    const expected = expectedCounts();
    const topics = await readTopics(
      cfg,
      RESOURCE_NAMES.flatMap((r) => [resourceTopic(cfg, r), producerDlqTopic(cfg, r)]),
    );
    for (const resource of RESOURCE_NAMES) {
      const records = topics.get(resourceTopic(cfg, resource))!;
      const dead = topics.get(producerDlqTopic(cfg, resource))!;
      const letters = dead.map(
        (d) =>
          JSON.parse(d.raw!.toString()) as { reason: string; raw: string; endpoint: string; error: string },
      );
      const why = letters
        .filter((l) => l.reason !== 'invalid-record')
        .map((l) => l.error)
        .slice(0, 2)
        .join(' | ');
      const keys = new Set(records.map((r) => String(r.key)));
      assert.equal(records.length, expected[resource]!.valid, `${resource}: records (${why})`);
      assert.equal(keys.size, records.length, `${resource}: one record per key`);
      assert.equal(dead.length, expected[resource]!.invalid, `${resource}: dead letters (${why})`);
      for (const letter of letters) {
        assert.equal(letter.reason, 'invalid-record');
        assert.ok(letter.raw.length > 0 && letter.endpoint.length > 0);
      }
      for (const r of records) {
        assert.equal(r.value!._deleted, false);
        assert.equal(typeof r.value!._raw_json, 'string');
      }
    }
  });

  test('a restart publishes nothing again, and the next poll picks up new data', async () => {
    const cfg = config();
    const batchesBefore = (await readTopics(cfg, [resourceTopic(cfg, 'batches')])).get(
      resourceTopic(cfg, 'batches'),
    )!.length;
    const producers = await runOnce();
    assert.deepEqual(
      Object.fromEntries(producers.published),
      {},
      'a second poll over unchanged data publishes nothing',
    );
    sim.advance(30 * 60_000);
    for (const name of producers.scheduler.status.keys()) producers.scheduler.pollNow(name);
    await waitFor('the second round of polls', () =>
      [...producers.scheduler.status.values()].every((s) => s.polls >= 2 && !s.running),
    );
    await producers.stop();
    const after = await readTopics(cfg, [
      resourceTopic(cfg, 'batches'),
      resourceTopic(cfg, 'audit_logs'),
      producerDlqTopic(cfg, 'audit_logs'),
    ]);
    const batches = after.get(resourceTopic(cfg, 'batches'))!;
    const latest = new Map(batches.map((b) => [String(b.key), b.value!]));
    const expected = sim.expected.batches();
    assert.equal(latest.size, expected.keys.length, 'every valid batch, new ones included, is in the topic');
    assert.ok(batches.length > batchesBefore, 'new and updated batches were published');
    const audit = after.get(resourceTopic(cfg, 'audit_logs'))!;
    const auditDead = after.get(producerDlqTopic(cfg, 'audit_logs'))!;
    const auditExpected = sim.expected.auditLogs({ end_time: String(sim.now()) });
    assert.equal(
      audit.length,
      auditExpected.total - auditExpected.invalidCount,
      'audit log: no gap, no duplicate',
    );
    assert.equal(
      auditDead.length,
      auditExpected.invalidCount,
      'audit log: exactly the broken entries dead-lettered',
    );
  });
});
