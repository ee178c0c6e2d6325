/**
 * Producers as a group, failing over (#16). Three `instabase-stream producers` processes with the same
 * PRODUCERS_GROUP and a sinks process run over a simulator that keeps growing (new batches, runs and
 * audit entries every second, on the real clock). The roots with per-parent work (conversations, batches,
 * runs) are split into two shares each (producers.shards' default), and the test checks that each root's
 * shares start on two members. The test then
 *
 * 1. SIGKILLs the member that runs most units: its units must resume on the survivors, and the gap from
 *    the kill to a survivor running each of them is measured (bounded by the session timeout, 10 s here,
 *    plus the rebalance and one poll interval);
 * 2. freezes a second member with SIGSTOP for longer than the session timeout, so the group gives its
 *    units away while it still holds pages in flight, then thaws it: it must be fenced, not publish those
 *    stale pages, and not take its units back by fencing their new owner;
 * 3. SIGKILLs that second member, leaving one survivor with every unit.
 *
 * When growth stops and everything has settled, every `<resource>_current` must equal the simulator's
 * ground truth key for key, with no key twice, and the audit topic (append-only, one immutable record per
 * entry) must hold exactly one committed record per entry: a page published twice across a failover, or
 * a stale page of the frozen member, would show there.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../core/config.ts';
import { RESOURCE_NAMES } from '../../core/resources.ts';
import { resourceTopic } from '../../core/topics.ts';
import { rootOfShare } from '../../producers/follow/shard.ts';
import { groupLayout } from '../../producers/work-units.ts';
import { startSimulator } from '../../sim/index.ts';
import { DaemonProcess } from '../helpers/daemon-process.ts';
import { daemonEnv, simulatorEnv } from '../helpers/daemon-env.ts';
import { compareAll, expectedKeys } from '../helpers/ground-truth.ts';
import { quietLogger, testConfig, uniqueName, waitFor } from '../helpers/pipeline.ts';
import { deadLetterCounts, waitForQuiescence } from '../helpers/quiescence.ts';
import { freePort } from '../helpers/sink-clickhouse.ts';
import { cleanUp, testClickHouse } from '../helpers/sink-pipeline.ts';
import { committedCounts } from '../helpers/topic-counts.ts';

const YEAR_MS = 365 * 24 * 3600 * 1000;
const SESSION_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 2_000;
/** The group's units with the default producers.shards (2): the roots with per-parent work are split. */
const UNITS = groupLayout(loadConfig({ cwd: os.tmpdir(), env: { PRODUCERS_GROUP: 'g' } }));
const DOCS_PER_FILE = 2;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

interface MemberHealth {
  units: string[];
  jobs: Record<string, { polls: number; lastSuccessAt: number | null }>;
}

async function memberHealth(p: DaemonProcess): Promise<MemberHealth | undefined> {
  const body = await p.health();
  const c = (body?.components as Array<Partial<MemberHealth>> | undefined)?.[0];
  return c?.units ? { units: c.units, jobs: c.jobs ?? {} } : undefined;
}

