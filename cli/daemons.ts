import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import { RESOURCE_NAMES, type ResourceName } from '../core/resources.ts';
import { startProducers } from '../producers/daemon.ts';
import { startSinks, type SinkOptions } from '../sinks/daemon.ts';
import type { Daemon } from './lifecycle.ts';
import { UsageError } from './usage-error.ts';

export async function producersDaemon(config: Config, logger: Logger, now?: () => number): Promise<Daemon> {
  const producers = await startProducers(
    config,
    logger.child({ component: 'producers' }),
    now ? { now } : {},
  );
  return {
    health: () => {
      const jobs = Object.fromEntries(
        [...producers.scheduler.status].map(([name, s]) => [
          name,
          {
            polls: s.polls,
            failures: s.failures,
            lastSuccessAt: s.lastSuccessAt ?? null,
            lastError: s.lastError ?? null,
          },
        ]),
      );
      // Unhealthy only when no job has succeeded since its last failure: one flaky endpoint is a warning.
      const statuses = [...producers.scheduler.status.values()];
      const ok = statuses.length === 0 || statuses.some((s) => s.lastError === undefined);
      // In a producers group, the units this member runs now: they move when members come and go.
      const group = config.producers.group ? { group: config.producers.group, units: producers.units() } : {};
      return { ok, component: 'producers', ...group, jobs };
    },
    stop: () => producers.stop(),
  };
}

export async function sinksDaemon(
  config: Config,
  logger: Logger,
  options: SinkOptions & { onFatal: (err: Error) => void },
): Promise<Daemon> {
  const sinks = await startSinks(config, logger.child({ component: 'sinks' }), options);
  return {
    health: () => ({
      ok: !sinks.runner.failure,
      component: 'sinks',
      rows: sinks.runner.stats.rows,
      deadLetters: sinks.runner.stats.deadLetters,
      error: sinks.runner.failure?.message ?? null,
    }),
    stop: () => sinks.stop(),
  };
}

export function parseResources(list: string | undefined): ResourceName[] | undefined {
  if (!list) return undefined;
  const names = list.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !(RESOURCE_NAMES as readonly string[]).includes(n));
  if (unknown.length > 0)
    throw new UsageError(
      `unknown resource ${unknown.map((n) => `"${n}"`).join(', ')}; one of ${RESOURCE_NAMES.join(', ')}`,
    );
  return names as ResourceName[];
}
