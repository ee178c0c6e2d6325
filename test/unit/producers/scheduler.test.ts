/**
 * The scheduler (producers/scheduler.ts) with jobs held in memory: what a poll leaves in the status,
 * how the interval is kept, pollNow, and stop(). (Slots and the failed-poll hand-over have their own
 * files: scheduler-concurrency, scheduler-failed-poll.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../../core/log.ts';
import { registerSecret } from '../../../core/secrets.ts';
import { Scheduler, type PollJob } from '../../../producers/scheduler.ts';

const logger = createLogger('test', undefined, 'silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(2);
  }
}

describe('Scheduler', () => {
  it('a failure is counted with its message (secrets redacted), the next success clears it', async () => {
    const secret = 'tok-scheduler-test-0123456789';
    registerSecret(secret);
    let runs = 0;
    let afterFailure: Record<string, unknown> = {};
    const job: PollJob = {
      name: 'batches',
      intervalMs: 1,
      run: async (signal) => {
        runs += 1;
        if (runs === 1) throw new Error(`401 for token ${secret}`);
        if (runs === 2) afterFailure = { ...scheduler.status.get('batches')! };
        // The third poll stays in flight until the scheduler stops.
        if (runs >= 3) await new Promise((resolve) => signal.addEventListener('abort', resolve));
      },
    };
    const scheduler = new Scheduler([job], 1, logger);
    scheduler.start();
    await until(() => runs === 3);
    const status = scheduler.status.get('batches')!;
    assert.deepEqual(
      {
        polls: status.polls,
        failures: status.failures,
        lastError: status.lastError,
        running: status.running,
      },
      { polls: 2, failures: 1, lastError: undefined, running: true },
    );
    assert.equal(typeof status.lastSuccessAt, 'number');
    assert.deepEqual(afterFailure, {
      polls: 1,
      failures: 1,
      running: true,
      lastError: '401 for token ***',
    });
    await scheduler.stop();
  });

  it('waits out the interval from the start of each poll; a slow poll is followed at once', async () => {
    const starts: number[] = [];
    const job: PollJob = {
      name: 'runs',
      intervalMs: 60,
      run: async () => {
        starts.push(Date.now());
        if (starts.length === 2) await sleep(150); // longer than the interval
      },
    };
    const scheduler = new Scheduler([job], 1, logger);
    scheduler.start();
    await until(() => starts.length === 4);
    await scheduler.stop();
    const gaps = starts.slice(1).map((t, k) => t - starts[k]!);
    assert.ok(gaps[0]! >= 58, `first gap is the interval: ${gaps[0]}`);
    // Counted from the poll's end, it would be 150 + 60.
    assert.ok(gaps[1]! >= 148 && gaps[1]! < 200, `a slow poll is followed at once: ${gaps[1]}`);
    assert.ok(gaps[2]! >= 58, `then the interval again: ${gaps[2]}`);
  });

  it('pollNow runs a job waiting out a long interval at once; stop() ends the wait and aborts polls', async () => {
    let runs = 0;
    const signals: AbortSignal[] = [];
    const job: PollJob = {
      name: 'queries_status',
      intervalMs: 60_000,
      run: async (signal) => {
        runs += 1;
        signals.push(signal);
        // The second poll runs until it is told to stop.
        if (runs === 2) await new Promise((resolve) => signal.addEventListener('abort', resolve));
      },
    };
    const scheduler = new Scheduler([job], 1, logger);
    scheduler.start();
    await until(() => runs === 1);
    await sleep(20);
    assert.equal(runs, 1, 'the interval is a minute');
    scheduler.pollNow('queries_status');
    await until(() => runs === 2);
    const started = Date.now();
    await scheduler.stop();
    assert.ok(Date.now() - started < 1_000, 'stop() does not wait out the interval');
    assert.equal(scheduler.status.get('queries_status')!.polls, 2);
    scheduler.pollNow('queries_status');
    await sleep(20);
    assert.equal(runs, 2, 'a stopped scheduler polls no more');
    assert.deepEqual(
      signals.map((s) => s.aborted),
      [false, true],
      'stop() aborts the poll in flight (the finished one was left alone)',
    );
  });

  it('add() polls a job at once; remove() aborts its poll in flight and forgets it, the others go on (#16)', async () => {
    const polls: Record<string, AbortSignal[]> = { runs: [], audit_logs: [] };
    const job = (name: 'runs' | 'audit_logs'): PollJob => ({
      name,
      intervalMs: 60_000,
      run: async (signal) => {
        polls[name]!.push(signal);
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
      },
    });
    const scheduler = new Scheduler([], 2, logger);
    scheduler.start();
    scheduler.add(job('runs'));
    scheduler.add(job('audit_logs'));
    await until(() => polls.runs!.length === 1 && polls.audit_logs!.length === 1);
    assert.throws(() => scheduler.add(job('runs')), /scheduled already/);
    await scheduler.remove('runs');
    assert.equal(polls.runs![0]!.aborted, true, "the removed job's poll is aborted");
    assert.equal(polls.audit_logs![0]!.aborted, false, 'the other job is untouched');
    assert.deepEqual([...scheduler.status.keys()], ['audit_logs']);
    // Given back (a unit returning to this member), it starts afresh.
    scheduler.add(job('runs'));
    await until(() => polls.runs!.length === 2);
    assert.equal(scheduler.status.get('runs')!.polls, 0);
    await scheduler.stop();
    assert.equal(polls.audit_logs![0]!.aborted, true);
    assert.equal(polls.runs![1]!.aborted, true);
  });
});
