import type { ITopicConfig } from 'kafkajs';
import type { Config } from '../core/config.ts';
import type { ResourceName } from '../core/resources.ts';
import { dlqTopicSpec, producerDlqTopic, queriesTopic, resourceTopic, stateTopic } from '../core/topics.ts';

/** Append-only resources keep a time-bounded log; every other resource is an entity, compacted by key. */
const APPEND_ONLY: ReadonlySet<ResourceName> = new Set(['audit_logs']);

export function producerTopicSpecs(config: Config, resources: readonly ResourceName[]): ITopicConfig[] {
  const { partitions, replicationFactor, auditRetentionMs } = config.kafka;
  const specs: ITopicConfig[] = [];
  for (const resource of resources) {
    specs.push({
      topic: resourceTopic(config, resource),
      numPartitions: partitions,
      replicationFactor,
      configEntries: APPEND_ONLY.has(resource)
        ? [
            { name: 'cleanup.policy', value: 'delete' },
            { name: 'retention.ms', value: String(auditRetentionMs) },
          ]
        : [{ name: 'cleanup.policy', value: 'compact' }],
    });
    specs.push(dlqTopicSpec(config, producerDlqTopic(config, resource)));
  }
  // One partition each: the state must be read in write order, and query ids are a trickle.
  specs.push({
    topic: stateTopic(config),
    numPartitions: 1,
    replicationFactor,
    configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
  });
  specs.push({ topic: queriesTopic(config), numPartitions: 1, replicationFactor });
  return specs;
}
