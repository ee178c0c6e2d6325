import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressLine } from '../../../cli/start-progress.ts';
import { metrics } from '../../../core/metrics.ts';

describe('start progress line', () => {
  it('sums this process metrics per resource main table, lag and dead letters', async () => {
    metrics.recordsPublished.inc({ resource: 'batches' }, 7);
    metrics.recordsPublished.inc({ resource: 'runs' }, 3);
    metrics.rowsInserted.inc({ table: '`instabase`.`batches`' }, 7);
    metrics.rowsInserted.inc({ table: 'instabase.runs_results_fields' }, 40);
    metrics.rowsInserted.inc({ table: 'instabase.runs' }, 2);
    metrics.sinkLag.set({ topic: 'instabase.runs' }, 1);
    metrics.deadLettered.inc({ resource: 'runs', stage: 'sink' });
    assert.equal(
      await progressLine('http://127.0.0.1:3000/'),
      'published 10 · rows batches 7, runs 2 · lag 1 · dead letters 1 · http://127.0.0.1:3000/',
    );
  });
});
