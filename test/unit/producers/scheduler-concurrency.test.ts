/**
 * The scheduler runs at most `concurrency` polls at once, and stop() also ends the jobs still waiting
 * for a slot: a shutdown must not hang behind a poll that never got to run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../../core/log.ts';
import { Scheduler, type PollJob } from '../../../producers/scheduler.ts';

const logger = createLogger('test', undefined, 'silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('polls take turns for the slots and stop() ends jobs still waiting for one', async () => {
  let running = 0;
  let maxRunning = 0;
  const started: string[] = [];
  // Each poll holds its slot until the scheduler stops it.
  const job = (name: string): PollJob => ({
    name,
    intervalMs: 1,
    run: (signal) =>
      new Promise<void>((resolve) => {
        started.push(name);
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        signal.addEventListener('abort', () => {
          running -= 1;
          resolve();
        });
      }),
  });
  const scheduler = new Scheduler([job('a'), job('b'), job('c')], 2, logger);
  scheduler.start();
  await sleep(30);
  assert.deepEqual(started, ['a', 'b']);
  await scheduler.stop();
  assert.equal(maxRunning, 2);
  assert.equal(running, 0);
  assert.deepEqual(started, ['a', 'b'], 'c never ran: it was still waiting when the scheduler stopped');
  assert.equal(scheduler.status.get('c')!.running, false);
});
