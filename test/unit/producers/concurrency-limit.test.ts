/**
 * The producers' one concurrency limiter and the fan-outs built on it.
 *
 * forEachLimit fans a poll out over parents (ready runs, tracked query ids). When one branch fails the
 * poll fails and the next poll walks the same items again, so the failed fan-out must not go on
 * starting items behind it, and must not report failure while branches are still publishing: the next
 * poll would walk their items a second time (duplicate run results after a broker restart).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConcurrencyLimit, forEachLimit, settleAll } from '../../../producers/concurrency-limit.ts';

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

describe('settleAll', () => {
  it('runs every item despite a failure, then rejects with the first error', async () => {
    const { gates, events, work, items } = fakeWork(4);
    const done = settleAll(items, 2, work);
    done.catch(() => undefined);
    await drain();
    gates[0]!.reject(new Error('first'));
    await drain();
    gates[1]!.reject(new Error('second'));
    await drain();
    gates[2]!.resolve();
    gates[3]!.resolve();
    await assert.rejects(done, /^Error: first$/);
    assert.deepEqual(events.filter((e) => e.startsWith('start')).length, 4);
  });
});

describe('ConcurrencyLimit', () => {
  it('hands a freed slot to the waiters in the order they asked', async () => {
    const slots = new ConcurrencyLimit(1);
    const order: string[] = [];
    const first = await slots.acquire();
    const second = slots.acquire().then((release) => (order.push('second'), release));
    const third = slots.acquire().then((release) => (order.push('third'), release));
    await drain();
    assert.deepEqual(order, []);
    first();
    (await second)();
    (await third)();
    assert.deepEqual(order, ['second', 'third']);
    assert.equal(slots.inUse, 0);
  });

  it('frees a slot once however often its release is called', async () => {
    const slots = new ConcurrencyLimit(2);
    const a = await slots.acquire();
    await slots.acquire();
    a();
    a();
    assert.equal(slots.inUse, 1);
  });

  it('turns away a waiter whose signal aborts, which then holds no slot', async () => {
    const slots = new ConcurrencyLimit(1);
    const held = await slots.acquire();
    const ac = new AbortController();
    const aborted = slots.acquire(ac.signal);
    const next = slots.acquire();
    ac.abort(new Error('stopped'));
    await assert.rejects(aborted, /stopped/);
    held();
    (await next)();
    assert.equal(slots.inUse, 0);
    await assert.rejects(slots.acquire(ac.signal), /stopped/);
  });
});
