/**
 * The one concurrency limiter of the producers: the scheduler's polls, the client's requests in flight
 * and the fan-out of a poll over parents all take their slots from a ConcurrencyLimit.
 */

/**
 * At most `limit` holders at once, served in the order they asked. A slot is handed straight to the
 * next waiter on release, so no newcomer can slip in between and exceed the limit.
 */
export class ConcurrencyLimit {
  private active = 0;
  private readonly limit: number;
  private readonly waiting: Array<() => void> = [];

  constructor(limit: number) {
    this.limit = Math.max(1, Math.floor(limit));
  }

  /** Slots held now. */
  get inUse(): number {
    return this.active;
  }

  /**
   * Resolves with the slot's release function once a slot is free; calling it more than once frees the
   * slot once. Rejects with the signal's reason if the signal aborts first; the waiter then holds nothing.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.active < this.limit) {
      this.active += 1;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        this.active += 1;
        resolve(this.releaser());
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal?.reason);
      };
      this.waiting.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active -= 1;
      this.waiting.shift()?.();
    };
  }
}

/**
 * Runs `fn` on every item in order, at most `limit` at once. Items are taken as slots free up, so an async
 * iterable (a listing read from the state) is never held whole. After the first failure no further item
 * starts, and the rejection (with that first error) waits until the items already running have
 * settled: a failed poll's items are walked again by the next poll, which must not race branches of
 * this one that are still publishing.
 */
export async function forEachLimit<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const slots = new ConcurrencyLimit(limit);
  const running: Promise<void>[] = [];
  let failure: { err: unknown } | undefined;
  for await (const item of items) {
    const release = await slots.acquire();
    if (failure) {
      release();
      break;
    }
    running.push(
      (async () => {
        try {
          await fn(item);
        } catch (err) {
          failure ??= { err };
        } finally {
          release();
        }
      })(),
    );
  }
  await Promise.all(running);
  if (failure) throw failure.err;
}

/**
 * Runs `fn` on every item, at most `limit` at once, and then fails with the first error: unlike
 * forEachLimit, one broken branch does not stop its siblings (independent paths, documents).
 */
export async function settleAll<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const errors: unknown[] = [];
  await forEachLimit(items, limit, (item) => fn(item).catch((err: unknown) => void errors.push(err)));
  if (errors.length) throw errors[0];
}
