/**
 * One run of the ground-truth crash suite, shared by the single-server suite (crash-suite.test.ts) and
 * the cluster one (crash-suite-cluster.test.ts): producers and sinks as separate processes move a
 * backlog of 100,000+ audit entries and every other resource from the simulator through Kafka into
 * ClickHouse while a seeded plan of SIGKILLs hits the producers, the sinks, the broker and ClickHouse.
 * After quiescence every `<resource>_current` must hold exactly the simulator's expected keys (none
 * missing, none extra, none twice) on every server it is read from, and every dead-letter topic must be
 * empty. What the broker and ClickHouse are, and how one of them is killed and restarted, is the
 * caller's (`CrashServices`).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../../core/config.ts';
import { RESOURCE_NAMES } from '../../core/resources.ts';
import { resourceTopic } from '../../core/topics.ts';
import { ROOTS } from '../../producers/resources.ts';
import { groupLayout } from '../../producers/work-units.ts';
import { startSimulator, type FaultOptions, type SimScale } from '../../sim/index.ts';
import { DaemonProcess } from './daemon-process.ts';
import { compareAll, expectedKeys, type KeyComparison } from './ground-truth.ts';
import { killPlan, type PlannedKill } from './kill-plan.ts';
import { deadLetterCounts, rawCountSql, waitForQuiescence } from './quiescence.ts';
import { quietLogger, testConfig, uniqueName, waitFor } from './pipeline.ts';
import { committedCounts } from './topic-counts.ts';
import { freePort } from './sink-clickhouse.ts';
import { cleanUp, scalar, testClickHouse } from './sink-pipeline.ts';
import { daemonEnv, simulatorEnv } from './daemon-env.ts';

const YEAR_MS = 365 * 24 * 3600 * 1000;

/** CRASH_SEED=<n> repeats a run's kill plan; the seed is printed either way. */
export const CRASH_SEED = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 1_000_000));

export const CRASH_SCALE: Partial<SimScale> = {
  auditLogs: 100_000,
  batches: 1_500,
  runs: 150,
  filesPerRun: 3,
  docsPerFile: 2,
  fieldsPerDoc: 3,
  conversations: 12,
  docsPerConversation: 3,
  queries: 10,
  files: 40,
};

export const CRASH_FAULTS: Partial<FaultOptions> = {
  rate429: 0.03,
  retryAfterS: 1,
  rate500: 0.03,
  rate503: 0.03,
  rateTruncate: 0.03,
  rateReset: 0.03,
  maxConsecutive: 2,
};

export type CrashTarget = 'producers' | 'sinks' | 'kafka' | 'clickhouse';
export type ServiceTarget = Exclude<CrashTarget, 'producers' | 'sinks'>;

export interface Endpoints {
  KAFKA_BROKERS: string;
  SCHEMA_REGISTRY_URL: string;
  CLICKHOUSE_URL: string;
}

/** The broker and ClickHouse a run writes through, and how the kill plan hits them. */
export interface CrashServices {
  endpoints: Endpoints;
  /** CLICKHOUSE_CLUSTER for the daemons when ClickHouse is a cluster. */
  clickhouseCluster?: string;
  /** False when the services are given from outside: then only producers and sinks are killed. */
  ours: boolean;
  /** SIGKILLs the target (its `nth` kill in this run, from 0); returns what was hit, for the log. */
  kill(target: ServiceTarget, nth: number): Promise<string>;
  /** Starts what `kill` hit again and waits until it serves. */
  restart(target: ServiceTarget, nth: number): Promise<void>;
}

/** A server `_current` is read from at the end, with a client on it. */
export interface Reader {
  name: string;
  ch: ClickHouseClient;
}

export interface QuiescenceContext {
  config: Config;
  database: string;
  say: (line: string) => void;
}

