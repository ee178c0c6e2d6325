/**
 * Model-based test of a unit of work moving between the members of a producers group (#16): each
 * member's real UnitOwner (producers/unit-owner.ts) starts and stops the unit with the real
 * TransactionalPublisher, StateStore and takeOver (producers/work-units.ts), over an in-memory Kafka
 * that keeps one producer epoch per transactional id, as the transaction coordinator does: registering
 * the id bumps the epoch, and a send or commit under an older epoch is refused as fenced. fast-check's
 * scheduler picks the order in which every pending Kafka call completes, while a random plan hands the
 * unit from member to member; a hand-over may reach the old owner (it stops) or not (a frozen or
 * partitioned member that goes on polling and retrying, a zombie, until it hears at the end). The unit
 * walks six pages of an API, publishing each page with its cursor in one transaction. Invariants:
 *   1. every record of every page is committed exactly once (nothing skipped, nothing twice);
 *   2. once every member has heard who owns the unit, that member finishes the walk: a registration
 *      that crossed the hand-over and fenced it does not leave the unit unpolled.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Kafka, Message, TopicMessages } from 'kafkajs';
import pino from 'pino';
import { TransactionalPublisher } from '../../../producers/publisher.ts';
import { StateStore } from '../../../producers/state-store.ts';
import { UnitOwner, type StoppableUnit } from '../../../producers/unit-owner.ts';
import { takeOver } from '../../../producers/work-units.ts';

const logger = pino({ level: 'silent' });
const TX = 'g.producers.audit_logs';
const STATE = 'p._state';
const DATA = 'p.audit_logs';
const CURSOR = 'audit_logs/_window';
const PAGES = 6;
const PER_PAGE = 2;
const MEMBERS = 3;
const UNIT = 'audit_logs';

interface Entry {
  key: string;
  value: string | null;
}

/** The broker: committed messages per topic, the transactional id's epoch, and who registered when. */
class FakeKafka {
  /** The current epoch of each transactional id. */
  readonly epochs = new Map<string, number>();
  readonly topics = new Map<string, Entry[]>();
  /** Who the group has given the unit to now. */
  owner: number | undefined;

  constructor(private readonly s: fc.Scheduler) {}

  /** Every call completes when the scheduler says so. */
  private tick<T>(label: string, fn: () => T): Promise<T> {
    return this.s.schedule(Promise.resolve(label), label).then(fn);
  }

  topic(name: string): Entry[] {
    const list = this.topics.get(name) ?? [];
    this.topics.set(name, list);
    return list;
  }

  client(member: number): Kafka {
    const producer = ({ transactionalId }: { transactionalId: string }) => {
      let mine = -1;
      const current = () => {
        if (mine !== this.epochs.get(transactionalId))
          throw Object.assign(new Error('a newer producer with the same transactionalId fences this one'), {
            type: 'INVALID_PRODUCER_EPOCH',
          });
      };
      return {
        connect: () =>
          this.tick(`m${member} registers`, () => {
            mine = (this.epochs.get(transactionalId) ?? 0) + 1;
            this.epochs.set(transactionalId, mine);
          }),
        disconnect: async () => undefined,
        transaction: () =>
          this.tick(`m${member} begins`, () => {
            current();
            const pending: Array<{ topic: string; entry: Entry }> = [];
            return {
              sendBatch: ({ topicMessages }: { topicMessages: TopicMessages[] }) =>
                this.tick(`m${member} sends`, () => {
                  current();
                  for (const t of topicMessages)
                    for (const m of t.messages)
                      pending.push({ topic: t.topic, entry: { key: String(m.key), value: text(m) } });
                }),
              commit: () =>
                this.tick(`m${member} commits`, () => {
                  current();
                  for (const p of pending) this.topic(p.topic).push(p.entry);
                }),
              abort: async () => undefined,
            };
          }),
      };
    };
    const consumer = () => ({
      connect: async () => undefined,
      subscribe: async () => undefined,
      disconnect: async () => undefined,
      // read_committed: only committed entries are in the fake's topics.
      run: async ({ eachMessage }: { eachMessage: (p: { message: Message }) => Promise<void> }) => {
        const log = this.topic(STATE);
        for (let i = 0; i < log.length; i++) {
          await this.tick(`m${member} reads state`, () => undefined);
          const e = log[i]!;
          await eachMessage({
            message: {
              key: Buffer.from(e.key),
              value: e.value === null ? null : Buffer.from(e.value),
            } as Message,
          });
        }
      },
    });
    const admin = () => ({
      connect: async () => undefined,
      deleteGroups: async () => undefined,
      disconnect: async () => undefined,
    });
    return { producer, consumer, admin } as unknown as Kafka;
  }
}

const text = (m: Message): string | null => (m.value == null ? null : String(m.value));

/** One member: its UnitOwner, which runs the unit (take over, then page after page) while it is given. */
class Member {
  readonly owner: UnitOwner<StoppableUnit>;
  /** Whether its latest run of the unit walked to the last page. */
  finished = false;

  constructor(
    readonly id: number,
    private readonly kafka: FakeKafka,
  ) {
    this.owner = new UnitOwner(new Set([UNIT]), (_name, fencedOut) => this.run(fencedOut), {
      logger,
      retryMaxMs: 4,
      retryMinMs: 1,
    });
  }

