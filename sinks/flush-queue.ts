import type { BatchBuffer } from './batch-buffer.ts';

/** A buffer handed over for writing: from then on the queue owns it and nothing else touches it. */
export interface SealedBuffer {
  /** Unique for the process's lifetime; the offset tracker knows the buffer by it. */
  readonly id: number;
  readonly topic: string;
  readonly buffer: BatchBuffer;
  /** The sink core's assignment generation the buffer was filled in. */
  readonly generation: number;
}

export interface FlushQueueOptions {
  /** One attempt at making the buffer durable (rows inserted, dead letters sent); throws on failure. */
  write(sealed: SealedBuffer): Promise<void>;
  /** Whether a failure can never succeed on retry: the queue then stops for good. */
  isPermanent(err: unknown): boolean;
  /** Whether to stop retrying (a shutdown): the buffer is dropped and its offsets stay uncommitted. */
  giveUp(attempt: number): boolean;
  /** The buffer is durable. */
  onWritten(sealed: SealedBuffer): void;
  /** The buffer was dropped unwritten (dropWaiting, stop): its offsets stay uncommitted. */
  onDropped(sealed: SealedBuffer): void;
  /** An attempt failed and will be retried after `delayMs`. */
  onRetry(sealed: SealedBuffer, attempt: number, delayMs: number, err: unknown): void;
  /** The first write after one or more failed attempts succeeded. */
  onRecovered(): void;
  /** A permanent failure (or a dropped buffer); the queue drops everything it holds. */
  onFailed(sealed: SealedBuffer, err: unknown, permanent: boolean): void;
  retryMaxMs: number;
  /** Sleeps between attempts; the owner may cut it short (shutdown). */
  sleep(ms: number): Promise<void>;
}

/**
 * Writes sealed buffers one at a time, in the order they were handed over, retrying each with capped,
 * jittered backoff until it is durable. One writer at a time keeps ClickHouse's load predictable and
 * makes each partition's buffers land in offset order.
 */
export class FlushQueue {
  private readonly items: SealedBuffer[] = [];
  private running = false;
  private stopped = false;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly o: FlushQueueOptions) {}

  /** Buffers handed over and not yet written, including the one being written. */
  get length(): number {
    return this.items.length;
  }

  /** How many buffers of `topic` are waiting or being written. */
  pending(topic: string): number {
    let n = 0;
    for (const item of this.items) if (item.topic === topic) n += 1;
    return n;
  }

  push(sealed: SealedBuffer): void {
    if (this.stopped) {
      this.o.onFailed(sealed, new Error('the flush queue has stopped'), false);
      return;
    }
    this.items.push(sealed);
    if (!this.running) void this.run();
  }

  /** Resolves once fewer than `n` buffers are queued (0 = empty and idle). */
  async whenBelow(n: number): Promise<void> {
    while (this.items.length >= Math.max(1, n) || (n === 0 && this.running)) {
      await new Promise<void>((resolve) => this.listeners.add(resolve));
    }
  }

  private notify(): void {
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const l of listeners) l();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.items.length > 0 && !this.stopped) {
        const sealed = this.items[0]!;
        await this.writeOne(sealed);
        this.items.shift();
        this.notify();
      }
    } finally {
      this.running = false;
      this.notify();
    }
  }

  private async writeOne(sealed: SealedBuffer): Promise<void> {
    let failed = false;
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.o.write(sealed);
        if (failed) this.o.onRecovered();
        this.o.onWritten(sealed);
        return;
      } catch (err) {
        const permanent = this.o.isPermanent(err);
        if (permanent || this.o.giveUp(attempt)) {
          if (permanent) this.stop();
          if (failed) this.o.onRecovered();
          this.o.onFailed(sealed, err, permanent);
          return;
        }
        failed = true;
        const delay =
          Math.min(this.o.retryMaxMs, 250 * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2);
        this.o.onRetry(sealed, attempt, delay, err);
        await this.o.sleep(delay);
      }
    }
  }

  /**
   * Drops the buffers waiting behind the one being written (a new assignment: their records are read
   * again); the one being written finishes.
   */
  dropWaiting(): void {
    for (const sealed of this.items.splice(this.running ? 1 : 0)) this.o.onDropped(sealed);
    this.notify();
  }

  /** Drops everything still queued (a permanent failure): those buffers never become durable. */
  stop(): void {
    this.stopped = true;
    for (const sealed of this.items.splice(1)) this.o.onDropped(sealed);
  }
}