export interface CrashRunSpec {
  /** The log lines' tag, e.g. `crash-suite`. */
  tag: string;
  /** The base of the run's topic prefix, database and log directory. */
  name: string;
  seed: number;
  scale?: Partial<SimScale>;
  faults?: Partial<FaultOptions>;
  flush: { flushRows: number; flushMs: number };
  /**
   * Producers as a group of this many members (PRODUCERS_GROUP, #16); a producers kill hits one of them
   * (by the seed), so its units fail over to the others while it is down. One plain instance when unset.
   */
  producerMembers?: number;
  /**
   * auditLogsSettleMs (0 when unset). The audit entries end where the frozen clock stands, one a second,
   * so a settle puts the newest entries in the unsettled tail that every poll walks again (#14): only the
   * tail can publish them, and a repeat would show as more committed records than keys.
   */
  auditLogsSettleMs?: number;
  /** producers.walkKeysInMemory (its default when unset): small, every walk moves its keys to disk. */
  walkKeysInMemory?: number;
  /** Kills per target when the services are ours (`external` says how many otherwise). */
  perTarget: Record<CrashTarget, number>;
  external?: Record<CrashTarget, number>;
  services: CrashServices;
  /**
   * The servers whose `_current` views are compared key for key, by URL (default: CLICKHOUSE_URL only).
   */
  readers?: Array<{ name: string; url: string }>;
  /**
   * After quiescence and before the key comparison: the caller's own waits and figures. It returns the
   * failures it found; they fail the run after every figure is printed.
   */
  atQuiescence?: (ctx: QuiescenceContext) => Promise<string[]>;
  /**
   * Once the run has checked out, the simulator deletes these shares of the batches and conversations
   * (`POST /__sim/remove`) and a second, shorter kill plan (`removalKills`) hits while the producers
   * conclude what is gone: the tombstones of the entities and their descendants must then leave
   * `_current` exactly as the new ground truth, each entity with at most its record and one tombstone.
   */
  removals?: { batches?: number; conversations?: number };
  removalKills?: Record<CrashTarget, number>;
}

