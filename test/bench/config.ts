import type { Config } from '../../core/config.ts';
import type { ResourceName } from '../../core/resources.ts';
import { testConfig } from '../helpers/pipeline.ts';

export const RESOURCE: ResourceName = 'batches';

export interface BenchSettings {
  partitions: number;
  flushRows: number;
}

/**
 * The stack's endpoints under the run's own topic prefix and database (the bench process and its fill
 * child build the same config from the same prefix), with the sink tuned for throughput: rows decide
 * the batch size, time only flushes the tail, and bytes are a loose safety bound.
 */
export function benchConfig(prefix: string, settings: BenchSettings): Config {
  return testConfig(prefix, {
    kafka: { partitions: settings.partitions },
    sinks: {
      resources: [RESOURCE],
      flushRows: settings.flushRows,
      flushMs: 10_000,
      flushBytes: 512 * 1024 * 1024,
    },
  });
}
