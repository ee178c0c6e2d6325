import type { Admin, ITopicConfig } from 'kafkajs';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import type { ResourceName } from './resources.ts';

/** Topic names, as fixed by ../shared/CONVENTIONS.md. */
export const resourceTopic = (config: Config, resource: string): string =>
  `${config.kafka.topicPrefix}${resource}`;
export const stateTopic = (config: Config): string => `${config.kafka.topicPrefix}_state`;
export const queriesTopic = (config: Config): string => `${config.kafka.topicPrefix}_queries`;
export const producerDlqTopic = (config: Config, resource: string): string =>
  `${resourceTopic(config, resource)}.dlq`;
export const sinkDlqTopic = (config: Config, resource: string): string =>
  `${resourceTopic(config, resource)}.sink-dlq`;
export const valueSubject = (topic: string): string => `${topic}-value`;
export const keySubject = (topic: string): string => `${topic}-key`;

export const DLQ_RETENTION_MS = 30 * 24 * 3600 * 1000;

export function dlqTopicSpec(config: Config, topic: string): ITopicConfig {
  return {
    topic,
    numPartitions: 1,
    replicationFactor: config.kafka.replicationFactor,
    configEntries: [{ name: 'retention.ms', value: String(DLQ_RETENTION_MS) }],
  };
}

/**
 * Creates the topics that are missing and waits until the broker serves their metadata (in KRaft mode
 * a new topic can be unknown to the broker's metadata cache for a moment after the create returns).
 * Existing topics keep their settings, which are the operator's.
 */
export async function ensureTopics(admin: Admin, specs: ITopicConfig[], logger: Logger): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.topic));
  if (missing.length === 0) return;
  try {
    await admin.createTopics({ topics: missing, waitForLeaders: true });
  } catch (err) {
    // Another instance may have created them between the list and the create.
    if (!/already exists/i.test(String((err as Error).message))) throw err;
  }
  const topics = missing.map((s) => s.topic);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await admin.fetchTopicMetadata({ topics });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  logger.info({ topics }, 'created topics');
}

/** Append-only resources keep a time-bounded log; every other resource is an entity, compacted by key. */
const APPEND_ONLY: ReadonlySet<ResourceName> = new Set(['audit_logs']);

/**
 * Every topic the pipeline uses for these resources, with its settings; producers and sinks both
 * create what is missing, so either may start first.
 */
export function pipelineTopicSpecs(config: Config, resources: readonly ResourceName[]): ITopicConfig[] {
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
