/**
 * Units of work: what one transactional id publishes, with the cursor state only it writes. Alone, an
 * instance runs one unit holding every root resource it is given, under the transactional id it always
 * had. In a producers group (./work-group.ts) every root resource is a unit of its own, so the group can
 * spread them and move one when its member dies; the unit's transactional id, the same on every member,
 * fences whichever member ran it before. A root with per-parent work is split further into
 * `producers.shards` units, each following the parents whose id hashes to it (./follow/shard.ts).
 */
import { createHash } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Config } from '../core/config.ts';
import { groupTimeouts } from '../core/kafka.ts';
import { lastingConsumer, type LastingConsumer } from '../core/lasting-consumer.ts';
import type { Logger } from '../core/log.ts';
import type { ResourceName } from '../core/resources.ts';
import { queriesTopic, stateTopic } from '../core/topics.ts';
import { resourceOfStateKey } from './follow/state-keys.ts';
import { shardName, type Shard } from './follow/shard.ts';
import { trackIds } from './follow/tracked.ts';
import type { Step } from './follow/types.ts';
import type { InstabaseClient } from './instabase/client.ts';
import { buildJobs } from './jobs.ts';
import { TransactionalPublisher, type Publisher } from './publisher.ts';
import type { RecordEncoder } from './record-encoder.ts';
import { DECLARATIONS, HEAD_PER_PATH_ROOTS, headPathSource, JOB_RESOURCES, ROOTS } from './resources.ts';
import { ProducerRuntime, type RuntimeCounters } from './runtime.ts';
import type { Scheduler } from './scheduler.ts';
import { StateStore } from './state-store.ts';
import { groupId } from './work-group.ts';

export interface WorkUnit {
  /** The unit's name: its first root resource (`runs.1` for a share of it). */
  name: string;
  /** The root resources it polls, each with its tree. */
  roots: ResourceName[];
  /** Every resource it publishes (its roots and their children that are polled). */
  resources: ResourceName[];
  transactionalId: string;
  /** Set when the unit is one share of its root: it follows those parents only, with its own state. */
  shard?: Shard;
}

/** The resources a set of enabled roots publishes: a root brings its children along. */
export function publishedResources(config: Config, roots?: readonly ResourceName[]): ResourceName[] {
  const enabled = new Set(config.producers.resources);
  return Object.entries(JOB_RESOURCES)
    .filter(([root]) => enabled.has(root as ResourceName) && (!roots || roots.includes(root as ResourceName)))
    .flatMap(([, members]) => members.filter((m) => m === members[0] || enabled.has(m)));
}

/** The units this instance can run, from its config. */
export function workUnits(config: Config): WorkUnit[] {
  const { group, resources } = config.producers;
  const enabled = Object.keys(JOB_RESOURCES).filter((r) =>
    resources.includes(r as ResourceName),
  ) as ResourceName[];
  if (!group) {
    const published = publishedResources(config);
    // The transactional id names the resource set: a second instance started with the same set fences
    // the first instead of double-polling, and its state markers are its own.
    const digest = createHash('sha1').update(published.slice().sort().join(',')).digest('hex').slice(0, 10);
    return [
      {
        name: enabled[0] ?? 'none',
        roots: enabled,
        resources: published,
        transactionalId: `${config.kafka.clientId}-producer-${digest}`,
      },
    ];
  }
  // files_metadata may read paths another root's tree keeps in its state (batch_files'): they run as one
  // unit, so that the state it reads is the state its own transactions keep current.
  const source = headPathSource(config);
  const together: Partial<Record<ResourceName, ResourceName>> =
    source && enabled.includes(source)
      ? Object.fromEntries(HEAD_PER_PATH_ROOTS.map((reader) => [reader, source]))
      : {};
  const units = new Map<ResourceName, ResourceName[]>();
  for (const root of enabled) {
    const lead = together[root] ?? root;
    units.set(lead, [...(units.get(lead) ?? []), root]);
  }
  const count = shardsOf(config);
  return [...units].flatMap(([lead, roots]) => {
    const shards: Array<Shard | undefined> = count.has(lead)
      ? Array.from({ length: count.get(lead)! }, (_, index) => ({ index, count: count.get(lead)! }))
      : [undefined];
    return shards.map((shard) => {
      const name = shardName(lead, shard);
      return {
        name,
        roots,
        resources: publishedResources(config, roots),
        transactionalId: `${groupId(group)}.${name}`,
        ...(shard ? { shard } : {}),
      };
    });
  });
}

