/**
 * Producers as a group (#16), on Kafka's own group protocol, as Kafka Connect's distributed workers
 * share connectors' tasks: the units of work (./work-units.ts) are the partitions of a small compacted
 * topic, `<prefix>_producers`, one partition per unit of the group's layout (`groupLayout`: a root
 * resource, or one share of a root with per-parent work), and the members of one consumer group
 * subscribe to it. Partition assignment *is* work assignment: the broker notices a member that joins,
 * leaves or stops heartbeating, and the group's leader hands out the partitions again. The topic holds
 * no messages; it exists only to be assigned.
 *
 * The leader assigns with `assignUnits` through a custom assignor, because round robin over partitions
 * does not know which member can run which unit (members may be started with different resources) and
 * moves every unit on every rebalance. This one keeps a unit where it runs while that is balanced, and
 * gives a member only units it runs.
 */
import { createHash } from 'node:crypto';
import { AssignerProtocol, type Admin, type ITopicConfig, type Kafka, type PartitionAssigner } from 'kafkajs';
import type { Config } from '../core/config.ts';
import { groupTimeouts } from '../core/kafka.ts';
import { lastingConsumer } from '../core/lasting-consumer.ts';
import type { Logger } from '../core/log.ts';
import { rootOfShare } from './follow/shard.ts';

/** The topic whose partitions are the group's units of work, one per unit of the layout, in its order. */
export const workTopic = (config: Config): string => `${config.kafka.topicPrefix}_producers`;

/**
 * One partition per unit of the layout (./work-units.ts groupLayout), in its order. A new root must be
 * added at the end of ROOTS, or members of two versions would read partitions differently; a topic
 * with fewer partitions than the layout is grown when a member joins (`growWorkTopic`).
 */
export function workTopicSpec(config: Config, layout: readonly string[]): ITopicConfig {
  return {
    topic: workTopic(config),
    numPartitions: layout.length,
    replicationFactor: config.kafka.replicationFactor,
    configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
  };
}

/** Adds the partitions the layout has and the topic lacks (more shares than it was created for). */
export async function growWorkTopic(admin: Admin, topic: string, partitions: number): Promise<void> {
  const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
  if ((meta?.partitions.length ?? 0) >= partitions) return;
  await admin.createPartitions({ topicPartitions: [{ topic, count: partitions }] }).catch(async (err) => {
    // Another member grew it since: fine as long as it has enough now.
    const [again] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
    if ((again?.partitions.length ?? 0) < partitions) throw err;
  });
}

/**
 * What members compare before sharing work: a digest of the layout. Members whose layouts differ (a
 * different `producers.shards`) would read the same partition as different units, and two of them
 * could follow one resource at once; the leader gives such a member nothing and says why.
 */
export const layoutDigest = (layout: readonly string[]): string =>
  createHash('sha1').update(layout.join(',')).digest('hex').slice(0, 12);

/** What a member tells the leader when it joins: the units it can run, and those it runs now. */
export interface MemberUnits {
  memberId: string;
  runs: string[];
  owns: string[];
}

/**
 * The assignment of `units` (in their order) to members: each unit goes to a member that runs it; a
 * member keeps a unit it owns as long as it holds no more than its even share; the rest go to whichever
 * eligible member holds fewest, ties broken by member id, so every member computes the same plan. A unit
 * no member runs is not assigned.
 */
export function assignUnits(members: MemberUnits[], units: string[]): Map<string, string[]> {
  const plan = new Map<string, string[]>(
    [...members].sort((a, b) => a.memberId.localeCompare(b.memberId)).map((m) => [m.memberId, []]),
  );
  const byId = new Map(members.map((m) => [m.memberId, m]));
  const eligible = (unit: string) => [...plan.keys()].filter((id) => byId.get(id)!.runs.includes(unit));
  const assignable = units.filter((u) => eligible(u).length > 0);
  // An even spread gives every member `base` units and `extra` of them one more.
  const base = Math.floor(assignable.length / Math.max(1, members.length));
  let extra = assignable.length % Math.max(1, members.length);
  // Shares of one root (`runs.0`, `runs.1`) go to different members where the counts allow: sharing a
  // root's per-parent work is what splitting it was for. A member keeps no more of a root's shares
  // than its even part of them, and new homes go to those holding fewest of that root.
  const siblings = (id: string, unit: string) =>
    plan.get(id)!.filter((u) => rootOfShare(u) === rootOfShare(unit)).length;
  const siblingShare = (unit: string) =>
    Math.ceil(
      assignable.filter((u) => rootOfShare(u) === rootOfShare(unit)).length / Math.max(1, members.length),
    );
  const hasRoom = (id: string) => {
    const held = plan.get(id)!.length;
    return held < base || (held === base && extra > 0);
  };
  /** Gives a unit to a member, counting the one-more places the even spread has left. */
  const give = (id: string, unit: string) => {
    if (plan.get(id)!.length === base) extra -= 1;
    plan.get(id)!.push(unit);
  };
  const rest: string[] = [];
  for (const unit of assignable) {
    const owner = eligible(unit).find((id) => byId.get(id)!.owns.includes(unit));
    if (owner !== undefined && hasRoom(owner) && siblings(owner, unit) < siblingShare(unit))
      give(owner, unit);
    else rest.push(unit);
  }
  for (const unit of rest) {
    // Among the members with room left, fewest shares of the unit's root first, then fewest units;
    // without room anywhere eligible (members that run different resources), fewest units.
    const roomy = eligible(unit).filter(hasRoom);
    const rank = (id: string) =>
      roomy.length > 0 ? [siblings(id, unit), plan.get(id)!.length] : [plan.get(id)!.length];
    const target = (roomy.length > 0 ? roomy : eligible(unit)).reduce((best, id) => {
      const [a, b] = [rank(id), rank(best)];
      return a[0]! < b[0]! || (a[0] === b[0] && (a[1] ?? 0) < (b[1] ?? 0)) ? id : best;
    });
    if (roomy.length > 0) give(target, unit);
    else plan.get(target)!.push(unit);
  }
  for (const list of plan.values()) list.sort((a, b) => units.indexOf(a) - units.indexOf(b));
  return plan;
}

