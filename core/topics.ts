import type { Admin, ITopicConfig } from 'kafkajs';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';

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

/** Creates the topics that are missing; existing topics keep their settings, which are the operator's. */
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
  logger.info({ topics: missing.map((s) => s.topic) }, 'created topics');
}