/**
 * The roots a producers group splits into shares, with their number: those with per-parent work, when
 * `producers.shards` asks for more than one. A root whose state files_metadata reads paths from stays
 * whole: it can only read them from one unit's state.
 */
function shardsOf(config: Config): Map<ResourceName, number> {
  const { shards } = config.producers;
  const split = new Map<ResourceName, number>();
  if (shards < 2) return split;
  const source = headPathSource(config);
  for (const root of ROOTS) {
    if ((JOB_RESOURCES[root.name]?.length ?? 0) < 2 || root.name === source) continue;
    split.set(root.name, shards);
  }
  return split;
}

/**
 * The units of a producers group, one per partition of its work topic, in partition order: every
 * root in ROOTS order, each share of a split root in its place. It depends on `producers.shards` and
 * on whether files_metadata reads another root's paths (which keeps that root whole), not on the
 * resources a member runs, so members that run different resources still read partitions alike;
 * members must agree on those settings.
 */
export function groupLayout(config: Config): string[] {
  const count = shardsOf(config);
  return ROOTS.flatMap((root) => {
    const n = count.get(root.name);
    return n
      ? Array.from({ length: n }, (_, index) => shardName(root.name, { index, count: n }))
      : [root.name];
  });
}

/** Whether a state key belongs to one of these resources (./follow/state-keys.ts). */
export function stateKeysOf(resources: readonly ResourceName[]): (key: string) => boolean {
  const mine = new Set<string>(resources);
  return (key) => mine.has(resourceOfStateKey(key));
}

export interface UnitDeps {
  config: Config;
  kafka: Kafka;
  client: InstabaseClient;
  encoder: RecordEncoder;
  scheduler: Scheduler;
  counters: RuntimeCounters;
  logger: Logger;
  now?: () => number;
  /** Replaces the transactional publisher (the producers bench counts instead of publishing). */
  publisher?: Publisher;
  /** Per topic, the largest record batch it takes (./runtime.ts). */
  topicLimits?: ReadonlyMap<string, number>;
  /**
   * Set in a producers group: the unit was fenced by another member and has stopped publishing; whoever
   * owns it after the next rebalance starts it again.
   */
  fencedOut?: () => void;
}

export interface RunningUnit {
  unit: WorkUnit;
  runtime: ProducerRuntime;
  /** Stops its polls, gives up what it has not committed, and disconnects its publisher. */
  stop(): Promise<void>;
}

/**
 * Starts a unit: registers its transactional id (fencing any earlier owner and settling what that one
 * left open), loads the cursor state its id has committed, and schedules its polls, which start at once.
 */