test(
  'producers in a group share the work and fail over to the survivors (#16)',
  { timeout: 900_000 },
  async (t) => {
    const say = (line: string) => {
      t.diagnostic(line);
      process.stderr.write(`[producers-group] ${line}\n`);
    };
    const sim = await startSimulator({
      port: 0,
      seed: 'producers-group',
      startTime: Date.now(),
      scale: {
        auditLogs: 20_000,
        batches: 400,
        runs: 60,
        filesPerRun: 2,
        docsPerFile: DOCS_PER_FILE,
        conversations: 8,
        docsPerConversation: 3,
        queries: 8,
        files: 20,
      },
      growth: { batchesPerMin: 120, runsPerMin: 30, auditPerMin: 1_200 },
      logger: quietLogger,
    });
    // The virtual clock follows the real one while the data grows, so the producers' windows (on the real
    // clock) see entries as they appear; stopping it freezes the ground truth.
    const realStart = Date.now();
    let advanced = 0;
    const grow = setInterval(() => {
      const due = Date.now() - realStart - advanced;
      sim.advance(due);
      advanced += due;
    }, 200);

    const prefix = uniqueName('group');
    const config = testConfig(prefix, {}, {});
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ibs-group-'));
    const settings = {
      instabase: { rps: 1_000, concurrency: 4 },
      producers: {
        files: sim.expected.files().map((f) => f.path),
        queryIds: sim.expected.queryIds(),
        initialLookbackMs: 5 * YEAR_MS,
        defaultIntervalMs: POLL_INTERVAL_MS,
        auditLogsSettleMs: 2_000,
        auditLogsPageSize: 500,
        concurrency: 4,
      },
      kafka: { sessionTimeoutMs: SESSION_TIMEOUT_MS },
      sinks: { flushRows: 2_000, flushMs: 500 },
    };
    const env = daemonEnv(config, { ...simulatorEnv(sim), PRODUCERS_GROUP: `${prefix}-group` });
    const daemon = async (name: string, command: string) =>
      new DaemonProcess({ name, command: [command], env, config: settings, dir, httpPort: await freePort() });
    const members = [
      await daemon('producer-a', 'producers'),
      await daemon('producer-b', 'producers'),
      await daemon('producer-c', 'producers'),
    ];
    const sinks = await daemon('sinks', 'sinks');
    const ch = testClickHouse(config);
    const database = config.clickhouse.database;
    let passed = false;
    try {
      for (const m of [...members, sinks]) m.start();

      /** Which member runs which unit now; fails on a unit run by two members at once. */
      const ownership = async (live: DaemonProcess[]) => {
        const owners = new Map<string, string[]>();
        for (const m of live) {
          const h = await memberHealth(m);
          for (const u of h?.units ?? []) owners.set(u, [...(owners.get(u) ?? []), m.spec.name]);
        }
        return owners;
      };
      const spreadOver = async (live: DaemonProcess[]) => {
        const owners = await ownership(live);
        return UNITS.every((u) => owners.get(u)?.length === 1) ? owners : undefined;
      };
      // Members join one after another; each join rebalances, until every member runs three units.
      const even = async () => {
        const owners = await spreadOver(members);
        const counts = members.map((m) => UNITS.filter((u) => owners?.get(u)?.[0] === m.spec.name).length);
        return owners && counts.every((n) => n === 3) ? owners : undefined;
      };
      await waitFor(
        'the three members to run three units each',
        async () => (await even()) !== undefined,
        120_000,
      );
      assert.equal(UNITS.length, 9, 'three whole roots and three split in two');
      const start = (await even())!;
      say(`units at start: ${JSON.stringify(Object.fromEntries(start))}`);
      // The per-parent work of a split root is shared: its two shares run on two members.
      for (const root of ['conversations', 'batches', 'runs']) {
        const hosts = new Set(UNITS.filter((u) => rootOfShare(u) === root).map((u) => start.get(u)![0]));
        assert.equal(hosts.size, 2, `${root}'s shares run on two members`);
      }

      await sleep(8_000); // into the backlog

      /** Kills (or freezes) a member and measures when each of its units runs on a survivor. */
      const failOver = async (victim: DaemonProcess, survivors: DaemonProcess[], how: 'kill' | 'freeze') => {
        const owned = [...(await ownership([victim]))].map(([u]) => u);
        const down = Date.now();
        if (how === 'kill') await victim.kill();
        else victim.pause();
        const resumed = new Map<string, number>();
        const firstPoll = new Map<string, number>();
        await waitFor(
          `${victim.spec.name}'s units (${owned.join(', ')}) to run on the survivors`,
          async () => {
            for (const m of survivors) {
              const h = await memberHealth(m);
              for (const u of owned) {
                if (h?.units.includes(u) && !resumed.has(u)) resumed.set(u, Date.now() - down);
                const success = h?.jobs[u]?.lastSuccessAt;
                if (success && success > down && !firstPoll.has(u)) firstPoll.set(u, success - down);
              }
            }
            return owned.every((u) => resumed.has(u) && firstPoll.has(u));
          },
          120_000,
        );
        for (const u of owned) {
          say(
            `${how} ${victim.spec.name}: ${u} running on a survivor ${seconds(resumed.get(u)!)} after, ` +
              `first poll done ${seconds(firstPoll.get(u)!)} after`,
          );
        }
        return { owned, gaps: owned.map((u) => resumed.get(u)!) };
      };

      const [a, b, c] = members as [DaemonProcess, DaemonProcess, DaemonProcess];
      const first = await failOver(a, [b, c], 'kill');
      const afterFirst = await spreadOver([b, c]);
      assert.ok(afterFirst, 'every unit runs on exactly one survivor');
      say(`units after the first kill: ${JSON.stringify(Object.fromEntries(afterFirst))}`);

      await sleep(5_000);
      const frozen = await failOver(b, [c], 'freeze');
      // Thawed after its session has long expired: its in-flight pages must be refused (fenced).
      await sleep(3_000);
      b.resume();
      const thawed = Date.now();
      await waitFor(
        'the thawed member to settle: the group gives it units again or not, never one twice',
        async () => {
          const owners = await ownership([b, c]);
          return UNITS.every((u) => owners.get(u)?.length === 1) && Date.now() - thawed > SESSION_TIMEOUT_MS;
        },
        120_000,
      );
      say(`units after the thaw: ${JSON.stringify(Object.fromEntries(await ownership([b, c])))}`);
      const fencedLines = b
        .log()
        .split('\n')
        .filter((l) => l.includes('fenced: another member')).length;
      say(`the thawed member logged ${fencedLines} fenced transaction(s)`);

      await sleep(3_000);
      const second = await failOver(b, [c], 'kill');
      await sleep(5_000);
      clearInterval(grow);
      const frozenAt = Date.now();
      say(`growth stopped; the simulator's clock is frozen at ${new Date(sim.now()).toISOString()}`);

      await waitFor(
        'every job of the last member to succeed after growth stopped',
        async () => {
          const h = await memberHealth(c);
          return (
            !!h &&
            UNITS.every((u) => h.units.includes(u)) &&
            UNITS.every(
              (u) => (h.jobs[u]?.lastSuccessAt ?? 0) > frozenAt + settings.producers.auditLogsSettleMs,
            )
          );
        },
        300_000,
      );
      const topics = RESOURCE_NAMES.map((r) => resourceTopic(config, r));
      await waitForQuiescence(config, ch, topics);

      const want = await expectedKeys(sim, DOCS_PER_FILE);
      const results = await compareAll(want, ch, database, say);
      const audit = (await committedCounts(config, [resourceTopic(config, 'audit_logs')]))
        .values()
        .next().value!;
      say(`audit_logs: ${audit.messages} committed records for ${audit.keys} entries`);
      const deadLetters = await deadLetterCounts(config);
      const exits = [...members, sinks].flatMap((m) => m.unexpectedExits);

      for (const r of results) {
        assert.deepEqual(
          { missing: r.missing.length, extra: r.extra.length, duplicates: r.duplicates.length },
          { missing: 0, extra: 0, duplicates: 0 },
          `${r.resource}_current equals the ground truth (missing e.g. ${r.missing.slice(0, 5).join(', ')}; ` +
            `extra e.g. ${r.extra.slice(0, 5).join(', ')}; duplicated e.g. ${r.duplicates.slice(0, 5).join(', ')})`,
        );
        assert.ok(r.expected > 0, `${r.resource}: the simulator serves some`);
      }
      assert.equal(audit.messages, audit.keys, 'one committed record per audit entry: no page twice');
      assert.deepEqual(
        Object.entries(deadLetters).filter(([, n]) => n > 0),
        [],
        'every dead-letter topic is empty',
      );
      assert.deepEqual(
        exits.map((e) => `${e.name}: ${e.code ?? e.signal}: ${e.problems}`),
        [],
        'no process exited on its own',
      );
      // Resuming takes the session timeout (the dead member holds its partitions that long), the
      // rebalance and a unit's start (registering its transactional id, reading its state). The figures
      // are printed above; this bound only says that failover is automatic, with room for a loaded machine.
      for (const gap of [...first.gaps, ...frozen.gaps, ...second.gaps]) {
        assert.ok(
          gap <= SESSION_TIMEOUT_MS + POLL_INTERVAL_MS + 30_000,
          `resumed within bounds: ${seconds(gap)}`,
        );
      }
      passed = true;
    } finally {
      clearInterval(grow);
      await Promise.all([...members, sinks].map((m) => m.stop()));
      await ch.close();
      await sim.close();
      if (passed || !process.env.CRASH_KEEP) {
        await cleanUp(config).catch(() => undefined);
        fs.rmSync(dir, { recursive: true, force: true });
      } else say(`logs kept in ${dir}`);
    }
  },
);
