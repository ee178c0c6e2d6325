/**
 * A poll that fails while some of its branches still run (a fan-out whose sibling failed): the
 * scheduler aborts that poll's signal, so the stragglers stop instead of publishing, and the next poll
 * starts only once every step already handed to the publisher has settled. Without both, the next poll
 * and the stragglers walk the same cursors at once and publish the same pages twice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../../core/log.ts';
import { Scheduler, type PollJob } from '../../../producers/scheduler.ts';

const logger = createLogger('test', undefined, 'silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a failed poll's signal is aborted and the next poll waits for in-flight steps", async () => {
  const events: string[] = [];
  let runs = 0;
  let straggler: Promise<void> | undefined;
  let inFlight: Promise<void> | undefined;
  const job: PollJob = {
    name: 'runs',
    intervalMs: 1,
    run: async (signal) => {
      runs += 1;
      if (runs === 1) {
        // One branch keeps going after its sibling fails; it checks the signal before each step.
        straggler = (async () => {
          await sleep(20);
          events.push(signal.aborted ? 'straggler stopped' : 'straggler published');
        })();
        // A step of the failed poll is still on its way to Kafka.
        inFlight = sleep(60).then(() => void events.push('in-flight step settled'));
        throw new Error('sibling branch failed');
      }
      events.push(`poll ${runs} started`);
    },
  };
  const scheduler = new Scheduler([job], 1, logger, async () => {
    await inFlight;
  });
  scheduler.start();
  while (runs < 2) await sleep(5);
  await straggler;
  await scheduler.stop();
  assert.deepEqual(events.slice(0, 3), ['straggler stopped', 'in-flight step settled', 'poll 2 started']);
  assert.equal(scheduler.status.get('runs')!.failures, 1);
});
