import type { Config } from '../core/config.ts';
import { createKafka } from '../core/kafka.ts';
import type { Logger } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import type { ResourceName } from '../core/resources.ts';
import { waitForKafka, waitForService, waitForServices, type WaitOptions } from '../core/service-wait.ts';
import {
  ensureTopicsWith,
  keySubject,
  pipelineTopicSpecs,
  queriesTopic,
  resourceTopic,
  stateTopic,
  topicMessageLimitsWith,
  valueSubject,
} from '../core/topics.ts';
import { avroType, keySchema, valueSchema } from '../schemas/index.ts';
import type { Step } from './follow/types.ts';
import { InstabaseClient } from './instabase/client.ts';
import type { Publisher } from './publisher.ts';
import { RecordEncoder, stringKeyType, type RegisteredResource } from './record-encoder.ts';
import { registerSubject } from './registration.ts';
import { Scheduler } from './scheduler.ts';
import { UnitOwner } from './unit-owner.ts';
import { joinWorkGroup, workTopicSpec, type WorkGroupMembership } from './work-group.ts';
import {
  groupLayout,
  publishedResources,
  startUnit,
  workUnits,
  type RunningUnit,
  type UnitDeps,
} from './work-units.ts';

export interface RunningProducers {
  scheduler: Scheduler;
  /** Every resource this instance can publish (in a group, those of the units it may be given). */
  resources: ResourceName[];
  /** Committed records and dead letters per resource, over every unit this process ran. */
  published: ReadonlyMap<string, number>;
  deadLettered: ReadonlyMap<string, number>;
  /** The units this instance runs now. */
  units(): string[];
  /** Publishes a step through the unit that owns its resources (tests publish edge values this way). */
  commit(step: Step): Promise<void>;
  /** Finishes or abandons the in-flight pages, publishes what was committed, and disconnects. */
  stop(): Promise<void>;
}

/**
 * Topics made before the pipeline (or before `kafka.maxMessageBytes` was raised) may take less than
 * it: the records that do not fit are dead-lettered (./runtime.ts), and the operator is told once here.
 */
function warnOfSmallTopics(config: Config, limits: ReadonlyMap<string, number>, logger: Logger): void {
  const { maxMessageBytes } = config.kafka;
  const short = [...limits]
    .filter(([topic, takes]) => {
      const wanted = topic === stateTopic(config) ? 2 * maxMessageBytes : maxMessageBytes;
      return topic !== queriesTopic(config) && takes < wanted;
    })
    .map(([topic, takes]) => `${topic} (${takes})`);
  if (short.length)
    logger.warn(
      { topics: short, maxMessageBytes },
      `these topics take smaller records than kafka.maxMessageBytes (the state topic: twice it); records ` +
        `that do not fit are dead-lettered as record-too-large. Raise their max.message.bytes ` +
        `(kafka-configs --alter --add-config max.message.bytes=...) to publish them: ${short.join(', ')}`,
    );
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
  const { group } = config.producers;
  if (group && options.publisher)
    throw new Error('a replaced publisher runs alone, not in a producers group');
  const units = workUnits(config);
  const resources = publishedResources(config);
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
  const layout = groupLayout(config);
  const topics = [
    ...pipelineTopicSpecs(config, resources),
    ...(group ? [workTopicSpec(config, layout)] : []),
  ];
  await waitForKafka(config, () => ensureTopicsWith(kafka, topics, logger), startupWait());
  const topicLimits = await waitForKafka(
    config,
    () =>
      topicMessageLimitsWith(
        kafka,
        topics.map((t) => t.topic),
        logger,
      ),
    startupWait(),
  );
  warnOfSmallTopics(config, topicLimits, logger);
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
  const scheduler = new Scheduler([], config.producers.concurrency, logger);
  scheduler.start();
  const deps: UnitDeps = {
    config,
    kafka,
    client,
    encoder: new RecordEncoder(registered, config.instabase.context),
    scheduler,
    counters: { published: new Map(), deadLettered: new Map() },
    logger,
    ...(options.now ? { now: options.now } : {}),
    ...(options.publisher ? { publisher: options.publisher } : {}),
    topicLimits,
  };

  const byName = new Map(units.map((u) => [u.name, u]));
  const owner = new UnitOwner<RunningUnit>(
    new Set(byName.keys()),
    (name, fencedOut) => startUnit(byName.get(name)!, { ...deps, fencedOut }),
    {
      logger,
      retryMaxMs: config.kafka.retryMaxMs,
      onChange: (unit, running) => metrics.producerUnits.set({ unit }, running ? 1 : 0),
    },
  );
  let alone: RunningUnit | undefined;
  let membership: WorkGroupMembership | undefined;
  try {
    if (group) {
      membership = await waitForKafka(
        config,
        () =>
          joinWorkGroup({
            kafka,
            config: { ...config, producers: { ...config.producers, group } },
            logger,
            layout,
            runs: units.map((u) => u.name),
            owns: () => owner.running(),
            onAssignment: (assigned) => owner.assign(assigned),
          }),
        startupWait(),
      );
    } else {
      // Alone, the one unit is this instance's from the start, and failing to start it fails start-up.
      alone = await waitForKafka(config, () => startUnit(units[0]!, deps), startupWait());
    }
  } catch (err) {
    await Promise.all([owner.stop(), scheduler.stop()]);
    await client.close();
    throw err;
  }
  logger.info(
    group
      ? { group, resources, units: units.map((u) => u.name) }
      : { resources, transactionalId: units[0]!.transactionalId },
    group ? 'producers joined their group; units start as the group assigns them' : 'producers started',
  );
  const running = () => (alone ? [alone] : owner.units());
  return {
    scheduler,
    resources,
    published: deps.counters.published,
    deadLettered: deps.counters.deadLettered,
    units: () => running().map((r) => r.unit.name),
    commit(step) {
      // The unit that publishes every resource of the step (alone, the one unit publishes them all).
      const resources = new Set([...step.emits, ...step.dead].map((e) => e.resource));
      const unit = running().find((r) =>
        [...resources].every((res) => r.unit.resources.includes(res as ResourceName)),
      );
      if (!unit)
        return Promise.reject(new Error(`no unit running here publishes ${[...resources].join(', ')}`));
      return unit.runtime.commit(step);
    },
    async stop() {
      // The units first, so that their last pages are committed; leaving the group then hands them on at
      // once (their next owner's registration would fence whatever this instance still had open).
      await Promise.all([owner.stop(), alone?.stop()]);
      await membership?.leave();
      await scheduler.stop();
      await client.close();
    },
  };
}