  private async run(fencedOut: () => void): Promise<StoppableUnit> {
    const client = this.kafka.client(this.id);
    const state = new StateStore(STATE, TX);
    let stopped = false;
    const publisher = new TransactionalPublisher(client, TX, logger, {
      retryMaxMs: 1,
      // No real-time pause between commits: the scheduler alone decides the interleaving.
      commitSettleMs: 0,
      onReset: (send) => state.load(client, send, logger),
      fencedOut: () => {
        stopped = true;
        fencedOut();
      },
    });
    this.finished = false;
    await takeOver(publisher, state, client, logger);
    const walk = (async () => {
      while (!stopped) {
        const next = state.get<{ next: number }>(CURSOR)?.next ?? 0;
        if (next >= PAGES) {
          this.finished = true;
          return;
        }
        const change = [{ key: CURSOR, value: { next: next + 1 } }];
        const records = Array.from({ length: PER_PAGE }, (_, i) => ({ key: `r${next}-${i}`, value: 'x' }));
        await publisher.publish({
          messages: [
            { topic: DATA, messages: records },
            { topic: STATE, messages: state.toMessages(change) },
          ],
          onCommitted: () => state.apply(change),
        });
      }
    })().catch(() => undefined); // fenced, or closed by a hand-over
    return {
      stop: async () => {
        stopped = true;
        await publisher.close();
        await walk;
        await state.close();
      },
    };
  }
}

type Step = { kind: 'assign'; member: number; heard: boolean } | { kind: 'run'; steps: number };

const steps = fc.array(
  fc.oneof(
    fc.record({
      kind: fc.constant('assign' as const),
      member: fc.integer({ min: 0, max: MEMBERS - 1 }),
      heard: fc.boolean(),
    }),
    fc.record({ kind: fc.constant('run' as const), steps: fc.integer({ min: 1, max: 30 }) }),
  ),
  { minLength: 1, maxLength: 12 },
);

/** Gives the scheduler's calls their turn until `done`, or gives up after `limitMs` of real time. */
async function runUntil(s: fc.Scheduler, done: () => boolean, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    // Between scheduled calls a member may wait on a real timer (a backoff, the publisher's short pause
    // after a commit): an empty schedule is not the end.
    if (s.count() > 0) await s.waitOne();
    else await new Promise((r) => setTimeout(r, 1));
  }
  return true;
}

async function play(s: fc.Scheduler, plan: Step[]): Promise<{ kafka: FakeKafka; finished: boolean }> {
  const kafka = new FakeKafka(s);
  const members = Array.from({ length: MEMBERS }, (_, i) => new Member(i, kafka));
  const assign = (to: number, heard: boolean) => {
    const from = kafka.owner;
    kafka.owner = to;
    // The old owner stops if the rebalance reached it; a zombie goes on until it hears.
    if (from !== undefined && from !== to && heard) members[from]!.owner.assign([]);
    members[to]!.owner.assign([UNIT]);
  };
  for (const step of plan) {
    if (step.kind === 'assign') assign(step.member, step.heard);
    else {
      for (let i = 0; i < step.steps; i++) {
        // A member's next call may not be scheduled yet (its owner applies a change a few microtasks
        // later): an empty schedule gives the event loop a turn instead.
        if (s.count() > 0) await s.waitOne();
        else await new Promise((r) => setImmediate(r));
      }
    }
  }
  // At the end the group settles on one member, and every member hears of it.
  const last = (kafka.owner ?? 0) === 0 ? 1 : 0;
  for (const m of members) if (m.id !== last) m.owner.assign([]);
  assign(last, true);
  const finished = await runUntil(
    s,
    () =>
      members[last]!.finished &&
      members[last]!.owner.running().length === 1 &&
      members.every((m) => m.id === last || m.owner.running().length === 0),
    5_000,
  );
  let stopped = false;
  void Promise.all(members.map((m) => m.owner.stop())).then(() => (stopped = true));
  assert.ok(await runUntil(s, () => stopped, 10_000), 'every member stops');
  return { kafka, finished };
}

describe('a unit of work moving between members of a producers group (model)', () => {
  it('every page is committed exactly once, and the last owner finishes the walk', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), steps, async (s, plan) => {
        const { kafka, finished } = await play(s, plan);
        assert.ok(finished, 'the last owner walked every page');
        const keys = kafka.topic(DATA).map((e) => e.key);
        const want = Array.from(
          { length: PAGES * PER_PAGE },
          (_, i) => `r${Math.floor(i / PER_PAGE)}-${i % PER_PAGE}`,
        );
        assert.deepEqual([...keys].sort(), [...want].sort(), 'each record exactly once');
      }),
      {
        numRuns: Number(process.env.GROUP_MODEL_RUNS ?? 400),
        ...(process.env.GROUP_MODEL_SEED
          ? {
              seed: Number(process.env.GROUP_MODEL_SEED),
              path: process.env.GROUP_MODEL_PATH,
              endOnFailure: true,
            }
          : {}),
      },
    );
  });
});
