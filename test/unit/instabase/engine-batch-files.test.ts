// batch_files through the producers' batches job, against the in-process simulator: each batch's files
// are walked with it (token paging), keyed by batch and full_path, tombstoned when gone, and their paths
// feed files_metadata when asked to.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EntityState } from '../../../producers/follow/changes.ts';
import { stateKey } from '../../../producers/follow/state-keys.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../../sim/index.ts';
import { emitted, harness } from './engine-harness.ts';

const SCALE = {
  batches: 23,
  filesPerBatch: 3,
  runs: 2,
  auditLogs: 10,
  conversations: 1,
  queries: 1,
  files: 4,
};

async function withSim(opts: SimulatorOptions, fn: (sim: Simulator) => Promise<void>): Promise<void> {
  const sim = await startSimulator({ port: 0, seed: 'engine-batch-files', scale: SCALE, ...opts });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

/** `batch id|full_path` of every file the simulator serves, valid or not. */
function servedFiles(sim: Simulator): string[] {
  const b = sim.expected.batches();
  return [...b.keys, ...b.invalidKeys].flatMap((id) => {
    const f = sim.expected.batchFiles(String(id));
    return [...f.keys, ...f.invalidKeys].map((path) => `${id}|${path}`);
  });
}

describe('batch_files, walked by the batches job', () => {
  it('publishes every file of every batch once, keyed by batch and full_path; a second poll repeats nothing', async () => {
    await withSim({}, async (sim) => {
      const h = harness(sim, { batchFilesPageSize: 2 });
      try {
        await h.poll('batches');
        const files = emitted(h, 'batch_files');
        const want = servedFiles(sim);
        assert.ok(want.length > SCALE.batches, 'the simulator serves several files per batch');
        assert.deepEqual(
          files.map((e) => `${String(e.fields.batch_id)}|${String(e.fields.full_path)}`).sort(),
          want.sort(),
        );
        for (const e of files) {
          assert.equal(e.key, JSON.stringify([String(e.fields.batch_id), e.fields.full_path]));
          assert.equal(e.endpoint, 'GET /v2/batches/{batch_id}/files');
          assert.equal(
            e.fields.modified_timestamp_ms,
            (e.fields.modified_timestamp as number) * 1000,
            'Unix seconds become timestamp-millis',
          );
        }
        const count = h.emits.length;
        await h.poll('batches');
        assert.equal(h.emits.length, count, 'unchanged files are not published again');
      } finally {
        await h.close();
      }
    });
  });

  it('walks new files of a batch as the clock adds them', async () => {
    await withSim({ growth: { batchesPerMin: 0, runsPerMin: 0, auditPerMin: 0 } }, async (sim) => {
      const h = harness(sim);
      try {
        await h.poll('batches');
        const before = emitted(h, 'batch_files').length;
        sim.advance(3 * 3600_000);
        await h.poll('batches');
        const after = emitted(h, 'batch_files');
        assert.ok(after.length > before, 'batches that get updates get files');
        assert.equal(new Set(after.map((e) => e.key)).size, after.length, 'each file once');
        assert.equal(after.length, servedFiles(sim).length);
      } finally {
        await h.close();
      }
    });
  });

  it('tombstones a file gone from its batch after two complete walks without it, with its last state', async () => {
    await withSim({}, async (sim) => {
      const h = harness(sim);
      try {
        await h.poll('batches');
        const gone = stateKey('batch_files', '1', '["1","/gone.pdf"]');
        const fields = { batch_id: 1, full_path: '/gone.pdf' };
        h.state.apply([
          { key: gone, value: { h: 'x', k: '["1","/gone.pdf"]', f: fields, o: { full_path: '/gone.pdf' } } },
        ]);
        await h.poll('batches');
        assert.equal(h.emits.filter((e) => e.deleted).length, 0, 'one miss only marks it');
        assert.equal(h.state.get<EntityState>(gone)?.missed, true);
        await h.poll('batches');
        const tombstones = h.emits.filter((e) => e.deleted);
        assert.deepEqual(
          tombstones.map((e) => [e.resource, e.key, e.fields]),
          [['batch_files', '["1","/gone.pdf"]', fields]],
        );
        assert.equal(h.state.get(gone), undefined);
      } finally {
        await h.close();
      }
    });
  });

  it('is not walked when batch_files is not enabled', async () => {
    await withSim({}, async (sim) => {
      const h = harness(sim, { resources: ['batches'] });
      try {
        await h.poll('batches');
        assert.ok(emitted(h, 'batches').length > 0);
        assert.equal(emitted(h, 'batch_files').length, 0);
      } finally {
        await h.close();
      }
    });
  });
});

describe('files_metadata from batch files', () => {
  it('HEADs the explicit list and, with filesFromBatchFiles, every batch file path', async () => {
    await withSim({}, async (sim) => {
      const listed = sim.expected.files().map((f) => f.path);
      const h = harness(sim, { files: listed, filesFromBatchFiles: true });
      try {
        await h.poll('batches');
        await h.poll('files_metadata');
        const paths = emitted(h, 'batch_files')
          .map((e) => e.fields.full_path)
          .filter((p): p is string => typeof p === 'string')
          // The listing names paths from the root; the HEAD path template already has the '/'.
          .map((p) => p.replace(/^\/+/, ''));
        assert.ok(paths.length > 0);
        const heads = emitted(h, 'files_metadata');
        assert.deepEqual(heads.map((e) => e.fields.path).sort(), [...new Set([...listed, ...paths])].sort());
        for (const e of heads.filter((x) => paths.includes(x.fields.path as string))) {
          assert.equal(e.fields.present, true, `${String(e.fields.path)} exists`);
          assert.equal(e.fields.kind, 'file');
        }
      } finally {
        await h.close();
      }
    });
  });

  it('without filesFromBatchFiles, only the explicit list', async () => {
    await withSim({}, async (sim) => {
      const listed = sim.expected.files().map((f) => f.path);
      const h = harness(sim, { files: listed });
      try {
        await h.poll('batches');
        await h.poll('files_metadata');
        assert.deepEqual(
          emitted(h, 'files_metadata')
            .map((e) => e.fields.path)
            .sort(),
          [...listed].sort(),
        );
      } finally {
        await h.close();
      }
    });
  });
});