const ASSIGNOR = 'InstabaseWorkUnits';

/** What a member's metadata carries, as JSON: its MemberUnits (without the id) and its layout's digest. */
type MemberMetadata = Omit<MemberUnits, 'memberId'> & { layout: string };

/** The assignor, for members of one layout (the partitions' units, in order). */
function unitAssignor(
  layout: readonly string[],
  self: () => Omit<MemberUnits, 'memberId'>,
  logger: Logger,
): PartitionAssigner {
  const digest = layoutDigest(layout);
  return ({ cluster }) => ({
    name: ASSIGNOR,
    version: 1,
    async assign({ members, topics }) {
      const topic = topics[0]!;
      const present = new Set(cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId));
      const units = layout.filter((_, partition) => present.has(partition));
      const described = members.map(({ memberId, memberMetadata }) => {
        const { userData } = AssignerProtocol.MemberMetadata.decode(memberMetadata) ?? {};
        let data: Partial<MemberMetadata> = {};
        try {
          data = JSON.parse(userData?.toString() || '{}') as Partial<MemberMetadata>;
        } catch {
          logger.warn({ memberId }, 'a member of the producers group sent metadata that is not ours');
        }
        if (data.layout !== digest) {
          logger.error(
            { memberId },
            'a member of the producers group splits the work differently (its producers.shards, or the settings that make resources run together, differ); it is given no work until every member uses the same settings',
          );
          return { memberId, runs: [], owns: [] };
        }
        return { memberId, runs: data.runs ?? [], owns: data.owns ?? [] };
      });
      const plan = assignUnits(described, units);
      const orphans = units.filter((u) => ![...plan.values()].some((list) => list.includes(u)));
      if (orphans.length > 0) {
        logger.warn({ units: orphans }, 'no member of the producers group polls these resources');
      }
      return described.map(({ memberId }) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment: { [topic]: (plan.get(memberId) ?? []).map((unit) => layout.indexOf(unit)) },
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: ASSIGNOR,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 1,
          topics,
          userData: Buffer.from(JSON.stringify({ ...self(), layout: digest } satisfies MemberMetadata)),
        }),
      };
    },
  });
}

export interface WorkGroupOptions {
  kafka: Kafka;
  config: Config & { producers: { group: string } };
  logger: Logger;
  /** The group's units, one per partition of the work topic, in order (./work-units.ts groupLayout). */
  layout: readonly string[];
  /** The units this member can run. */
  runs: string[];
  /** The units this member runs now (sent on every join, so that the leader keeps them here). */
  owns: () => string[];
  /** Called after every rebalance with the units this member is given. */
  onAssignment: (units: Set<string>) => void;
}

export interface WorkGroupMembership {
  /** Leaves the group: the other members take this member's units at once, not after a session timeout. */
  leave(): Promise<void>;
}

/** The consumer group of a producers group, and the transactional id prefix of its units. */
export const groupId = (group: string): string => `${group}.producers`;

export async function joinWorkGroup(options: WorkGroupOptions): Promise<WorkGroupMembership> {
  const { kafka, config, logger, runs, layout } = options;
  const topic = workTopic(config);
  const admin = kafka.admin();
  await admin.connect();
  try {
    await growWorkTopic(admin, topic, layout.length);
  } finally {
    await admin.disconnect();
  }
  // A member kafkajs gave up on (an error it deems not retriable, in a broker outage) is replaced: the
  // units it runs would otherwise stay here while the group hands them to the other members.
  const member = await lastingConsumer({
    what: 'the producers group membership',
    logger,
    retryMaxMs: config.kafka.retryMaxMs,
    create: () => {
      const consumer = kafka.consumer({
        groupId: groupId(config.producers.group),
        partitionAssigners: [unitAssignor(layout, () => ({ runs, owns: options.owns() }), logger)],
        allowAutoTopicCreation: false,
        ...groupTimeouts(config),
        // The topic is empty: a long poll would only delay the heartbeat that learns of a rebalance.
        maxWaitTimeInMs: 500,
      });
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        const partitions = payload.memberAssignment[topic] ?? [];
        const units = new Set(partitions.map((p) => layout[p]).filter((u): u is string => u !== undefined));
        logger.info(
          { group: config.producers.group, memberId: payload.memberId, units: [...units].sort() },
          'producers group rebalanced',
        );
        options.onAssignment(units);
      });
      consumer.on(consumer.events.CRASH, ({ payload }) =>
        logger.warn({ err: payload.error, restart: payload.restart }, 'producers group membership failed'),
      );
      return consumer;
    },
    begin: async (consumer) => {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: false });
      await consumer.run({ autoCommit: false, eachMessage: async () => undefined });
    },
  });
  return {
    async leave() {
      await member.stop();
    },
  };
}
