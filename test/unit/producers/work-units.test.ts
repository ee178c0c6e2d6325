/**
 * How an instance's resources become units of work (producers/work-units.ts): alone, one unit with
 * the transactional id it always had; in a group, one unit per root resource with a group-wide id (a root
 * with per-parent work split into producers.shards units), and files_metadata together with batches when
 * it reads batch files' paths from batches' state.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../core/config.ts';
import { groupLayout, stateKeysOf, workUnits } from '../../../producers/work-units.ts';

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
    const units = workUnits(config({ PRODUCERS_GROUP: 'g1', PRODUCERS_SHARDS: '1' }));
    assert.deepEqual(
      units.map((u) => [u.name, u.transactionalId]),
      units.map((u) => [u.name, `g1.producers.${u.name}`]),
    );
    assert.equal(units.length, 6);
    const runs = units.find((u) => u.name === 'runs')!;
    assert.deepEqual(runs.resources, ['runs', 'runs_results']);
    assert.equal(runs.shard, undefined);
    assert.equal(new Set(units.flatMap((u) => u.resources)).size, 10, 'every resource in exactly one unit');
    assert.deepEqual(
      groupLayout(config({ PRODUCERS_GROUP: 'g1', PRODUCERS_SHARDS: '1' })),
      ['conversations', 'batches', 'runs', 'queries_status', 'files_metadata', 'audit_logs'],
      'one partition per root, as before shares existed',
    );
  });

  it('in a group, a root with per-parent work is split into producers.shards units (2 by default)', () => {
    const units = workUnits(config({ PRODUCERS_GROUP: 'g1' }));
    assert.deepEqual(
      units.map((u) => [u.name, u.shard ? `${u.shard.index}/${u.shard.count}` : '-']),
      [
        ['conversations.0', '0/2'],
        ['conversations.1', '1/2'],
        ['batches.0', '0/2'],
        ['batches.1', '1/2'],
        ['runs.0', '0/2'],
        ['runs.1', '1/2'],
        ['queries_status', '-'],
        ['files_metadata', '-'],
        ['audit_logs', '-'],
      ],
    );
    const shares = units.filter((u) => u.name.startsWith('conversations.'));
    for (const u of shares) {
      assert.deepEqual(u.resources, [
        'conversations',
        'conversation_documents',
        'conversation_document_metadata',
      ]);
      assert.equal(u.transactionalId, `g1.producers.${u.name}`);
    }
    const four = config({ PRODUCERS_GROUP: 'g1', PRODUCERS_SHARDS: '4' });
    assert.equal(workUnits(four).filter((u) => u.roots[0] === 'runs').length, 4);
    assert.deepEqual(
      groupLayout(four),
      workUnits(four).map((u) => u.name),
      'the layout is the units, in partition order',
    );
  });

  it('the layout does not depend on the resources a member runs, so members read partitions alike', () => {
    const some = config({ PRODUCERS_GROUP: 'g1' }, { resources: ['runs', 'audit_logs'] });
    assert.deepEqual(groupLayout(some), groupLayout(config({ PRODUCERS_GROUP: 'g1' })));
    assert.deepEqual(
      workUnits(some).map((u) => u.name),
      ['runs.0', 'runs.1', 'audit_logs'],
    );
  });

  it('in a group, files_metadata reading batch files runs in the batches unit, which stays whole', () => {
    const units = workUnits(config({ PRODUCERS_GROUP: 'g1' }, { filesFromBatchFiles: true }));
    assert.equal(units.length, 7);
    const batches = units.find((u) => u.name === 'batches')!;
    assert.deepEqual([...batches.roots].sort(), ['batches', 'files_metadata']);
    assert.ok(batches.resources.includes('files_metadata'));
    assert.equal(batches.shard, undefined);
    assert.ok(
      units.some((u) => u.name === 'runs.1'),
      'the other roots are still split',
    );
  });
});

describe('stateKeysOf', () => {
  it("gives a unit its resources' keys, its bookkeeping among them, and no other unit's", () => {
    const owns = stateKeysOf(['batches', 'batch_files']);
    const mine = ['batches/1', 'batch_files/1/["1","/a.pdf"]', '_pages/batch_files', '_cascade/batches/2'];
    const others = ['runs/1', 'runs/_window', '_pages/runs', '_cascade/conversations/c1', 'batches_x/1'];
    assert.deepEqual(mine.filter(owns), mine);
    assert.deepEqual(others.filter(owns), []);
  });
});
