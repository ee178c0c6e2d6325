import { setMaxListeners } from 'node:events';
import type { Logger } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import { redact } from '../core/secrets.ts';
import { ConcurrencyLimit } from './concurrency-limit.ts';

export interface PollJob {
  /** The resource whose interval drives the job (children poll with their root). */
  name: string;
  intervalMs: number;
  run(signal: AbortSignal): Promise<void>;
  /**
   * Resolves once every step the job's polls handed to their publisher has committed or failed; after a
   * failed poll the next one waits for it (the scheduler's own `settle` when unset).
   */
  settle?: () => Promise<void>;
}

export interface JobStatus {
  lastSuccessAt?: number;
  lastError?: string;
  polls: number;
  failures: number;
  running: boolean;
}

/**
 * Runs every job on its own interval with at most `concurrency` polls at once. A failed poll is
 * logged and counted and the job tries again at its next interval; nothing it did not commit is lost,
 * because its cursor did not move.
 */
export class Scheduler {
  readonly status = new Map<string, JobStatus>();
  private readonly controller = new AbortController();
  /** Each job's loop and the controller that stops that job alone (a work unit moving elsewhere). */
  private readonly loops = new Map<string, { done: Promise<void>; stop: AbortController }>();
  private readonly slots: ConcurrencyLimit;
  private wake = new Map<string, () => void>();
  private started = false;

  /**
   * @param settle resolves once every step handed to the publisher has committed or failed; after a
   *   failed poll the next one waits for it, so it reads cursors no straggler of the failed poll can
   *   still move.
   */
  constructor(
    private readonly jobs: PollJob[],
    concurrency: number,
    private readonly logger: Logger,
    private readonly settle: () => Promise<void> = async () => undefined,
  ) {
    this.slots = new ConcurrencyLimit(concurrency);
  }

  start(): void {
    // Every in-flight request of every job listens on the one shutdown signal.
    setMaxListeners(1_000, this.controller.signal);
    this.started = true;
    for (const job of this.jobs) this.add(job);
  }

  /** Starts polling a job (one whose work unit this instance was just given); its first poll is now. */
  add(job: PollJob): void {
    if (!this.started) throw new Error('the scheduler is not started');
    if (this.controller.signal.aborted) return;
    if (this.loops.has(job.name)) throw new Error(`${job.name} is scheduled already`);
    const stop = new AbortController();
    const signal = AbortSignal.any([this.controller.signal, stop.signal]);
    setMaxListeners(1_000, signal);
    this.status.set(job.name, { polls: 0, failures: 0, running: false });
    this.loops.set(job.name, { done: this.loop(job, signal), stop });
  }

  /**
   * Stops polling a job: its in-flight poll is aborted (its requests cancelled, its commits refused) and
   * its status is dropped. Resolves once the loop has ended.
   */
  async remove(name: string): Promise<void> {
    const entry = this.loops.get(name);
    if (!entry) return;
    entry.stop.abort();
    await entry.done;
    this.loops.delete(name);
    this.status.delete(name);
    this.wake.delete(name);
  }

  /** Polls a job now instead of at its next interval (tests, and new query ids). */
  pollNow(name: string): void {
    this.wake.get(name)?.();
  }

  private async loop(job: PollJob, signal: AbortSignal): Promise<void> {
    const status = this.status.get(job.name)!;
    while (!signal.aborted) {
      let release: () => void;
      try {
        release = await this.slots.acquire(signal);
      } catch {
        break; // stopped while waiting for a slot
      }
      const started = Date.now();
      status.running = true;
      // Each poll has its own signal, aborted when the poll fails: its branches still running stop
      // (their requests are cancelled and their commits refused) instead of racing the next poll.
      const poll = new AbortController();
      // Every request and backoff of the poll listens on this signal: with a client concurrency above
      // ten, Node would warn of a listener leak that is not one.
      setMaxListeners(0, poll.signal);
      const stopPoll = () => poll.abort();
      signal.addEventListener('abort', stopPoll, { once: true });
      try {
        if (signal.aborted) break;
        await job.run(poll.signal);
        status.lastSuccessAt = Date.now();
        status.lastError = undefined;
        metrics.lastSuccessfulPoll.set({ resource: job.name }, status.lastSuccessAt / 1000);
      } catch (err) {
        poll.abort();
        if (signal.aborted) break;
        status.failures += 1;
        status.lastError = redact(String((err as Error)?.message ?? err));
        this.logger.error(
          { resource: job.name, err },
          'poll failed; the cursor stays where it was and the next poll retries',
        );
        await (job.settle ?? this.settle)();
      } finally {
        signal.removeEventListener('abort', stopPoll);
        status.running = false;
        status.polls += 1;
        metrics.pollDuration.observe({ resource: job.name }, (Date.now() - started) / 1000);
        release();
      }
      // Stopped while the poll ran, and it returned instead of throwing: the abort event has fired.
      if (signal.aborted) break;
      const wait = Math.max(0, job.intervalMs - (Date.now() - started));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, wait);
        function done() {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
        signal.addEventListener('abort', done);
        this.wake.set(job.name, done);
      });
    }
  }

  /** Aborts in-flight requests (their pages were not committed, so they are read again next time). */
  async stop(): Promise<void> {
    // Aborting also turns away the loops still waiting for a slot.
    this.controller.abort();
    await Promise.allSettled([...this.loops.values()].map((l) => l.done));
  }
}