export async function crashRun(t: TestContext, spec: CrashRunSpec): Promise<void> {
  const { seed, flush, services } = spec;
  const scale = spec.scale ?? CRASH_SCALE;
  const say = (line: string) => {
    t.diagnostic(line);
    process.stderr.write(`[${spec.tag}] ${line}\n`);
  };
  const runStarted = Date.now();
  say(
    `seed ${seed} (CRASH_SEED=${seed} repeats this run's kills); sinks.flushRows ${flush.flushRows}, flushMs ${flush.flushMs}`,
  );
  if (!services.ours) say('external services: the broker and ClickHouse are not killed, only our processes');
  // A frozen clock a minute ahead of the data: every run has its final status and every audit entry
  // is older than any window the producers ask for, so the ground truth does not move.
  const sim = await startSimulator({
    port: 0,
    seed: `crash-${seed}`,
    startTime: Date.now() - 60_000,
    scale,
    logger: quietLogger,
    ...(spec.faults ? { faults: spec.faults } : {}),
  });
  const prefix = uniqueName(spec.name);
  const endpoints: Record<string, string> = { ...services.endpoints };
  if (services.clickhouseCluster) endpoints.CLICKHOUSE_CLUSTER = services.clickhouseCluster;
  const config = testConfig(prefix, {}, endpoints);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ibs-${spec.name}-`));
  const settings = {
    instabase: { rps: 1_000, concurrency: 8, retryBaseMs: 20, retryMaxMs: 1_000, maxRetries: 8 },
    producers: {
      files: sim.expected.files().map((f) => f.path),
      queryIds: sim.expected.queryIds(),
      initialLookbackMs: 5 * YEAR_MS,
      defaultIntervalMs: 2_000,
      auditLogsSettleMs: spec.auditLogsSettleMs ?? 0,
      auditLogsPageSize: 1_000,
      concurrency: 4,
      ...(spec.walkKeysInMemory ? { walkKeysInMemory: spec.walkKeysInMemory } : {}),
    },
    sinks: { ...flush, retryMaxMs: 2_000, shutdownTimeoutMs: 10_000 },
  };
  const env = daemonEnv(config, { LOG_LEVEL: process.env.CRASH_LOG_LEVEL ?? 'info', ...simulatorEnv(sim) });
  const daemon = async (command: 'producers' | 'sinks', name: string = command, extra = {}) =>
    new DaemonProcess({
      name,
      command: [command],
      env: { ...env, ...extra },
      config: settings,
      dir,
      httpPort: await freePort(),
    });
  const members = spec.producerMembers ?? 1;
  const producerGroup: DaemonProcess[] = [];
  for (let i = 1; i <= members; i++) {
    producerGroup.push(
      members === 1
        ? await daemon('producers')
        : await daemon('producers', `producers-${i}`, { PRODUCERS_GROUP: `${prefix}-group` }),
    );
  }
  const sinks = await daemon('sinks');
  const ch = testClickHouse(config);
  const readers: Reader[] = (spec.readers ?? [{ name: 'ClickHouse', url: config.clickhouse.url }]).map(
    (r) => ({ name: r.name, ch: testClickHouse(config, r.url) }),
  );
  const database = config.clickhouse.database;
  let passed = false;
  try {
    for (const p of producerGroup) p.start();
    sinks.start();
    // The kills start once rows flow, so they land in the middle of the backlog.
    await waitFor(
      'the first audit rows in ClickHouse',
      async () => (await scalar(ch, rawCountSql(database, 'audit_logs')).catch(() => 0)) > 0,
      180_000,
    );

    const perTarget = services.ours
      ? spec.perTarget
      : (spec.external ?? { producers: 4, sinks: 4, kafka: 0, clickhouse: 0 });
    // Short gaps, so that the kills fall while the backlog (about a minute here) is still flowing.
    const plan = killPlan(seed, perTarget, [800, 2_500], [300, 2_000]);
    const nth: Record<CrashTarget, number> = { producers: 0, sinks: 0, kafka: 0, clickhouse: 0 };
    const runKills = async (plan: Array<PlannedKill<CrashTarget>>): Promise<number> => {
      const killsStarted = Date.now();
      for (const [i, kill] of plan.entries()) {
        await sleep(kill.afterMs);
        const audit = await scalar(ch, rawCountSql(database, 'audit_logs')).catch(() => -1);
        const down = Date.now();
        const n = nth[kill.target]++;
        let what: string = kill.target;
        // In a group, the seed picks the member; its units move to the others while it is down.
        const producers = producerGroup[(seed + n) % producerGroup.length]!;
        if (kill.target === 'producers') {
          await producers.kill();
          what = producers.spec.name;
        } else if (kill.target === 'sinks') await sinks.kill();
        else what = await services.kill(kill.target, n);
        await sleep(kill.downMs);
        if (kill.target === 'producers') producers.start();
        else if (kill.target === 'sinks') sinks.start();
        else await services.restart(kill.target, n);
        say(
          `kill ${i + 1}/${plan.length}: ${what} (audit rows then: ${audit}), back after ${seconds(Date.now() - down)}`,
        );
      }
      const restored = Date.now();
      say(`${plan.length} kills in ${seconds(restored - killsStarted)}`);
      return restored;
    };

    // A group has a job per unit (the shares of a split root: runs.0, runs.1); alone, one per root.
    const jobNames = members > 1 ? groupLayout(config) : ROOTS.map((r) => r.name);
    /** When each job last succeeded, on whichever member runs it now. */
    const lastSuccesses = async (): Promise<Map<string, number>> => {
      const last = new Map<string, number>();
      for (const p of producerGroup) {
        const health = await p.health();
        const jobs = (
          health?.components as Array<{ jobs?: Record<string, { lastSuccessAt: number | null }> }>
        )?.[0]?.jobs;
        for (const [name, j] of Object.entries(jobs ?? {}))
          last.set(name, Math.max(last.get(name) ?? 0, j.lastSuccessAt ?? 0));
      }
      return last;
    };
    /** Waits until every job has succeeded after `since` (per job, or one time for all). */
    const succeededSince = (since: number | Map<string, number>, what: string) =>
      waitFor(
        what,
        async () => {
          const last = await lastSuccesses();
          const after = (name: string) => (typeof since === 'number' ? since : (since.get(name) ?? 0));
          return jobNames.every((name) => (last.get(name) ?? 0) > after(name));
        },
        300_000,
      );
    const topics = RESOURCE_NAMES.map((r) => resourceTopic(config, r));
    /** Quiescence, then `_current` on every reader against the simulator's ground truth now. */
    const settle = async (restored: number) => {
      const producersCaughtUp = Date.now();
      await waitForQuiescence(config, ch, topics);
      const quiet = Date.now();
      say(
        `quiescence: producers caught up ${seconds(producersCaughtUp - restored)} after the last kill, ` +
          `lag 0 and stable counts ${seconds(quiet - producersCaughtUp)} later`,
      );
      const problems = (await spec.atQuiescence?.({ config, database, say })) ?? [];
      const want = await expectedKeys(sim, scale.docsPerFile ?? 2);
      const results: Array<KeyComparison & { reader: string }> = [];
      for (const reader of readers) {
        const prefix = readers.length > 1 ? `${reader.name}: ` : '';
        for (const r of await compareAll(want, reader.ch, database, say, prefix))
          results.push({ ...r, reader: reader.name });
      }
      const counts = await committedCounts(config, topics);
      for (const [topic, c] of counts)
        say(`${topic}: ${c.messages} committed records for ${c.keys} keys (at most ${c.mostPerKey} per key)`);
      return { problems, want, results, counts };
    };
    const exactly = (results: Array<KeyComparison & { reader: string }>) => {
      for (const r of results) {
        assert.deepEqual(
          { missing: r.missing.length, extra: r.extra.length, duplicates: r.duplicates.length },
          { missing: 0, extra: 0, duplicates: 0 },
          `${r.resource}_current on ${r.reader}: keys exactly as the simulator's ` +
            `(missing e.g. ${r.missing.slice(0, 5).join(', ')}; ` +
            `extra e.g. ${r.extra.slice(0, 5).join(', ')}; duplicated e.g. ${r.duplicates.slice(0, 5).join(', ')})`,
        );
        assert.ok(r.expected > 0, `${r.resource}: the simulator serves some`);
      }
    };

    const restored = await runKills(plan);
    await succeededSince(restored, 'every producer job to succeed after the last kill');
    const first = await settle(restored);
    if (spec.faults) say(`faults injected by the simulator: ${JSON.stringify(sim.stats().faults)}`);

    assert.ok(plan.length >= 8, 'at least 8 kills');
    assert.deepEqual(first.problems, [], 'the checks at quiescence');
    exactly(first.results);
    // The simulator's clock is frozen, so every entity has one version: a topic holding more committed
    // records than keys means the producers published something twice.
    assert.deepEqual(
      [...first.counts]
        .filter(([, c]) => c.messages !== c.keys)
        .map(([topic, c]) => `${topic}: ${c.messages}/${c.keys}`),
      [],
      'no committed re-emission: one record per key on every resource topic',
    );

    if (spec.removals) {
      const removed = await fetch(`${sim.origin}/__sim/remove`, {
        method: 'POST',
        body: JSON.stringify(spec.removals),
      });
      assert.equal(removed.status, 200, 'the simulator deletes');
      const removedAt = Date.now();
      const asked = spec.removalKills ?? { producers: 2, sinks: 1, kafka: 0, clickhouse: 1 };
      const removalKills = services.ours ? asked : { ...asked, kafka: 0, clickhouse: 0 };
      say(`the simulator deleted ${JSON.stringify(spec.removals)} of the batches and conversations`);
      const again = await runKills(killPlan(seed + 1_000, removalKills, [800, 2_500], [300, 2_000]));
      // A tombstone follows two consecutive complete walks without the entity. The first success after
      // the kills may have begun before the deletion; each later one began after the one before it.
      await succeededSince(Math.max(again, removedAt), 'every producer job to succeed after the deletions');
      for (const round of ['a first', 'a second'])
        await succeededSince(await lastSuccesses(), `every producer job to succeed ${round} time after that`);
      const second = await settle(again);
      say(`removal phase took ${seconds(Date.now() - removedAt)}`);
      assert.deepEqual(second.problems, [], 'the checks at quiescence after the deletions');
      exactly(second.results);
      // Gone, per resource: in the first ground truth and not in the second.
      const gone = new Map(
        RESOURCE_NAMES.map((r) => [
          resourceTopic(config, r),
          [...first.want[r]].filter((k) => !second.want[r].has(k)).length,
        ]),
      );
      for (const [topic, n] of gone) if (n > 0) say(`${topic}: ${n} keys deleted`);
      assert.ok(
        [...gone.values()].some((n) => n > 0),
        'the deletions took some keys away',
      );
      // The first check found every key published once, so now each key has its record, and each
      // deleted one exactly one tombstone more (`_current` above shows they are tombstones: a deleted
      // key published again would be extra there).
      assert.deepEqual(
        [...second.counts]
          .filter(([topic, c]) => c.mostPerKey > 2 || c.messages - c.keys !== (gone.get(topic) ?? 0))
          .map(
            ([topic, c]) =>
              `${topic}: ${c.messages}/${c.keys}, ${gone.get(topic)} deleted, at most ${c.mostPerKey} per key`,
          ),
        [],
        'no committed re-emission: one record per key, and one tombstone per deleted key',
      );
    }
    const deadLetters = await deadLetterCounts(config);
    say(`dead letters: ${JSON.stringify(deadLetters)}`);
    const exits = [...producerGroup.flatMap((p) => p.unexpectedExits), ...sinks.unexpectedExits];
    for (const e of exits) say(`unexpected exit of ${e.name} (${e.code ?? e.signal}): ${e.problems}`);
    say(`run took ${seconds(Date.now() - runStarted)}`);
    assert.deepEqual(
      Object.entries(deadLetters).filter(([, n]) => n > 0),
      [],
      'every dead-letter topic is empty',
    );
    assert.deepEqual(
      exits.map((e) => `${e.name}: ${e.code ?? e.signal}`),
      [],
      // The reasons are in the message too: CI shows a failed assertion, not always the run's lines.
      'no process exited on its own (outages must make processes wait, not die): ' +
        exits.map((e) => `${e.name} (${e.code ?? e.signal}): ${e.problems}`).join(' || '),
    );
    passed = true;
  } finally {
    await Promise.all([...producerGroup.map((p) => p.stop()), sinks.stop()]);
    await ch.close();
    for (const r of readers) await r.ch.close();
    await sim.close();
    // CRASH_KEEP=1 keeps a failed run's logs, CRASH_KEEP=always every run's.
    const keep = process.env.CRASH_KEEP === 'always' || (!passed && process.env.CRASH_KEEP);
    if (!keep) {
      if (!services.ours) await cleanUp(config);
      fs.rmSync(dir, { recursive: true, force: true });
    } else {
      say(`logs kept in ${dir}`);
    }
  }
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
