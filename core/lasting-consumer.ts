/**
 * A consumer group member that outlives a broker outage. kafkajs restarts a crashed consumer only when
 * the error is retriable; on one it deems not (the group coordinator not found after its retries, a
 * lock timeout) it disconnects and stays stopped, while the process goes on as if it were a member. A
 * producer's query-id follower then stopped tracking announced ids, and a producers group member never
 * rejoined, for the rest of the process's life. Here such a member is replaced by a new one, with
 * capped backoff, until it runs; refused credentials are not retried.
 */
import type { Consumer } from 'kafkajs';
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
  /** Between replacements; tests pass a fake. */
  sleep?: (ms: number) => Promise<void>;
}

export interface LastingConsumer {
  /** The member running now. */
  readonly current: Consumer;
  /** Disconnects it; no replacement follows. */
  stop(): Promise<void>;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts the first member (its failure is the caller's); later crashes kafkajs gives up on are handled here. */
export async function lastingConsumer(options: LastingConsumerOptions): Promise<LastingConsumer> {
  const sleep = options.sleep ?? realSleep;
  let stopped = false;
  let current: Consumer;

  const start = async (): Promise<void> => {
    const consumer = options.create();
    current = consumer;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      const { error, restart } = payload as { error: Error; restart: boolean };
      if (restart || stopped || consumer !== current) return;
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
  };

  const replace = async (): Promise<void> => {
    for (let attempt = 0; !stopped; attempt += 1) {
      await current.disconnect().catch(() => undefined);
      try {
        await start();
        options.logger.info(`${options.what} is running again`);
        return;
      } catch (err) {
        const delayMs = Math.min(options.retryMaxMs, 1_000 * 2 ** Math.min(attempt, 5));
        options.logger.warn(
          { err: redact(String(err)), delayMs },
          `${options.what}: Kafka unreachable; retrying`,
        );
        await sleep(delayMs);
      }
    }
  };

  await start();
  return {
    get current() {
      return current;
    },
    async stop() {
      stopped = true;
      await current.disconnect().catch(() => undefined);
    },
  };
}
