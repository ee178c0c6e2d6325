import { createHash } from 'node:crypto';
import type { Consumer } from 'kafkajs';
import type { Config } from '../core/config.ts';
import { createKafka, groupTimeouts } from '../core/kafka.ts';
import type { Logger } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import type { ResourceName } from '../core/resources.ts';
import { waitForService, waitForServices, type WaitOptions } from '../core/service-wait.ts';
import {
  ensureTopicsWith,
  keySubject,
  pipelineTopicSpecs,
  queriesTopic,
  resourceTopic,
  stateTopic,
  valueSubject,
} from '../core/topics.ts';
import { avroType, keySchema, valueSchema } from '../schemas/index.ts';
import { trackIds } from './follow/tracked.ts';
import { InstabaseClient } from './instabase/client.ts';
import { buildJobs, JOB_RESOURCES } from './jobs.ts';
import { TransactionalPublisher, type Publisher } from './publisher.ts';
import { RecordEncoder, stringKeyType, type RegisteredResource } from './record-encoder.ts';
import { registerSubject } from './registration.ts';
import { DECLARATIONS } from './resources.ts';
import { ProducerRuntime } from './runtime.ts';
import { Scheduler } from './scheduler.ts';
import { StateStore } from './state-store.ts';

export interface RunningProducers {
  runtime: ProducerRuntime;
  scheduler: Scheduler;
  resources: ResourceName[];
  /** Finishes or abandons the in-flight page, publishes what was committed, and disconnects. */
  stop(): Promise<void>;
}

/** The resources a set of enabled roots publishes: a root brings its children along. */
export function publishedResources(config: Config): ResourceName[] {
  const enabled = new Set(config.producers.resources);
  return Object.entries(JOB_RESOURCES)
    .filter(([root]) => enabled.has(root as ResourceName))
    .flatMap(([, members]) => members.filter((m) => m === members[0] || enabled.has(m)));
}

/** Registers the value and key schema of every topic; an incompatible schema stops start-up. */
export async function registerSchemas(
  config: Config,
  resources: ResourceName[],
): Promise<Map<string, RegisteredResource>> {
  const registered = new Map<string, RegisteredResource>();
  const keyType = stringKeyType();
  for (const resource of resources) {
    const topic = resourceTopic(config, resource);
    const valueId = await registerSubject(config, valueSubject(topic), valueSchema(resource));
    const keyId = await registerSubject(config, keySubject(topic), keySchema());
    registered.set(resource, { valueId, keyId, type: avroType(resource), keyType });
  }
  return registered;
}

export interface ProducerOptions {
  /** The clock windows are computed from; the simulator's virtual clock in tests. */
  now?: () => number;
  /**
   * Replaces the transactional publisher: `npm run bench -- producers` counts instead of publishing,
   * to measure the same walk without Kafka.
   */
  publisher?: Publisher;
}

