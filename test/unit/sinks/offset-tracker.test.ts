import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OffsetTracker } from '../../../sinks/offset-tracker.ts';

const positions = (t: OffsetTracker) => t.committable().map((o) => `${o.topic}:${o.partition}@${o.offset}`);

describe('OffsetTracker', () => {
  it('commits only the durable prefix, whatever order buffers land in', () => {
    const t = new OffsetTracker();
    t.add('a', 0, 10, 1);
    t.add('a', 0, 11, 1);
    t.add('a', 0, 12, 2);
    t.add('a', 0, 14, 3); // 13 was a marker: it joins buffer 3's run
    t.markDurable(3, 'a', [0]);
    assert.deepEqual(positions(t), [], 'buffers 1 and 2 are not durable yet');
    t.markDurable(1, 'a', [0]);
    assert.deepEqual(positions(t), ['a:0@12']);
    t.markDurable(2, 'a', [0]);
    assert.deepEqual(positions(t), ['a:0@15']);
    t.committed(t.committable());
    assert.deepEqual(positions(t), []);
  });

  it('a markers-only tail is committed once everything before it is durable', () => {
    const t = new OffsetTracker();
    t.add('a', 0, 0, 1);
    t.passed('a', 0, 1, 3);
    assert.deepEqual(positions(t), []);
    t.markDurable(1, 'a', [0]);
    assert.deepEqual(positions(t), ['a:0@3']);
    // A partition whose first batch held only markers.
    t.passed('a', 1, 5, 7);
    assert.deepEqual(positions(t), ['a:0@3', 'a:1@7']);
  });

  it('refuses an offset below the consumed position, and forgets everything on reset', () => {
    const t = new OffsetTracker();
    assert.equal(t.add('a', 0, 5, 1), true);
    assert.equal(t.add('a', 0, 5, 2), false);
    assert.equal(t.add('a', 0, 4, 2), false);
    assert.deepEqual([...t.consumed()], [['a:0', 6]]);
    t.reset();
    t.markDurable(1, 'a', [0]);
    assert.deepEqual(positions(t), []);
    assert.equal(t.add('a', 0, 5, 3), true, 'a new assignment reads the partition again');
  });

  it('a dropped buffer blocks its partition for good', () => {
    const t = new OffsetTracker();
    t.add('a', 0, 0, 1);
    t.add('a', 0, 1, 2);
    t.markDurable(2, 'a', [0]);
    assert.deepEqual(positions(t), []);
    assert.equal(t.settled('a', 0), false);
  });
});
