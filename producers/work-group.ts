/**
 * Producers as a group (#16), on Kafka's own group protocol, as Kafka Connect's distributed workers
 * share connectors' tasks: the units of work (./work-units.ts) are the partitions of a small compacted
 * topic, `<prefix>_producers`, one partition per root resource, and the members of one consumer group
 * subscribe to it. Partition assignment *is* work assignment: the broker notices a member that joins,
 * leaves or stops heartbeating, and the group's leader hands out the partitions again. The topic holds
 * no messages; it exists only to be assigned.
 *
 * The leader assigns with `assignUnits` through a custom assignor, because round robin over partitions
 * does not know which member can run which unit (members may be started with different resources) and
 * moves every unit on every rebalance. This one keeps a unit where it runs while that is balanced, and
 * gives a member only units it runs.
 */
import {
  AssignerProtocol,
  type Consumer,
  type ITopicConfig,
  type Kafka,
  type PartitionAssigner,
} from 'kafkajs';
import type { Config } from '../core/config.ts';
import { groupTimeouts } from '../core/kafka.ts';
import type { Logger } from '../core/log.ts';
import { ROOTS } from './resources.ts';

/** The topic whose partitions are the group's units of work, one per root resource, in ROOTS order. */
export const workTopic = (config: Config): string => `${config.kafka.topicPrefix}_producers`;

/**
 * One partition per root resource, in the order of ROOTS: a new root must be added at the end of ROOTS
 * (and the topic grown), or members of two versions would read partitions differently.
 */
export function workTopicSpec(config: Config): ITopicConfig {
  return {
    topic: workTopic(config),
    numPartitions: ROOTS.length,
    replicationFactor: config.kafka.replicationFactor,
    configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
  };
}

/** The unit a partition of the work topic stands for. */
export const unitOfPartition = (partition: number): string | undefined => ROOTS[partition]?.name;
const partitionOfUnit = (unit: string): number => ROOTS.findIndex((r) => r.name === unit);

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
  const rest: string[] = [];
  for (const unit of assignable) {
    const owner = eligible(unit).find((id) => byId.get(id)!.owns.includes(unit));
    const held = owner === undefined ? Infinity : plan.get(owner)!.length;
    if (owner !== undefined && (held < base || (held === base && extra > 0))) {
      if (held === base) extra -= 1;
      plan.get(owner)!.push(unit);
    } else rest.push(unit);
  }
  for (const unit of rest) {
    const target = eligible(unit).reduce((best, id) =>
      plan.get(id)!.length < plan.get(best)!.length ? id : best,
    );
    plan.get(target)!.push(unit);
  }
  for (const list of plan.values()) list.sort((a, b) => units.indexOf(a) - units.indexOf(b));
  return plan;
}

const ASSIGNOR = 'InstabaseWorkUnits';

/** The assignor: members' metadata carries their MemberUnits (without the id) as JSON. */
function unitAssignor(self: () => Omit<MemberUnits, 'memberId'>, logger: Logger): PartitionAssigner {
  return ({ cluster }) => ({
    name: ASSIGNOR,
    version: 1,
    async assign({ members, topics }) {
      const topic = topics[0]!;
      const present = new Set(cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId));
      const units = ROOTS.map((r) => r.name).filter((u) => present.has(partitionOfUnit(u)));
      const described = members.map(({ memberId, memberMetadata }) => {
        const { userData } = AssignerProtocol.MemberMetadata.decode(memberMetadata) ?? {};
        let data: Partial<MemberUnits> = {};
        try {
          data = JSON.parse(userData?.toString() || '{}') as Partial<MemberUnits>;
        } catch {
          logger.warn({ memberId }, 'a member of the producers group sent metadata that is not ours');
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
          assignment: { [topic]: (plan.get(memberId) ?? []).map(partitionOfUnit) },
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
          userData: Buffer.from(JSON.stringify(self())),
        }),
      };
    },
  });
}

export interface WorkGroupOptions {
  kafka: Kafka;
  config: Config & { producers: { group: string } };
  logger: Logger;
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
  const { kafka, config, logger, runs } = options;
  const topic = workTopic(config);
  const consumer: Consumer = kafka.consumer({
    groupId: groupId(config.producers.group),
    partitionAssigners: [unitAssignor(() => ({ runs, owns: options.owns() }), logger)],
    allowAutoTopicCreation: false,
    ...groupTimeouts(config),
    // The topic is empty: a long poll would only delay the heartbeat that learns of a rebalance.
    maxWaitTimeInMs: 500,
  });
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    const partitions = payload.memberAssignment[topic] ?? [];
    const units = new Set(partitions.map(unitOfPartition).filter((u): u is string => u !== undefined));
    logger.info(
      { group: config.producers.group, memberId: payload.memberId, units: [...units].sort() },
      'producers group rebalanced',
    );
    options.onAssignment(units);
  });
  consumer.on(consumer.events.CRASH, ({ payload }) =>
    logger.warn({ err: payload.error, restart: payload.restart }, 'producers group membership failed'),
  );
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: false });
  await consumer.run({ autoCommit: false, eachMessage: async () => undefined });
  return {
    async leave() {
      await consumer.disconnect().catch(() => undefined);
    },
  };
}
