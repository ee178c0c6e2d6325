import { ConcurrencyLimit } from '../concurrency-limit.ts';
import { sleep as realSleep } from './retry.ts';

export interface RateLimitOptions {
  /** Requests started per second; 0 or Infinity means unlimited. */
  rps: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** Requests that may start back to back before the rps spacing applies. */
  burst?: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * One limiter per client, shared by every walk on it, so the rate the API sees is the client's total.
 * Every attempt (retries included) takes a slot and a token: a retry is a request to the server too.
 */
export class RateLimiter {
  private readonly intervalMs: number;
  private readonly burst: number;
  private tokens: number;
  private lastRefill: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly slots: ConcurrencyLimit;
  // Serialises token takers so waiters are served in order and the spacing holds under contention.
  private tokenChain: Promise<void> = Promise.resolve();

  constructor(opts: RateLimitOptions) {
    this.intervalMs = opts.rps > 0 && Number.isFinite(opts.rps) ? 1000 / opts.rps : 0;
    this.burst = Math.max(1, Math.floor(opts.burst ?? 1));
    this.tokens = this.burst;
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? realSleep;
    this.lastRefill = this.now();
    this.slots = new ConcurrencyLimit(opts.concurrency);
  }

  get inFlight(): number {
    return this.slots.inUse;
  }

  /** Waits for a concurrency slot and a rate token; call the returned function when the request is done. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    const release = await this.slots.acquire(signal);
    try {
      await this.takeToken(signal);
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  private takeToken(signal?: AbortSignal): Promise<void> {
    if (this.intervalMs === 0) return Promise.resolve();
    const turn = this.tokenChain.then(async () => {
      for (;;) {
        this.refill();
        if (this.tokens >= 1) {
          this.tokens -= 1;
          return;
        }
        await this.sleep(Math.ceil((1 - this.tokens) * this.intervalMs), signal);
      }
    });
    // A waiter that aborts must not stall the ones behind it.
    this.tokenChain = turn.catch(() => undefined);
    return turn;
  }

  private refill(): void {
    const now = this.now();
    const elapsed = now - this.lastRefill;
    if (elapsed <= 0) return;
    this.tokens = Math.min(this.burst, this.tokens + elapsed / this.intervalMs);
    this.lastRefill = now;
  }
}
