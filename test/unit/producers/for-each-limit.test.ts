/**
 * forEachLimit fans a poll out over parents (ready runs, tracked query ids). When one branch fails the
 * poll fails and the next poll walks the same items again, so the failed fan-out must not go on
 * starting items behind it, and must not report failure while branches are still publishing: the next
 * poll would walk their items a second time (duplicate run results after a broker restart).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forEachLimit } from '../../../producers/engine/entity-window.ts';

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Items whose work finishes only when the test says so, and a log of what happened in which order. */
function fakeWork(count: number) {
  const gates = Array.from({ length: count }, deferred);
  const events: string[] = [];
  const inFlight = { now: 0, max: 0 };
  const work = async (i: number) => {
    events.push(`start ${i}`);
    inFlight.now += 1;
    inFlight.max = Math.max(inFlight.max, inFlight.now);
    try {
      await gates[i]!.promise;
      events.push(`end ${i}`);
    } catch (err) {
      events.push(`fail ${i}`);
      throw err;
    } finally {
      inFlight.now -= 1;
    }
  };
  return { gates, events, inFlight, work, items: gates.map((_, i) => i) };
}

/** Lets every queued continuation run, so whatever would start next has started. */
const drain = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('forEachLimit', () => {
  it('runs every item, never more than the limit at once', async () => {
    const { gates, events, inFlight, work, items } = fakeWork(5);
    const done = forEachLimit(items, 2, work);
    for (const gate of gates) {
      await drain();
      gate.resolve();
    }
    await done;
    assert.equal(inFlight.max, 2);
    assert.deepEqual(events.filter((e) => e.startsWith('end')).sort(), [
      'end 0',
      'end 1',
      'end 2',
      'end 3',
      'end 4',
    ]);
  });

  it('starts no item after a failure', async () => {
    const { gates, events, work, items } = fakeWork(6);
    const done = forEachLimit(items, 2, work);
    done.catch(() => undefined);
    await drain();
    gates[1]!.reject(new Error('item 1 failed'));
    await drain();
    // The slot item 0 frees is not handed on: the poll has failed and will walk the rest again.
    gates[0]!.resolve();
    await drain();
    for (const gate of gates.slice(2)) gate.resolve();
    await assert.rejects(done, /item 1 failed/);
    assert.deepEqual(events, ['start 0', 'start 1', 'fail 1', 'end 0']);
  });

  it('rejects only once the items still running have finished', async () => {
    const { gates, events, work, items } = fakeWork(6);
    let settled = false;
    const done = forEachLimit(items, 3, work).finally(() => {
      settled = true;
      events.push('rejected');
    });
    done.catch(() => undefined);
    await drain();
    gates[1]!.reject(new Error('item 1 failed'));
    await drain();
    assert.equal(settled, false, 'items 0 and 2 are still running: the fan-out must wait for them');
    gates[2]!.resolve();
    await drain();
    assert.equal(settled, false, 'item 0 is still running: the fan-out must wait for it');
    gates[0]!.resolve();
    await assert.rejects(done, /item 1 failed/);
    assert.deepEqual(events.slice(-3), ['end 2', 'end 0', 'rejected']);
  });

  it('rejects with the first failure when several running items fail', async () => {
    const { gates, work, items } = fakeWork(4);
    const done = forEachLimit(items, 3, work);
    done.catch(() => undefined);
    await drain();
    gates[2]!.reject(new Error('first'));
    await drain();
    gates[0]!.reject(new Error('second'));
    gates[1]!.resolve();
    await assert.rejects(done, /^Error: first$/);
  });

  it('resolves at once for no items', async () => {
    await forEachLimit([], 3, () => Promise.reject(new Error('never called')));
  });
});
