/**
 * A consumer group member that outlives a broker outage. kafkajs restarts a crashed consumer only when
 * the error is retriable; on one it deems not (the group coordinator not found after its retries, a
 * lock timeout) it disconnects and stays stopped, while the process goes on as if it were a member. A
 * producer's query-id follower then stopped tracking announced ids, and a producers group member never
 * rejoined, for the rest of the process's life. Here such a member is replaced by a new one, with
 * capped backoff, until it runs; refused credentials are not retried.
 */
import type { Consumer } from 'kafkajs';
import { abortableSleep } from './abortable-sleep.ts';
import { isKafkaAuthError } from './kafka.ts';
import type { Logger } from './log.ts';
import { redact } from './secrets.ts';

export interface LastingConsumerOptions {
  /** Makes a new, unconnected consumer (each replacement is a new one: kafkajs's cannot be run twice). */
  create(): Consumer;
  /** Connects, subscribes and runs it. */
  begin(consumer: Consumer): Promise<void>;
  /** What the consumer is for, in log lines. */
  what: string;
  logger: Logger;
  /** Cap of the backoff between replacements. */
  retryMaxMs: number;
  /** Between replacements (cut short by stop()); tests pass a fake. */
  sleep?: (ms: number) => Promise<void>;
}

export interface LastingConsumer {
  /** The member running now. */
  readonly current: Consumer;
  /** Disconnects it; no replacement follows. */
  stop(): Promise<void>;
}

/** Starts the first member (its failure is the caller's); later crashes kafkajs gives up on are handled here. */
export async function lastingConsumer(options: LastingConsumerOptions): Promise<LastingConsumer> {
  const stopping = new AbortController();
  const sleep = options.sleep ?? ((ms: number) => abortableSleep(ms, stopping.signal));
  let current: Consumer;
  /**
   * Replacements since a member last joined its group. kafkajs reports a failed join as a CRASH after
   * run() has resolved, so a replacement that "started" may fail at once: the backoff grows until one
   * joins, not until one starts.
   */
  let failures = 0;
  let replacing = false;
  /** The current member crashed while a replacement was being made: make another. */
  let crashedAgain = false;

  const start = async (): Promise<void> => {
    const consumer = options.create();
    current = consumer;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (failures > 0) options.logger.info(`${options.what} is running again`);
      failures = 0;
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      const { error, restart } = payload as { error: Error; restart: boolean };
      if (restart || stopping.signal.aborted || consumer !== current) return;
      if (isKafkaAuthError(error)) {
        options.logger.error(
          { err: redact(String(error)) },
          `${options.what} stopped: Kafka refused its credentials`,
        );
        return;
      }
      options.logger.warn(
        { err: redact(String(error)) },
        `${options.what} stopped (kafkajs gave up); starting a new one`,
      );
      void replace();
    });
    try {
      await options.begin(consumer);
    } catch (err) {
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
    // stop() came while it was starting: what began after stop's disconnect must not stay.
    if (stopping.signal.aborted) await consumer.disconnect().catch(() => undefined);
  };

  /** One replacement loop at a time; a crash of the member it makes sends it round again. */
  const replace = async (): Promise<void> => {
    crashedAgain = true;
    if (replacing) return;
    replacing = true;
    try {
      while (crashedAgain && !stopping.signal.aborted) {
        crashedAgain = false;
        await current.disconnect().catch(() => undefined);
        const delayMs = Math.min(options.retryMaxMs, 1_000 * 2 ** Math.min(failures, 5));
        failures += 1;
        await sleep(delayMs);
        if (stopping.signal.aborted) return;
        try {
          await start();
        } catch (err) {
          crashedAgain = true;
          options.logger.warn(
            { err: redact(String(err)), delayMs },
            `${options.what}: Kafka unreachable; retrying`,
          );
        }
      }
    } finally {
      replacing = false;
    }
  };

  await start();
  return {
    get current() {
      return current;
    },
    async stop() {
      stopping.abort();
      await current.disconnect().catch(() => undefined);
    },
  };
}
