import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from '../../../producers/instabase/index.ts';
import { testClient } from './helpers.ts';

describe('RateLimiter', () => {
  it('spaces requests at 1/rps on a fake clock', async () => {
    let now = 0;
    const starts: number[] = [];
    const limiter = new RateLimiter({
      rps: 4,
      concurrency: 10,
      now: () => now,
      sleep: async (ms) => {
        now += ms;
      },
    });
    for (let i = 0; i < 5; i++) {
      const release = await limiter.acquire();
      starts.push(now);
      release();
    }
    assert.deepEqual(starts, [0, 250, 500, 750, 1000]);
  });

  it('never has more than `concurrency` requests in flight', async () => {
    const limiter = new RateLimiter({ rps: 0, concurrency: 3 });
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const release = await limiter.acquire();
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 2));
        active--;
        release();
      }),
    );
    assert.equal(peak, 3);
    assert.equal(limiter.inFlight, 0);
  });

  it('lets an aborted waiter go without blocking the queue', async () => {
    const limiter = new RateLimiter({ rps: 0, concurrency: 1 });
    const first = await limiter.acquire();
    const ac = new AbortController();
    const aborted = limiter.acquire(ac.signal);
    const third = limiter.acquire();
    ac.abort(new Error('stop'));
    await assert.rejects(aborted, /stop/);
    first();
    (await third)();
    assert.equal(limiter.inFlight, 0);
  });

  it('limits the client as a whole: concurrency applies across parallel requests', async () => {
    const t = testClient({ concurrency: 2 });
    // Each response takes at least DELAY ms, so with 2 slots no 3 requests can reach the server within
    // one DELAY. Measured from dispatch times alone: a busy machine only spreads them further apart.
    const DELAY = 10;
    const dispatched: number[] = [];
    t.pool
      .intercept({ path: (p) => p.startsWith('/api/v2/batches') })
      .reply(() => {
        dispatched.push(performance.now());
        return { statusCode: 200, data: { batches: [] } };
      })
      .delay(DELAY)
      .persist();
    await Promise.all(
      Array.from({ length: 8 }, () => t.client.request({ method: 'GET', path: '/v2/batches' })),
    );
    // Timers may fire a little early; a margin keeps the bound honest without flaking.
    const window = DELAY - 2;
    const peak = Math.max(
      ...dispatched.map((d) => dispatched.filter((e) => e <= d && d < e + window).length),
    );
    assert.equal(dispatched.length, 8);
    assert.ok(peak <= 2, `peak ${peak}`);
    await t.agent.close();
  });
});