export async function startProducers(
  config: Config,
  logger: Logger,
  options: ProducerOptions = {},
): Promise<RunningProducers> {
  const token = config.instabase.token;
  if (!token)
    throw new Error(
      'producers need INSTABASE_API_TOKEN (or run `instabase-stream start`, which uses the simulator)',
    );
  const resources = publishedResources(config);
  // The transactional id names the resource set: a second instance started with the same set fences
  // the first instead of double-polling, and its state markers are its own.
  const instanceId = `${config.kafka.clientId}-producer-${createHash('sha1').update(resources.slice().sort().join(',')).digest('hex').slice(0, 10)}`;
  const kafka = createKafka(config, logger, 'producer');

  // Kafka or the registry being down at start-up is waited out (bounded by startup.waitMs), saying
  // what is unreachable and why; refused credentials and untrusted certificates still fail at once.
  const startupDeadline = Date.now() + config.startup.waitMs;
  const startupWait = (): WaitOptions => ({
    waitMs: Math.max(0, startupDeadline - Date.now()),
    retryMaxMs: config.startup.retryMaxMs,
    logger,
  });
  await waitForServices(config, logger, ['kafka', 'registry']);
  await waitForService(
    'Kafka',
    () => ensureTopicsWith(kafka, pipelineTopicSpecs(config, resources), logger),
    startupWait(),
  );
  const registered = await waitForService(
    'schema registry',
    () => registerSchemas(config, resources),
    startupWait(),
  );

  const client = new InstabaseClient({
    baseUrl: config.instabase.apiUrl,
    token,
    ...(config.instabase.context ? { context: config.instabase.context } : {}),
    timeoutMs: config.instabase.timeoutMs,
    maxRetries: config.instabase.maxRetries,
    retryBaseMs: config.instabase.retryBaseMs,
    retryMaxMs: config.instabase.retryMaxMs,
    rps: config.instabase.rps,
    concurrency: config.instabase.concurrency,
    maxPagesPerWalk: config.instabase.maxPagesPerWalk,
    logger,
    onResponse: (endpoint: string, status: number) =>
      metrics.apiRequests.inc({ endpoint, status: String(status) }),
  });

  const state = new StateStore(stateTopic(config), instanceId);
  const publisher =
    options.publisher ??
    new TransactionalPublisher(kafka, instanceId, logger, {
      retryMaxMs: config.kafka.retryMaxMs,
      // After a transaction with an unknown outcome, the cursor state is re-read from what is committed,
      // so a step whose transaction did commit is not published again.
      onReset: (send) => state.load(kafka, send, logger),
    });
  await waitForService('Kafka', () => publisher.start(), startupWait());
  await state.load(kafka, (unit) => publisher.publish(unit), logger);

  const encoder = new RecordEncoder(registered, config.instabase.context);
  const runtime = new ProducerRuntime({
    config,
    kafka,
    client,
    publisher,
    state,
    encoder,
    logger,
    ...(options.now ? { now: options.now } : {}),
  });
  const scheduler = new Scheduler(
    buildJobs({ config, runtime, logger }),
    config.producers.concurrency,
    logger,
    () => runtime.settled(),
  );

  let queriesConsumer: Consumer | undefined;
  const ctx = runtime.context(new AbortController().signal, logger);
  const track = async (ids: string[]) => {
    const added = trackIds(ctx, DECLARATIONS.queries_status, ids);
    if (added.length) await runtime.commit({ emits: [], dead: [], state: added });
    return added.length;
  };
  if (resources.includes('queries_status')) {
    await track(config.producers.queryIds);
    // Other systems announce query ids on a topic; an id is tracked (durably) before its offset commits.
    queriesConsumer = kafka.consumer({
      groupId: `${config.kafka.clientId}-queries`,
      allowAutoTopicCreation: false,
      // After a SIGKILL the dead member holds the group until its session times out; a short session
      // (kafka.sessionTimeoutMs) keeps that wait to seconds.
      ...groupTimeouts(config),
    });
    await queriesConsumer.connect();
    await queriesConsumer.subscribe({ topic: queriesTopic(config), fromBeginning: true });
  }

  scheduler.start();
  // Joining the group can wait for a dead predecessor's session to expire; polling does not wait for it.
  const consumer = queriesConsumer;
  if (consumer) {
    consumer
      .run({
        eachMessage: async ({ message }) => {
          const id = parseQueryId(message.value?.toString() ?? '');
          if (id && (await track([id]))) scheduler.pollNow('queries_status');
        },
      })
      .catch((err: unknown) =>
        logger.error({ err }, 'the query id consumer stopped; ids announced on the topic are not tracked'),
      );
  }
  logger.info({ resources, instanceId }, 'producers started');
  return {
    runtime,
    scheduler,
    resources,
    async stop() {
      await queriesConsumer?.disconnect().catch(() => undefined);
      // Both at once: a poll waiting for Kafka during an outage holds scheduler.stop until the
      // publisher gives its step up, which closing the publisher does (within a few seconds).
      await Promise.all([scheduler.stop(), publisher.close()]);
      await client.close();
    },
  };
}

/** A query id message is the bare id or JSON `{"query_id": "…"}`. */
export function parseQueryId(text: string): string | undefined {
  const trimmed = text.trim();
  if (!trimmed) return undefined;
  if (trimmed.startsWith('{')) {
    try {
      const id = (JSON.parse(trimmed) as { query_id?: unknown }).query_id;
      return typeof id === 'string' && id ? id : undefined;
    } catch {
      return undefined;
    }
  }
  return trimmed;
}
