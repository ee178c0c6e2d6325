/**
 * How an instance's resources become units of work (producers/work-units.ts): alone, one unit with
 * the transactional id it always had; in a group, one unit per root resource with a group-wide id, and
 * files_metadata together with batches when it reads batch files' paths from batches' state.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../core/config.ts';
import { workUnits } from '../../../producers/work-units.ts';

const config = (env: Record<string, string> = {}, producers: Record<string, unknown> = {}) =>
  loadConfig({ cwd: '/nonexistent', env: { KAFKA_CLIENT_ID: 'ibs', ...env }, overrides: { producers } });

describe('workUnits', () => {
  it('alone: one unit of every resource, its transactional id named by the resource set', () => {
    const units = workUnits(config());
    assert.equal(units.length, 1);
    assert.match(units[0]!.transactionalId, /^ibs-producer-[0-9a-f]{10}$/);
    assert.equal(units[0]!.resources.length, 10);
    const other = workUnits(config({}, { resources: ['batches', 'batch_files', 'runs', 'runs_results'] }));
    assert.notEqual(other[0]!.transactionalId, units[0]!.transactionalId, 'another set, another id');
    assert.deepEqual(other[0]!.resources, ['batches', 'batch_files', 'runs', 'runs_results']);
  });

  it('in a group: one unit per root, the same id on every member, children with their root', () => {
    const units = workUnits(config({ PRODUCERS_GROUP: 'g1' }));
    assert.deepEqual(
      units.map((u) => [u.name, u.transactionalId]),
      units.map((u) => [u.name, `g1.producers.${u.name}`]),
    );
    assert.equal(units.length, 6);
    const runs = units.find((u) => u.name === 'runs')!;
    assert.deepEqual(runs.resources, ['runs', 'runs_results']);
    assert.equal(new Set(units.flatMap((u) => u.resources)).size, 10, 'every resource in exactly one unit');
  });

  it('in a group, files_metadata reading batch files runs in the batches unit', () => {
    const units = workUnits(config({ PRODUCERS_GROUP: 'g1' }, { filesFromBatchFiles: true }));
    assert.equal(units.length, 5);
    const batches = units.find((u) => u.name === 'batches')!;
    assert.deepEqual([...batches.roots].sort(), ['batches', 'files_metadata']);
    assert.ok(batches.resources.includes('files_metadata'));
  });
});
