import type { Admin, ConfigResourceTypes, ITopicConfig, Kafka } from 'kafkajs';
import type { Config } from './config.ts';
import { isKafkaAuthError } from './kafka.ts';
import type { Logger } from './log.ts';
import { resourceMeta } from '../schemas/index.ts';
import type { ResourceName } from './resources.ts';

/** Topic names, as fixed by CONVENTIONS.md. */
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

/**
 * A topic's `max.message.bytes` for records of up to `bytes` (key and value): the record batch around one
 * record (its header, the record's own framing, headers) needs room too.
 */
const maxMessageBytes = (bytes: number) => ({ name: 'max.message.bytes', value: String(bytes + 65_536) });

export function dlqTopicSpec(config: Config, topic: string): ITopicConfig {
  return {
    topic,
    numPartitions: 1,
    replicationFactor: config.kafka.replicationFactor,
    configEntries: [
      { name: 'retention.ms', value: String(DLQ_RETENTION_MS) },
      maxMessageBytes(config.kafka.maxMessageBytes),
    ],
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether every error kafkajs gathered says the topic exists already (another process created it). */
function onlyAlreadyExists(err: unknown): boolean {
  const errors = (err as { errors?: unknown[] })?.errors;
  const all = Array.isArray(errors) && errors.length > 0 ? errors : [err];
  return all.every(
    (e) =>
      (e as { type?: string })?.type === 'TOPIC_ALREADY_EXISTS' ||
      /already exists/i.test(String((e as Error)?.message ?? '')),
  );
}

/**
 * Polls metadata until every topic is known with all its partitions led. kafkajs's own
 * `waitForLeaders` only retries LEADER_NOT_AVAILABLE, while a broker whose metadata cache has not yet
 * seen a topic another process just created answers UNKNOWN_TOPIC_OR_PARTITION ("This server does not
 * host this topic-partition"), which kafkajs treats as final.
 */
async function waitUntilLed(admin: Admin, specs: ITopicConfig[], timeoutMs: number): Promise<void> {
  const topics = specs.map((s) => s.topic);
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1_000)) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics });
      const pending = specs.filter((spec) => {
        const meta = found.find((t) => t.name === spec.topic);
        const wanted = spec.numPartitions ?? 1;
        return (
          !meta ||
          meta.partitions.length < wanted ||
          meta.partitions.some((p) => p.leader < 0 || (p.partitionErrorCode ?? 0) !== 0)
        );
      });
      if (pending.length === 0) return;
      last = new Error(`no leader yet for ${pending.map((s) => s.topic).join(', ')}`);
    } catch (err) {
      last = err;
    }
    if (Date.now() + delay > deadline) {
      throw new Error(
        `topics ${topics.join(', ')} were not all served with leaders within ${timeoutMs} ms: ${(last as Error)?.message ?? last}`,
      );
    }
    await sleep(delay);
  }
}

/**
 * Creates the topics that are missing and waits until the broker serves every one with a leader for
 * each partition. Safe when several processes create the same topics at once: a topic another process
 * created first counts as created, and the wait is our own metadata poll rather than kafkajs's, which
 * gives up on a topic the broker's metadata cache does not know yet. Existing topics keep their
 * settings, which are the operator's.
 */
export async function ensureTopics(
  admin: Admin,
  specs: ITopicConfig[],
  logger: Logger,
  timeoutMs = 30_000,
): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.topic));
  if (missing.length > 0) {
    try {
      const created = await admin.createTopics({
        topics: missing,
        waitForLeaders: false,
        timeout: timeoutMs,
      });
      // false: every one of them already existed (created by another process since the list).
      if (created) logger.info({ topics: missing.map((s) => s.topic) }, 'created topics');
    } catch (err) {
      if (!onlyAlreadyExists(err)) throw err;
      logger.debug({ topics: missing.map((s) => s.topic) }, 'topics were created by another process');
    }
  }
  // A topic that was there before keeps the partitions it has, however many: only a leader for each.
  const wanted = specs.map((s) => (existing.has(s.topic) ? { ...s, numPartitions: 1 } : s));
  await waitUntilLed(admin, wanted, timeoutMs);
}

/**
 * Every topic the pipeline uses for these resources, with its settings; producers and sinks both
 * create what is missing, so either may start first.
 */
export function pipelineTopicSpecs(config: Config, resources: readonly ResourceName[]): ITopicConfig[] {
  const { partitions, replicationFactor, auditRetentionMs, maxMessageBytes: largest } = config.kafka;
  const specs: ITopicConfig[] = [];
  for (const resource of resources) {
    specs.push({
      topic: resourceTopic(config, resource),
      numPartitions: partitions,
      replicationFactor,
      // Append-only resources keep a time-bounded log; entities are compacted by key (RESOURCE_META's kind).
      configEntries: [
        ...(resourceMeta(resource).kind === 'append'
          ? [
              { name: 'cleanup.policy', value: 'delete' },
              { name: 'retention.ms', value: String(auditRetentionMs) },
            ]
          : [{ name: 'cleanup.policy', value: 'compact' }]),
        maxMessageBytes(largest),
      ],
    });
    specs.push(dlqTopicSpec(config, producerDlqTopic(config, resource)));
  }
  // One partition each: the state must be read in write order, and query ids are a trickle.
  // An entity's state repeats what it last published (fields and object) for its tombstone: about
  // twice the JSON of a record that fits.
  specs.push({
    topic: stateTopic(config),
    numPartitions: 1,
    replicationFactor,
    configEntries: [{ name: 'cleanup.policy', value: 'compact' }, maxMessageBytes(2 * largest)],
  });
  specs.push({ topic: queriesTopic(config), numPartitions: 1, replicationFactor });
  return specs;
}

/**
 * The largest record batch each topic takes: its `max.message.bytes`, which the broker reports with its
 * own default filled in when the topic sets none. A topic it does not answer for is left out.
 */
export async function topicMessageLimits(admin: Admin, topics: string[]): Promise<Map<string, number>> {
  // ConfigResourceTypes.TOPIC: the enum is missing from the names node's ESM import finds in kafkajs.
  const TOPIC = 2 as ConfigResourceTypes;
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: topics.map((name) => ({
      type: TOPIC,
      name,
      configNames: ['max.message.bytes'],
    })),
  });
  const limits = new Map<string, number>();
  for (const r of resources) {
    const value = Number(r.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue);
    if (r.errorCode === 0 && Number.isSafeInteger(value) && value > 0) limits.set(r.resourceName, value);
  }
  return limits;
}

/** topicMessageLimits through an admin client of its own. */
export async function topicMessageLimitsWith(
  kafka: Kafka,
  topics: string[],
  logger: Logger,
): Promise<Map<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await topicMessageLimits(admin, topics);
  } catch (err) {
    // A principal without DescribeConfigs on the topics: their limits are taken to be what the pipeline
    // creates them with, as before they were read.
    if (!isKafkaAuthError(err)) throw err;
    logger.warn(
      { err: String(err) },
      "Kafka refused to describe the topics' configs (DescribeConfigs): their max.message.bytes is " +
        'taken to be what kafka.maxMessageBytes makes; grant DescribeConfigs for them to have it read',
    );
    return new Map();
  } finally {
    await admin.disconnect();
  }
}

/** ensureTopics through an admin client of its own, connected for the call and always disconnected. */
export async function ensureTopicsWith(kafka: Kafka, specs: ITopicConfig[], logger: Logger): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, specs, logger);
  } finally {
    await admin.disconnect();
  }
}