export async function startUnit(unit: WorkUnit, deps: UnitDeps): Promise<RunningUnit> {
  const { config, kafka, scheduler } = deps;
  const logger = deps.logger.child({ unit: unit.name });
  // A share's keys are the same as its siblings' (`runs/_window`): it keeps them in a namespace of its own.
  const state = new StateStore(
    stateTopic(config),
    unit.transactionalId,
    config.producers.group ? stateKeysOf(unit.resources) : undefined,
    unit.shard ? unit.name : undefined,
    config.producers.stateDir,
  );
  const publisher =
    deps.publisher ??
    new TransactionalPublisher(kafka, unit.transactionalId, logger, {
      retryMaxMs: config.kafka.retryMaxMs,
      // After a transaction with an unknown outcome, the cursor state is re-read from what is committed,
      // so a step whose transaction did commit is not published again.
      onReset: (send) => state.load(kafka, send, logger),
      ...(deps.fencedOut ? { fencedOut: deps.fencedOut } : {}),
    });
  let queries: LastingConsumer | undefined;
  const scheduled: string[] = [];
  const stop = async () => {
    await queries?.stop();
    // Both at once: a poll waiting for Kafka during an outage holds its removal until the publisher
    // gives its step up, which closing the publisher does (within a few seconds).
    await Promise.all([Promise.all(scheduled.map((name) => scheduler.remove(name))), publisher.close()]);
    await state.close();
  };
  try {
    await takeOver(publisher, state, kafka, logger);
    const runtime = new ProducerRuntime({
      config,
      kafka,
      client: deps.client,
      publisher,
      state,
      encoder: deps.encoder,
      logger,
      counters: deps.counters,
      ...(deps.now ? { now: deps.now } : {}),
      ...(deps.topicLimits ? { topicLimits: deps.topicLimits } : {}),
    });
    const unitConfig = { ...config, producers: { ...config.producers, resources: unit.resources } };
    for (const job of buildJobs({
      config: unitConfig,
      runtime,
      logger,
      ...(unit.shard ? { shard: unit.shard } : {}),
    })) {
      // After a failed poll, the next one waits for this unit's straggling commits only.
      scheduler.add({ ...job, settle: () => runtime.settled() });
      scheduled.push(job.name);
    }
    if (unit.roots.includes('queries_status')) {
      queries = await followQueryIds(deps, runtime, logger);
    }
    logger.info({ resources: unit.resources, transactionalId: unit.transactionalId }, 'work unit started');
    return { unit, runtime, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The order a unit's new owner starts in: first register the transactional id, which fences the previous
 * owner (Kafka aborts its open transaction and refuses its later commits), then read the cursor state.
 * The other way round, the previous owner could still commit a page after the read, and the new owner
 * would publish that page again from the stale cursor (test/unit/producers/group-model.test.ts).
 */
export async function takeOver(
  publisher: Publisher,
  state: StateStore,
  kafka: Kafka,
  logger: Logger,
): Promise<void> {
  await publisher.start();
  await state.load(kafka, (u) => publisher.publish(u), logger);
}

/**
 * Tracks the configured query ids, and those other systems announce on the queries topic: an id is
 * tracked (durably, in the unit's state) before its offset commits.
 */
async function followQueryIds(
  deps: UnitDeps,
  runtime: ProducerRuntime,
  logger: Logger,
): Promise<LastingConsumer> {
  const { config, kafka, scheduler } = deps;
  const ctx = runtime.context(new AbortController().signal, logger);
  const track = async (ids: string[]) => {
    const added = trackIds(ctx, DECLARATIONS.queries_status, ids);
    if (added.length) await runtime.commit({ emits: [], dead: [], state: added } satisfies Step);
    return added.length;
  };
  await track(config.producers.queryIds);
  // kafkajs gives up on errors it deems not retriable; a follower it gave up on is replaced, or ids
  // announced later would silently go untracked.
  return lastingConsumer({
    what: 'the query id follower',
    logger,
    retryMaxMs: config.kafka.retryMaxMs,
    create: () =>
      kafka.consumer({
        groupId: `${config.kafka.clientId}-queries`,
        allowAutoTopicCreation: false,
        // After a SIGKILL the dead member holds the group until its session times out; a short session
        // (kafka.sessionTimeoutMs) keeps that wait to seconds.
        ...groupTimeouts(config),
      }),
    begin: async (consumer) => {
      await consumer.connect();
      await consumer.subscribe({ topic: queriesTopic(config), fromBeginning: true });
      // Joining the group can wait for a dead predecessor's session to expire; polling does not wait for it.
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
    },
  });
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
