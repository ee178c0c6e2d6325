/**
 * Waiting for Kafka, the schema registry and ClickHouse at start-up. A process started while a service
 * is down (a deploy racing a broker restart, a laptop whose stack is still booting) waits for it,
 * saying what it waits for and why, instead of exiting; it gives up only after `startup.waitMs`.
 * Refused credentials and untrusted certificates do not fix themselves, so they still fail at once.
 */
import { abortableSleep } from './abortable-sleep.ts';
import { checkClickHouse } from './clickhouse.ts';
import type { Config } from './config.ts';
import { checkKafka, kafkaFailure } from './kafka.ts';
import type { Logger } from './log.ts';
import { checkRegistry } from './registry.ts';
import { ServiceConnectionError, type ExternalService } from './secrets.ts';

export interface WaitOptions {
  /** Give up after this long (the last failure is thrown); 0 tries once. */
  waitMs: number;
  /** Cap of the doubling delay between attempts. */
  retryMaxMs: number;
  logger: Logger;
  /** Stops waiting (a shutdown signal during start-up): the last failure is thrown. */
  signal?: AbortSignal;
  /** First delay between attempts; doubles up to retryMaxMs. */
  initialDelayMs?: number;
}

/** A failure worth waiting out: the service may come up. Auth and TLS failures are not. */
export function isTransient(err: unknown): boolean {
  return err instanceof ServiceConnectionError && !err.permanent;
}

/**
 * Runs `attempt` until it succeeds, retrying only transient ServiceConnectionErrors with a capped,
 * doubling delay, logging each wait with the service, the reason and the time left. Anything else
 * (auth, TLS, a bad schema) is thrown at once.
 */
export async function waitForService<T>(
  service: ExternalService,
  attempt: () => Promise<T>,
  options: WaitOptions,
): Promise<T> {
  const started = Date.now();
  const deadline = started + options.waitMs;
  let delay = options.initialDelayMs ?? 250;
  let attempts = 0;
  for (;;) {
    attempts += 1;
    try {
      const result = await attempt();
      if (attempts > 1) {
        options.logger.info(
          { service, attempts, waitedMs: Date.now() - started },
          `${service} is reachable again; going on`,
        );
      }
      return result;
    } catch (err) {
      if (!isTransient(err)) throw err;
      const left = deadline - Date.now();
      if (left <= 0 || options.signal?.aborted) {
        throw new ServiceConnectionError(
          (err as ServiceConnectionError).service,
          (err as ServiceConnectionError).kind,
          `${(err as Error).message} (gave up after waiting ${Math.round((Date.now() - started) / 1000)} s; ` +
            'startup.waitMs / STARTUP_WAIT_MS sets how long)',
          err,
        );
      }
      const wait = Math.min(delay, options.retryMaxMs, left);
      options.logger.warn(
        { service, attempt: attempts, retryInMs: wait, giveUpInMs: left },
        `waiting for ${service}: ${(err as Error).message}`,
      );
      await abortableSleep(wait, options.signal);
      delay = Math.min(delay * 2, options.retryMaxMs);
    }
  }
}

/**
 * waitForService for a step that talks to Kafka after connecting: what kafkajs throws mid-request
 * (a reset while a broker restarts) is waited out like a failed connection (see kafkaFailure).
 */
export function waitForKafka<T>(config: Config, attempt: () => Promise<T>, options: WaitOptions): Promise<T> {
  return waitForService(
    'Kafka',
    () => attempt().catch((err: unknown) => Promise.reject(kafkaFailure(config, err))),
    options,
  );
}

export type ServiceName = 'kafka' | 'registry' | 'clickhouse';

/**
 * Waits, within one `startup.waitMs` budget, until each named service answers a bounded probe with
 * the configured credentials: Kafka (connect and describe the cluster), the registry (GET /subjects),
 * ClickHouse (log in and read the version). Producers call it with Kafka and the registry, sinks
 * with all three.
 */
export async function waitForServices(
  config: Config,
  logger: Logger,
  services: readonly ServiceName[],
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + config.startup.waitMs;
  const options = (): WaitOptions => ({
    waitMs: Math.max(0, deadline - Date.now()),
    retryMaxMs: config.startup.retryMaxMs,
    logger,
    ...(signal ? { signal } : {}),
  });
  for (const service of services) {
    if (service === 'kafka') await waitForKafka(config, () => checkKafka(config, logger), options());
    if (service === 'registry')
      await waitForService('schema registry', () => checkRegistry(config), options());
    if (service === 'clickhouse')
      await waitForService('ClickHouse', () => checkClickHouse(config), options());
  }
}
